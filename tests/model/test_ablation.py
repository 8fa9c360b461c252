"""The branch ablation in the evaluation report: each branch alone and each one removed."""

from __future__ import annotations

import json

import numpy as np
import pytest


def test_the_report_shows_each_branch_alone_and_removed(evaluation, trained, tokenised) -> None:  # type: ignore[no-untyped-def]
    from lstm_model.data.dataset import load_split
    from lstm_model.model.builders import branch_models, load_model

    rows = {row.variant: row for row in evaluation.ablation}
    assert list(rows) == [
        "full model", "n-grams alone", "LSTM alone", "NBSVM alone",
        "without n-grams", "without LSTM", "without NBSVM",
    ]  # fmt: skip
    # the full model's row is the model itself, scored the way the report scores it
    assert rows["full model"].accuracy == pytest.approx(evaluation.metrics.accuracy)
    x, y = load_split(tokenised, "test")
    model = load_model(trained.model_path)
    for branch, name in (("ngram", "n-grams"), ("lstm", "LSTM")):
        alone = branch_models(model)[branch].predict(x, verbose=0).ravel()
        assert rows[f"{name} alone"].accuracy == pytest.approx(np.mean((alone >= 0.5) == y))
    for row in evaluation.ablation:
        assert row.change == pytest.approx(row.accuracy - rows["full model"].accuracy)
    saved = json.loads((evaluation.report_path.parent / "ablation.json").read_text())
    assert [r["variant"] for r in saved] == list(rows)
    report = evaluation.report_path.read_text()
    assert "## What each branch contributes (test split)" in report
    assert f"| without LSTM | {rows['without LSTM'].accuracy:.4f} |" in report


def test_a_one_branch_model_has_no_ablation(tokenised) -> None:  # type: ignore[no-untyped-def]
    from lstm_model.data.dataset import load_split
    from lstm_model.evaluation.ablation import branch_ablation, render_ablation
    from lstm_model.model.builders import build_model
    from lstm_model.model.config import ModelConfig

    model = build_model(
        ModelConfig(ngram_order=0, units=4, embedding_dim=4), vocab_size=2000, maxlen=40
    )
    x, y = load_split(tokenised, "test")
    assert branch_ablation(model, x, y) == [] and render_ablation([]) == ""
