"""The run's report: counts reconciled, drift against the training data, the score
histogram and ``report.md``."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from lstm_model.artifacts import (
    atomic_write_bytes,
    atomic_write_json,
    make_dirs,
)
from lstm_model.data.drops import (
    printable,
)
from lstm_model.errors import PipelineError
from lstm_model.scoring.config import ScoringConfig
from lstm_model.scoring.infer import ScoringModel
from lstm_model.scoring.outcomes import HISTOGRAM_BINS, FileOutcome

log = logging.getLogger(__name__)


class RunSummary(BaseModel):
    """Counts of one scoring run, reconciled, and where its report was written."""

    files: dict[str, int]
    rows_total: int
    rows_scored: int
    rows_rejected: int
    positive_rate: float | None
    oov_rate: float | None
    mean_chars: float | None
    warnings: list[str]
    report_path: Path
    histogram_path: Path | None


def rejected_input(summary: RunSummary, config: ScoringConfig) -> str | None:
    """Why the run's quarantined files or rejected rows need a person (at or above
    ``alert_quarantined_files``, or above ``alert_rejected_share`` of the rows read), or None."""
    quarantined = summary.files.get("quarantined", 0)
    share = summary.rows_rejected / summary.rows_total if summary.rows_total else 0.0
    said = []
    if config.alert_quarantined_files and quarantined >= config.alert_quarantined_files:
        said.append(f"{quarantined} files quarantined (alert at {config.alert_quarantined_files})")
    if share > config.alert_rejected_share:
        said.append(
            f"{summary.rows_rejected} of {summary.rows_total} rows rejected ({share:.1%}, alert "
            f"above {config.alert_rejected_share:.1%})"
        )
    return "; ".join(said) or None


def summarise_run(
    outcomes: list[FileOutcome], champion: ScoringModel, config: ScoringConfig, out_dir: Path
) -> RunSummary:
    """Reconcile the counts, draw the score histogram, write ``report.md`` (rows of
    failed files are not counted as read: they are read again by a later run)."""
    scored = [o for o in outcomes if o.status == "scored"]
    statuses = ("scored", "skipped", "quarantined", "failed")
    files = {s: sum(o.status == s for o in outcomes) for s in statuses}
    rows_scored = sum(o.rows_scored for o in scored)
    rows_rejected = sum(o.rows_rejected for o in scored)
    rows_total = sum(o.rows_total for o in scored)
    if rows_scored + rows_rejected != rows_total:
        raise PipelineError(
            f"rows do not reconcile: {rows_total} != {rows_scored} + {rows_rejected}"
        )
    tokens = sum(o.tokens for o in scored)
    positive_rate = sum(o.positives for o in scored) / rows_scored if rows_scored else None
    warnings = []
    if positive_rate is not None:
        shift = abs(positive_rate - champion.test_positive_rate)
        if shift > config.max_score_shift:
            warnings.append(
                f"positive rate {positive_rate:.3f} differs from the champion's on its test "
                f"split ({champion.test_positive_rate:.3f}) by {shift:.3f}, more than "
                f"{config.max_score_shift:.3f}"
            )
    oov_rate = sum(o.oov_tokens for o in scored) / tokens if tokens else None
    mean_chars = sum(o.text_chars for o in scored) / rows_scored if rows_scored else None
    warnings += _drift(oov_rate, mean_chars, champion.training_figures, config)
    for warning in warnings:
        log.warning("scoring drift: %s", warning)
    make_dirs(out_dir)
    histogram_path = _histogram(scored, out_dir) if rows_scored else None
    summary = RunSummary(
        files=files,
        rows_total=rows_total,
        rows_scored=rows_scored,
        rows_rejected=rows_rejected,
        positive_rate=positive_rate,
        oov_rate=oov_rate,
        mean_chars=mean_chars,
        warnings=warnings,
        report_path=out_dir / "report.md",
        histogram_path=histogram_path,
    )
    atomic_write_json(out_dir / "summary.json", summary.model_dump(mode="json"))
    atomic_write_bytes(out_dir / "report.md", _render(summary, outcomes, champion).encode())
    return summary


def _drift(
    oov_rate: float | None,
    mean_chars: float | None,
    reference: dict[str, float | None],
    config: ScoringConfig,
) -> list[str]:
    """Warnings where this run's texts differ from the training data past the bounds."""
    warnings = []
    train_oov, train_chars = reference.get("oov_rate"), reference.get("mean_chars")
    if (
        oov_rate is not None
        and train_oov is not None
        and oov_rate - train_oov > config.max_oov_shift
    ):
        warnings.append(
            f"out-of-vocabulary rate {oov_rate:.3f} exceeds the training data's "
            f"({train_oov:.3f}) by more than {config.max_oov_shift:.3f}"
        )
    if mean_chars and train_chars:
        ratio = max(mean_chars / train_chars, train_chars / mean_chars)
        if ratio > config.max_length_ratio:
            warnings.append(
                f"mean text length {mean_chars:.0f} characters against the training data's "
                f"{train_chars:.0f}: {ratio:.1f}x apart, more than {config.max_length_ratio:.1f}x"
            )
    return warnings


def _histogram(scored: list[FileOutcome], out_dir: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.sum([o.histogram for o in scored], axis=0)
    edges = np.linspace(0, 1, HISTOGRAM_BINS + 1)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(edges[:-1], counts, width=1 / HISTOGRAM_BINS, align="edge")
    ax.set_xlabel("probability of positive")
    ax.set_ylabel("texts")
    ax.set_title("scores of this run")
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, format="png")
    plt.close(fig)
    path = out_dir / "score_histogram.png"
    atomic_write_bytes(path, image.getvalue())
    return path


_MARKDOWN_SPECIALS = str.maketrans({c: f"\\{c}" for c in "\\`*_~[]<>|&"})


def markdown_cell(text: str, limit: int | None = None) -> str:
    """``text`` as the content of a markdown table cell: printable, on one line, cut to
    ``limit`` characters, with every character markdown would read as markup escaped."""
    return printable(text)[:limit].translate(_MARKDOWN_SPECIALS)


def _render(summary: RunSummary, outcomes: list[FileOutcome], champion: ScoringModel) -> str:
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}%"

    def num(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    files = summary.files
    lines = [
        f"# Scoring run (champion model version {champion.version})",
        "",
        "| files scored | skipped (already scored) | quarantined | failed (left in the inbox) |",
        "|---|---|---|---|",
        f"| {files['scored']} | {files['skipped']} | {files['quarantined']} | {files['failed']} |",
        "",
        "| rows read | scored | rejected |",
        "|---|---|---|",
        f"| {summary.rows_total} | {summary.rows_scored} | {summary.rows_rejected} |",
        "",
        "| drift | this run | reference |",
        "|---|---|---|",
        f"| positive rate | {pct(summary.positive_rate)} | "
        f"{pct(champion.test_positive_rate)} (champion on its test split) |",
        f"| out-of-vocabulary rate | {pct(summary.oov_rate)} | "
        f"{pct(champion.training_figures.get('oov_rate'))} (training data) |",
        f"| mean characters per text | {num(summary.mean_chars)} | "
        f"{num(champion.training_figures.get('mean_chars'))} (training data) |",
        "",
    ]
    lines += [f"**Warning:** {markdown_cell(w)}" for w in summary.warnings]
    lines += [
        "",
        "| file | status | rows | scored | rejected | note |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {markdown_cell(o.source_file)} | {o.status} | {o.rows_total} | {o.rows_scored} | "
        f"{o.rows_rejected} | {markdown_cell(o.reason, 120)} |"
        for o in outcomes
    ]
    return "\n".join(lines) + "\n"
