"""Test-split metrics, plots, behavioural checks and a markdown report for a trained model."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from lstm_model.artifacts import atomic_write_bytes, atomic_write_json
from lstm_model.data.dataset import TokenisedResult, load_split
from lstm_model.data.spans import Span
from lstm_model.data.tokeniser import Tokeniser
from lstm_model.evaluation.ablation import (
    AblationRow,
    branch_ablation,
    predict_branches,
    render_ablation,
)
from lstm_model.evaluation.behaviour import BehaviourReport, check_behaviour
from lstm_model.evaluation.slices import (
    SliceMetrics,
    domain_slices,
    render_domain_weights,
    render_slices,
    score_slices,
)
from lstm_model.model.labels import THRESHOLD
from lstm_model.training.result import DomainWeight

log = logging.getLogger(__name__)

PROBABILITIES_FILE = "test_probabilities.npy"
ABLATION_FILE = "ablation.json"
BEHAVIOUR_FILE = "behaviour.json"
SLICES_FILE = "slices.json"
PLOTS = ("training_curves.png", "roc.png", "confusion_matrix.png")


class Metrics(BaseModel):
    """Binary classification metrics on the test split at threshold 0.5."""

    model_config = ConfigDict(frozen=True)

    accuracy: float
    precision: float
    recall: float
    f1: float
    roc_auc: float
    log_loss: float
    confusion_matrix: list[list[int]]
    """[[true neg, false pos], [false neg, true pos]]"""
    n: int


class EvaluationResult(BaseModel):
    """Metrics, behavioural checks, and where the report and plots were written."""

    model_config = ConfigDict(frozen=True)

    metrics: Metrics
    report_path: Path
    plot_paths: list[Path]
    behaviour: BehaviourReport | None = None
    slices: list[SliceMetrics] = []
    """aclImdb test, then the test share of each domain of the labelled spans trained on."""
    ablation: list[AblationRow] = []
    """The full model, each branch alone and each one removed (``ablation``)."""


def compute_metrics(labels: np.ndarray, probabilities: np.ndarray) -> Metrics:
    """Accuracy, precision, recall, F1, ROC AUC, log loss and confusion matrix."""
    from sklearn import metrics as skm

    labels = np.asarray(labels).astype(int)
    probabilities = np.asarray(probabilities, dtype="float64").ravel()
    predicted = (probabilities >= THRESHOLD).astype(int)
    return Metrics(
        accuracy=float(skm.accuracy_score(labels, predicted)),
        precision=float(skm.precision_score(labels, predicted, zero_division=0)),
        recall=float(skm.recall_score(labels, predicted, zero_division=0)),
        f1=float(skm.f1_score(labels, predicted, zero_division=0)),
        roc_auc=float(skm.roc_auc_score(labels, probabilities)),
        log_loss=float(skm.log_loss(labels, np.clip(probabilities, 1e-7, 1 - 1e-7))),
        confusion_matrix=skm.confusion_matrix(labels, predicted, labels=[0, 1]).tolist(),
        n=len(labels),
    )


def evaluate_model(
    model_path: Path,
    tokenised: TokenisedResult,
    history: dict[str, list[float]],
    out_dir: Path,
    *,
    title: str = "candidate",
    baseline: Metrics | None = None,
    spans: Sequence[Span] = (),
    domain_weights: Sequence[DomainWeight] = (),
) -> EvaluationResult:
    """Score the test split, each domain's test share in ``spans`` and the behavioural
    cases; write ``metrics.json``, ``slices.json``, ``behaviour.json``, PNG plots and
    ``report.md`` (with the training weight of each domain, when given)."""
    from lstm_model.model.builders import load_model, predict_ids

    x, y = load_split(tokenised, "test")
    model = load_model(model_path)
    probabilities, logits = predict_branches(model, x)
    metrics = compute_metrics(y, probabilities)
    tokeniser = Tokeniser.load(tokenised.tokeniser_dir)

    def predict(texts: list[str]) -> np.ndarray:
        return predict_ids(model, tokeniser.encode(texts))

    slices = score_slices(y, probabilities, domain_slices(list(spans)), predict)
    behaviour = check_behaviour(predict)
    ablation = branch_ablation(model, probabilities, logits, y)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Kept so the export's parity check compares against these very probabilities.
    buffer = io.BytesIO()
    np.save(buffer, probabilities.astype("float32"))
    atomic_write_bytes(out_dir / PROBABILITIES_FILE, buffer.getvalue())
    atomic_write_json(out_dir / "metrics.json", metrics.model_dump())
    atomic_write_json(out_dir / SLICES_FILE, [s.model_dump() for s in slices])
    # In the evaluation folder, so registration copies it into the version and hashes it.
    atomic_write_json(out_dir / BEHAVIOUR_FILE, behaviour.model_dump(mode="json"))
    atomic_write_json(out_dir / ABLATION_FILE, [row.model_dump() for row in ablation])
    plots = _plots(y, probabilities, metrics, history, out_dir)
    report = out_dir / "report.md"
    text = (
        render_report(title, metrics, history, baseline, behaviour)
        + "\n"
        + render_slices(slices)
        + ("\n" + render_domain_weights(domain_weights) if domain_weights else "")
        + ("\n" + render_ablation(ablation) if ablation else "")
    )
    atomic_write_bytes(report, text.encode())
    log.info(
        "test accuracy %.4f, ROC AUC %.4f on %d reviews",
        metrics.accuracy,
        metrics.roc_auc,
        metrics.n,
    )
    return EvaluationResult(
        metrics=metrics,
        report_path=report,
        plot_paths=plots,
        behaviour=behaviour,
        slices=slices,
        ablation=ablation,
    )


def render_report(
    title: str,
    metrics: Metrics,
    history: dict[str, list[float]],
    baseline: Metrics | None = None,
    behaviour: BehaviourReport | None = None,
) -> str:
    """Markdown summary: metrics table (beside the linear baseline's, when given), confusion
    matrix, training curve figures, and the behavioural checks (when given)."""
    (tn, fp), (fn, tp) = metrics.confusion_matrix
    names = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
    if baseline is None:
        header = "| metric | value |\n|---|---|"
        rows = "\n".join(f"| {name} | {getattr(metrics, name):.4f} |" for name in names)
    else:
        header = "| metric | model | linear baseline (TF-IDF + LR) |\n|---|---|---|"
        rows = "\n".join(
            f"| {name} | {getattr(metrics, name):.4f} | {getattr(baseline, name):.4f} |"
            for name in names
        )
    epochs = len(history.get("loss", []))
    return (
        f"# Evaluation: {title}\n\nTest split, {metrics.n} reviews, threshold {THRESHOLD}.\n\n"
        f"{header}\n{rows}\n\n"
        f"| | predicted neg | predicted pos |\n|---|---|---|\n"
        f"| **actual neg** | {tn} | {fp} |\n| **actual pos** | {fn} | {tp} |\n\n"
        f"Trained {epochs} epochs; plots: {', '.join(PLOTS)}.\n"
        + ("" if behaviour is None else f"\n{behaviour.render()}")
    )


def _plots(
    labels: np.ndarray,
    probabilities: np.ndarray,
    metrics: Metrics,
    history: dict[str, list[float]],
    out_dir: Path,
) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    paths = [out_dir / name for name in PLOTS]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key in zip(axes, ("loss", "accuracy"), strict=True):
        for prefix in ("", "val_"):
            values = history.get(prefix + key, [])
            ax.plot(range(1, len(values) + 1), values, marker="o", label=prefix + key)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend()
    _save(fig, paths[0])

    fpr, tpr, _ = roc_curve(labels, probabilities)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, label=f"AUC {metrics.roc_auc:.4f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC, test split")
    ax.legend(loc="lower right")
    _save(fig, paths[1])

    fig, ax = plt.subplots(figsize=(4.5, 4))
    matrix = np.array(metrics.confusion_matrix)
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(
            j,
            i,
            str(count),
            ha="center",
            va="center",
            color="white" if count > matrix.max() / 2 else "black",
        )
    ax.set_xticks([0, 1], ["neg", "pos"])
    ax.set_yticks([0, 1], ["neg", "pos"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(f"confusion matrix, accuracy {metrics.accuracy:.4f}")
    _save(fig, paths[2])
    return paths


def _save(fig: object, path: Path) -> None:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    atomic_write_bytes(path, buffer.getvalue())
