"""Names of the events the pipeline's tasks emit to Prefect, and that the stack's alert
automations listen for: one module owns them, so the emitter and the listener cannot drift
apart. The library itself emits nothing (it never imports Prefect)."""

from __future__ import annotations

GATE_REJECTED = "lstm-pipeline.gate.rejected"
"""A candidate model failed its gate; payload: version, reason (with the numbers)."""

INPUT_REJECTED = "lstm-pipeline.scoring.input-rejected"
"""A scoring run quarantined files or rejected rows above its thresholds; payload: the counts
and a summary."""

DRIFT = "lstm-pipeline.scoring.drift"
"""A scoring run's texts or scores drifted from the training data; payload: the warnings."""

MODEL_RESOURCE = "lstm-pipeline.model"
SCORING_RESOURCE = "lstm-pipeline.scoring"
"""Resource id prefixes: ``<prefix>.<version>``, ``<prefix>.<run id>``."""
