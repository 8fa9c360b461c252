from __future__ import annotations

import numpy as np
import pytest

from lstm_model.evaluation.config import GateConfig
from lstm_model.evaluation.evaluate import compute_metrics
from lstm_model.evaluation.gate import compare_slice, decide, with_slices
from lstm_model.evaluation.slices import slice_metrics, wilson_interval


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


# A baseline below the candidate: the default margin (match the baseline) holds, and the
# rule under test is the only one that can fail.
LOW_BASELINE = {"baseline_accuracy": 0.4}


def test_gate_without_champion_applies_only_the_bar() -> None:
    assert decide(0.881, None, GateConfig(), **LOW_BASELINE).passed
    failed = decide(0.87, None, GateConfig(), **LOW_BASELINE)
    assert not failed.passed
    assert failed.reasons == ["test accuracy 0.8700 is below the bar 0.8800"]


def test_gate_refuses_a_regression_beyond_the_tolerance() -> None:
    config = GateConfig(min_accuracy=0.8, max_regression=0.005)
    assert decide(0.896, (3, 0.90), config, **LOW_BASELINE).passed
    failed = decide(0.89, (3, 0.90), config, **LOW_BASELINE)
    assert not failed.passed
    assert "0.0100 below champion version 3 (0.9000)" in failed.describe()


def test_gate_reports_both_failures() -> None:
    failed = decide(0.5, (1, 0.9), GateConfig(), **LOW_BASELINE)
    assert len(failed.reasons) == 2


def test_gate_can_require_a_margin_over_the_linear_baseline() -> None:
    config = GateConfig(min_accuracy=0.8, min_margin_over_baseline=0.005)
    passed = decide(0.912, None, config, baseline_accuracy=0.906)
    assert passed.passed and "beats the linear baseline (0.9060) by +0.0060" in passed.describe()
    failed = decide(0.900, None, config, baseline_accuracy=0.906)
    assert not failed.passed
    assert failed.reasons == [
        "test accuracy 0.9000 beats the linear baseline (0.9060) by -0.0060, "
        "less than the required +0.0050"
    ]
    unmeasured = decide(0.95, None, config, baseline_accuracy=None)
    assert not unmeasured.passed and "no baseline was measured" in unmeasured.describe()


def test_by_default_the_candidate_must_match_the_linear_baseline() -> None:
    assert GateConfig().min_margin_over_baseline == 0.0
    assert not decide(0.90, None, GateConfig(), baseline_accuracy=0.95).passed
    assert decide(0.9121, None, GateConfig(), baseline_accuracy=0.9066).passed
    assert decide(
        0.90, None, GateConfig(min_margin_over_baseline=None), baseline_accuracy=0.95
    ).passed


def test_baseline_fits_on_the_model_s_training_rows_and_is_cached(  # type: ignore[no-untyped-def]
    ingested, tmp_path
) -> None:
    import json

    from lstm_model.evaluation.baseline import fit_baseline
    from lstm_model.evaluation.config import BaselineConfig
    from lstm_model.training.config import TrainConfig

    split = TrainConfig(validation_fraction=0.1, seed=42)
    first = fit_baseline(ingested, BaselineConfig(min_df=1), split, tmp_path)
    assert not first.cached and first.metrics.n == 204  # the fixture's test split
    assert first.metrics.accuracy > 0.6  # 180 training reviews are enough to beat chance
    manifest = json.loads((first.path.parent / "manifest.json").read_text())
    assert manifest["details"]["train_rows"] == 204 - 2 * 10  # train minus 10% of each class
    assert manifest["inputs"]["reviews"] == ingested.sha256
    again = fit_baseline(ingested, BaselineConfig(min_df=1), split, tmp_path)
    assert again.cached and again.metrics == first.metrics
    other = fit_baseline(ingested, BaselineConfig(min_df=1), TrainConfig(seed=1), tmp_path)
    assert other.path != first.path  # another split is another artifact


def test_report_puts_the_baseline_beside_the_model() -> None:
    from lstm_model.evaluation.evaluate import render_report

    model = compute_metrics(np.array([0, 1, 1, 0]), np.array([0.2, 0.9, 0.4, 0.1]))
    baseline = compute_metrics(np.array([0, 1, 1, 0]), np.array([0.6, 0.9, 0.8, 0.1]))
    report = render_report("candidate", model, {}, baseline)
    assert "| metric | model | linear baseline (TF-IDF + LR) |" in report
    assert "| accuracy | 0.7500 | 0.7500 |" in report


def test_a_slice_s_accuracy_comes_with_its_wilson_interval() -> None:
    low, high = wilson_interval(91, 100)
    assert (round(low, 4), round(high, 4)) == (0.8377, 0.9519)  # the textbook values
    metrics = slice_metrics("shop", [1, 1, 0, 0], np.array([0.9, 0.2, 0.1, 0.4]))
    assert (metrics.n, metrics.accuracy, metrics.roc_auc) == (4, 0.75, 0.75)
    assert metrics.accuracy_low < 0.75 < metrics.accuracy_high
    assert slice_metrics("one-label", [1, 1], np.array([0.9, 0.8])).roc_auc is None


def test_a_slice_fails_only_beyond_the_allowed_drop_and_its_noise() -> None:
    labels = np.array([1] * 100)
    champion = np.full(100, 0.9)  # right on all 100
    small_drop = champion.copy()
    small_drop[:3] = 0.1  # wrong on 3: b=3, c=0, noise 1.96*sqrt(3)/100 = 0.034
    big_drop = champion.copy()
    big_drop[:10] = 0.1  # wrong on 10: noise 0.062, drop 0.10

    within = compare_slice("shop", labels, small_drop, champion, 0.005, 0.95)
    beyond = compare_slice("shop", labels, big_drop, champion, 0.005, 0.95)

    assert within.passed and (within.champion_only_right, within.candidate_only_right) == (3, 0)
    assert round(within.noise, 4) == 0.0339
    assert not beyond.passed and beyond.candidate_accuracy == 0.9
    assert compare_slice("shop", labels, big_drop, champion, 0.2, 0.95).passed  # allowed
    config = GateConfig(min_margin_over_baseline=None)
    decision = with_slices(decide(0.9, (1, 0.9), config), [within, beyond], config)
    assert not decision.passed
    assert decision.reasons == [
        "slice shop (100 texts): accuracy 0.9000 against champion version 1's 1.0000, a drop "
        "of 0.1000: more than the allowed regression 0.0050 and beyond the slice's noise (0.0620)"
    ]
    passed = with_slices(decide(0.9, (1, 0.9), config), [within], config)
    assert passed.passed and "a drop of 0.0300, within the slice's noise (0.0339)" in (
        passed.describe()
    )


def test_the_fitted_baseline_is_the_one_the_pipeline_reports(ingested, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pyarrow.compute as pc

    from lstm_model.data.ingest import load_reviews
    from lstm_model.data.splits import stratified_split
    from lstm_model.evaluation.baseline import (
        baseline_probabilities,
        fit_baseline,
        fit_baseline_classifier,
    )
    from lstm_model.evaluation.config import BaselineConfig
    from lstm_model.training.config import TrainConfig

    config, split = BaselineConfig(), TrainConfig()
    reported = fit_baseline(ingested, config, split, tmp_path)
    table = load_reviews(ingested, ["split", "label", "text"])
    train = table.filter(pc.equal(table["split"], "train"))
    test = table.filter(pc.equal(table["split"], "test"))
    rows, _ = stratified_split(train["label"].to_numpy(), split.validation_fraction, split.seed)
    classifier = fit_baseline_classifier(
        train["text"].take(rows), train["label"].to_numpy()[rows], config
    )
    probabilities = baseline_probabilities(classifier, test["text"])
    assert compute_metrics(test["label"].to_numpy(), probabilities) == reported.metrics
    assert len(classifier.named_steps["tfidf"].vocabulary_) == reported.features
    # pinned on the fixture: a change to the baseline's fit changes every report's baseline
    assert (reported.features, round(reported.metrics.accuracy, 4)) == (6857, 0.8039)
    # raw text goes through the tokeniser's normalisation: case and punctuation do not count
    loud, plain = baseline_probabilities(
        classifier, ["A GREAT, great film!!", "a great great film"]
    )
    assert loud == plain
    # validated on runs of ids, the baseline fits the rows the model fits then, in its own cache
    runs = TrainConfig(validation_block=500)
    blocked = fit_baseline(ingested, config, runs, tmp_path)
    assert blocked.path != reported.path and not blocked.cached
    assert blocked.metrics != reported.metrics
    ids = (
        load_reviews(ingested, ["split", "review_id"])
        .filter(pc.equal(table["split"], "train"))["review_id"]
        .to_numpy()
    )
    rows, _ = stratified_split(train["label"].to_numpy(), 0.1, runs.seed, groups=ids // 500)
    classifier = fit_baseline_classifier(
        train["text"].take(rows), train["label"].to_numpy()[rows], config
    )
    probabilities = baseline_probabilities(classifier, test["text"])
    assert compute_metrics(test["label"].to_numpy(), probabilities) == blocked.metrics
