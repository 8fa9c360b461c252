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


def test_one_and_two_branch_models(tokenised) -> None:  # type: ignore[no-untyped-def]
    from lstm_model.data.dataset import load_split
    from lstm_model.evaluation.ablation import branch_ablation, predict_branches, render_ablation
    from lstm_model.model.builders import build_model
    from lstm_model.model.config import ModelConfig

    x, y = load_split(tokenised, "test")
    one = build_model(
        ModelConfig(ngram_order=0, units=4, embedding_dim=4), vocab_size=2000, maxlen=40, seed=0
    )
    probabilities, logits = predict_branches(one, x)
    assert logits is None and probabilities.shape == (len(x),)
    assert branch_ablation(one, probabilities, logits, y) == [] and render_ablation([]) == ""
    # Two branches (no NBSVM): without one, the other's logit times its weight, plus the bias.
    two = build_model(
        ModelConfig(nbsvm=False, units=4, embedding_dim=4, ngram_buckets=64),
        vocab_size=2000,
        maxlen=40,
        seed=0,
    )
    probabilities, logits = predict_branches(two, x)
    assert logits is not None and logits.shape == (len(x), 2)
    rows = {r.variant: r.accuracy for r in branch_ablation(two, probabilities, logits, y)}
    assert list(rows) == [
        "full model", "n-grams alone", "LSTM alone", "without n-grams", "without LSTM",
    ]  # fmt: skip
    kernel, bias = two.get_layer("probability").get_weights()
    without_lstm = logits[:, 0] * kernel[0, 0] + bias[0]
    assert rows["without LSTM"] == pytest.approx(np.mean((without_lstm >= 0) == y))
    assert rows["n-grams alone"] == pytest.approx(np.mean((logits[:, 0] >= 0) == y))
    assert rows["full model"] == pytest.approx(np.mean((probabilities >= 0.5) == y))
