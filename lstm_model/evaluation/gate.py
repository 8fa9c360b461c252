"""The accuracy gate: an absolute bar, and no regression against the champion."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from lstm_model.errors import PipelineError
from lstm_model.evaluation.config import GateConfig


class GateFailed(PipelineError):
    """The candidate did not pass the gate; the message says which condition, with numbers."""


class GateDecision(BaseModel):
    """Whether a candidate may be promoted, and why."""

    model_config = ConfigDict(frozen=True)

    passed: bool
    reasons: list[str]
    candidate_accuracy: float
    champion_version: int | None
    champion_accuracy: float | None
    baseline_accuracy: float | None = None

    def describe(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return f"gate {verdict}: " + "; ".join(self.reasons)


def decide(
    accuracy: float,
    champion: tuple[int, float] | None,
    config: GateConfig,
    baseline_accuracy: float | None = None,
) -> GateDecision:
    """Apply the bar, the regression rule when there is a champion ``(version, accuracy)``,
    and, when ``config.min_margin_over_baseline`` is set, the margin over the baseline."""
    failures: list[str] = []
    notes: list[str] = []
    if accuracy < config.min_accuracy:
        failures.append(f"test accuracy {accuracy:.4f} is below the bar {config.min_accuracy:.4f}")
    else:
        notes.append(f"test accuracy {accuracy:.4f} meets the bar {config.min_accuracy:.4f}")
    if champion is None:
        notes.append("no champion yet, so only the bar applies")
    else:
        version, best = champion
        drop = best - accuracy
        if drop > config.max_regression:
            failures.append(
                f"test accuracy {accuracy:.4f} is {drop:.4f} below champion version {version} "
                f"({best:.4f}), more than the allowed regression {config.max_regression:.4f}"
            )
        else:
            notes.append(
                f"no regression beyond {config.max_regression:.4f} against champion version "
                f"{version} ({best:.4f})"
            )
    margin = config.min_margin_over_baseline
    if margin is not None:
        if baseline_accuracy is None:
            failures.append(
                f"a margin of {margin:.4f} over the linear baseline is required, but no "
                "baseline was measured (enable it)"
            )
        elif accuracy - baseline_accuracy < margin:
            failures.append(
                f"test accuracy {accuracy:.4f} beats the linear baseline ({baseline_accuracy:.4f}) "
                f"by {accuracy - baseline_accuracy:+.4f}, less than the required {margin:+.4f}"
            )
        else:
            notes.append(
                f"beats the linear baseline ({baseline_accuracy:.4f}) by "
                f"{accuracy - baseline_accuracy:+.4f} (required {margin:+.4f})"
            )
    return GateDecision(
        passed=not failures,
        reasons=failures or notes,
        candidate_accuracy=accuracy,
        champion_version=None if champion is None else champion[0],
        champion_accuracy=None if champion is None else champion[1],
        baseline_accuracy=baseline_accuracy,
    )
