from __future__ import annotations

import numpy as np
import pytest

from lstm_model.config import GateConfig
from lstm_model.evaluate import compute_metrics
from lstm_model.gate import decide


def test_metrics_match_hand_computed_values() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    probs = np.array([0.1, 0.6, 0.2, 0.9, 0.4, 0.8, 0.7, 0.3])
    m = compute_metrics(labels, probs)
    # predicted: 0 1 0 1 0 1 1 0 -> tp 3, fp 1, fn 1, tn 3
    assert m.confusion_matrix == [[3, 1], [1, 3]]
    assert (m.accuracy, m.precision, m.recall, m.f1) == (0.75, 0.75, 0.75, 0.75)
    assert m.roc_auc == pytest.approx(15 / 16)  # 15 of 16 (pos, neg) pairs ranked right
    expected_loss = -np.mean(labels * np.log(probs) + (1 - labels) * np.log(1 - probs))
    assert m.log_loss == pytest.approx(expected_loss)
    assert m.n == 8


def test_evaluation_writes_report_plots_and_probabilities(evaluation) -> None:  # type: ignore[no-untyped-def]
    folder = evaluation.report_path.parent
    assert {p.name for p in evaluation.plot_paths} == {
        "training_curves.png",
        "roc.png",
        "confusion_matrix.png",
    }
    for path in evaluation.plot_paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = evaluation.report_path.read_text()
    assert f"| accuracy | {evaluation.metrics.accuracy:.4f} |" in report
    assert np.load(folder / "test_probabilities.npy").shape == (204,)


def test_gate_without_champion_applies_only_the_bar() -> None:
    assert decide(0.881, None, GateConfig()).passed
    failed = decide(0.87, None, GateConfig())
    assert not failed.passed
    assert failed.reasons == ["test accuracy 0.8700 is below the bar 0.8800"]


def test_gate_refuses_a_regression_beyond_the_tolerance() -> None:
    config = GateConfig(min_accuracy=0.8, max_regression=0.005)
    assert decide(0.896, (3, 0.90), config).passed
    failed = decide(0.89, (3, 0.90), config)
    assert not failed.passed
    assert "0.0100 below champion version 3 (0.9000)" in failed.describe()


def test_gate_reports_both_failures() -> None:
    failed = decide(0.5, (1, 0.9), GateConfig())
    assert len(failed.reasons) == 2
