"""The accuracy gate: an absolute bar, no regression against the champion, and none on any
slice beyond its noise.

A slice (a domain's test share) is a few hundred texts, where two equally good models
differ by a few points by chance. Both models are scored on the same texts, so the drop is
judged as a paired comparison (McNemar's test): of the texts where exactly one of the two
is right, the champion is right on ``b`` and the candidate on ``c``. The candidate fails a
slice when its accuracy drops by more than ``max_regression``, ``(b - c) / n``, and that
drop is beyond chance: ``b - c > z * sqrt(b + c)``, ``z`` of ``slice_confidence``.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
from pydantic import BaseModel, ConfigDict

from lstm_model.errors import PipelineError
from lstm_model.evaluation.config import GateConfig


class GateFailed(PipelineError):
    """The candidate did not pass the gate; the message says which condition, with numbers."""


class SliceComparison(BaseModel):
    """The candidate against the champion on one slice, text by text."""

    model_config = ConfigDict(frozen=True)

    slice: str
    n: int
    candidate_accuracy: float
    champion_accuracy: float
    champion_only_right: int
    candidate_only_right: int
    noise: float
    """The drop in accuracy that chance alone reaches at the gate's confidence."""
    passed: bool

    def describe(self, champion: int, max_regression: float) -> str:
        drop = self.champion_accuracy - self.candidate_accuracy
        numbers = (
            f"slice {self.slice} ({self.n} texts): accuracy {self.candidate_accuracy:.4f} "
            f"against champion version {champion}'s {self.champion_accuracy:.4f}"
        )
        if not self.passed:
            return (
                f"{numbers}, a drop of {drop:.4f}: more than the allowed regression "
                f"{max_regression:.4f} and beyond the slice's noise ({self.noise:.4f})"
            )
        if drop > max_regression:
            return f"{numbers}: a drop of {drop:.4f}, within the slice's noise ({self.noise:.4f})"
        return f"{numbers}: no regression beyond {max_regression:.4f}"


def compare_slice(
    name: str,
    labels: np.ndarray,
    candidate: np.ndarray,
    champion: np.ndarray,
    max_regression: float,
    confidence: float,
) -> SliceComparison:
    """Judge the candidate's probabilities against the champion's on one slice."""
    from lstm_model.model.labels import THRESHOLD

    y = np.asarray(labels, dtype=int)
    candidate_right = (np.asarray(candidate).ravel() >= THRESHOLD).astype(int) == y
    champion_right = (np.asarray(champion).ravel() >= THRESHOLD).astype(int) == y
    b = int((champion_right & ~candidate_right).sum())
    c = int((candidate_right & ~champion_right).sum())
    n = len(y)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    noise = z * math.sqrt(b + c) / n if n else 0.0
    drop = (b - c) / n if n else 0.0
    return SliceComparison(
        slice=name, n=n,
        candidate_accuracy=float(candidate_right.mean()) if n else 0.0,
        champion_accuracy=float(champion_right.mean()) if n else 0.0,
        champion_only_right=b, candidate_only_right=c, noise=noise,
        passed=not (drop > max_regression and drop > noise),
    )  # fmt: skip


def with_slices(
    decision: GateDecision, slices: list[SliceComparison], config: GateConfig
) -> GateDecision:
    """The decision with the slices' verdicts added: any failed slice fails the gate."""
    if not slices or decision.champion_version is None:
        return decision
    said = [s.describe(decision.champion_version, config.max_regression) for s in slices]
    failed = [text for s, text in zip(slices, said, strict=True) if not s.passed]
    passed = decision.passed and not failed
    if passed:
        reasons = [*decision.reasons, *said]
    else:
        reasons = [*(decision.reasons if not decision.passed else []), *failed]
    return decision.model_copy(update={"passed": passed, "reasons": reasons, "slices": slices})


class GateDecision(BaseModel):
    """Whether a candidate may be promoted, and why."""

    model_config = ConfigDict(frozen=True)

    passed: bool
    reasons: list[str]
    candidate_accuracy: float
    champion_version: int | None
    champion_accuracy: float | None
    baseline_accuracy: float | None = None
    slices: list[SliceComparison] = []

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
