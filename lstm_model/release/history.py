"""The history of the registry: per version, the dataset it was trained on, its accuracy
per slice, its status and why, as a table and a plot."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from lstm_model.artifacts import atomic_write_bytes
from lstm_model.data.config import ACLIMDB_DOMAIN
from lstm_model.release.registry import Registry, VersionInfo


class ModelHistory(BaseModel):
    """The registry's history: a row per version, and the plot, if one was drawn."""

    model_config = ConfigDict(frozen=True)

    rows: list[dict[str, Any]]
    plot: Path | None = None


def model_history(registry_root: Path, plot_path: Path | None = None) -> ModelHistory:
    """The history's rows, and its plot drawn at ``plot_path`` when given."""
    rows = history_rows(registry_root)
    plot = plot_history(registry_root, plot_path) if plot_path and rows else None
    return ModelHistory(rows=rows, plot=plot)


def history_rows(registry_root: Path) -> list[dict[str, Any]]:
    """One row per version, oldest first: version, status, dataset version (its head),
    accuracy per slice (a column ``<slice>_acc`` each, ``-`` where a version has none),
    reason."""
    versions = Registry(registry_root).list_versions()
    slices = _slice_names(versions)
    return [
        {
            "version": v.version,
            "status": v.status,
            "dataset": (v.dataset or "-")[:12],
            **{f"{name}_acc": _shown(v.slices.get(name)) for name in slices},
            "reason": v.reason,
        }
        for v in versions
    ]


def render_history(rows: list[dict[str, Any]]) -> str:
    """The rows as a plain-text table."""
    if not rows:
        return "no model versions registered yet"
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns[:-1]}
    header = "  ".join(c.ljust(widths[c]) for c in columns[:-1]) + "  reason"
    lines = ["  ".join(str(r[c]).ljust(widths[c]) for c in columns[:-1]) + f"  {r['reason']}"
             for r in rows]  # fmt: skip
    return "\n".join([header, *lines])


def plot_history(registry_root: Path, path: Path) -> Path | None:
    """Accuracy per slice over the versions, as a PNG at ``path`` (None: no version yet)."""
    versions = Registry(registry_root).list_versions()
    if not versions:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name in _slice_names(versions):
        points = [(v.version, v.slices[name]) for v in versions if name in v.slices]
        ax.plot(*zip(*points, strict=True), marker="o", label=name)
    for v in versions:
        if v.status == "rejected":
            ax.axvline(v.version, color="red", alpha=0.2)
    ax.set_xlabel("model version (red: rejected)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Accuracy per slice")
    ax.legend(loc="lower left", fontsize="small")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _slice_names(versions: list[VersionInfo]) -> list[str]:
    names = {name for v in versions for name in v.slices}
    return sorted(names, key=lambda n: (n != ACLIMDB_DOMAIN, n))


def _shown(accuracy: float | None) -> str:
    return "-" if accuracy is None else f"{accuracy:.4f}"
