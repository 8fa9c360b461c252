"""What is deployed where and when: the one place that names schedules and work pools.

Flows are named by entrypoint (``path:function``), never imported, so this module loads
no TensorFlow. Prefect builds each deployment's parameter schema from the flow's typed
signature (the pydantic config models), which is what the UI renders as a form and what
the server checks a run's parameters against before the run is created.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

TIMEZONE_ENV = "LSTM_PIPELINE_TIMEZONE"
DEFAULT_TIMEZONE = "UTC"
CRASH_DETECTION = "crash-flow-runs-without-heartbeat"
ZOMBIE_ENV = "LSTM_PIPELINE_CRASH_AFTER_SECONDS"
HEARTBEAT_SECONDS = 30
"""Flow runs started by the stack's workers send a heartbeat this often (Prefect's minimum)."""


@dataclass(frozen=True)
class WorkPoolSpec:
    """A process work pool and how many flow runs it may run at once (None: no limit)."""

    name: str
    description: str
    concurrency_limit: int | None = None


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment of one flow."""

    name: str
    entrypoint: str
    work_pool: str
    cron: str
    description: str
    tags: tuple[str, ...]
    parameters: dict[str, Any] = field(default_factory=dict)
    concurrency_limit: int | None = None
    trigger_on: str | None = None
    """Also run on each Prefect event of this name (see deployments/inbox_events.py)."""
    job_variables: dict[str, Any] = field(default_factory=dict)
    """What the work pool's workers set for its runs (``env``: environment variables)."""


WORK_POOLS = (
    WorkPoolSpec(
        name="gpu",
        description="Training: workers on machines with a GPU (one run at a time per pool). "
        "A worker without one trains on the CPU and says so in the run log.",
        concurrency_limit=1,
    ),
    WorkPoolSpec(name="cpu", description="Batch scoring and other CPU work."),
)

DEPLOYMENTS = (
    DeploymentSpec(
        name="retrain",
        entrypoint="flows/retrain.py:retrain",
        work_pool="gpu",
        cron="0 3 * * 1",  # Mondays 03:00
        description="Weekly retraining, and on each labelled drop: ingest -> take labelled "
        "drops -> (nothing new? stop) -> validate -> tokenise -> train -> evaluate -> gate -> "
        "export with parity -> promote. Parameters default to the README's.",
        tags=("training", "weekly"),
        # One retrain at a time: a burst of labelled drops queues runs, each of which finds
        # nothing new once the first has trained on them all.
        concurrency_limit=1,
        trigger_on="lstm-pipeline.labelled.file-ready",
        # The GPU environment's backend (make gpu-worker); a worker without it trains on
        # TensorFlow on the CPU and says so in the run log.
        job_variables={"env": {"KERAS_BACKEND": "torch"}},
    ),
    DeploymentSpec(
        name="nightly-scoring",
        entrypoint="flows/score.py:score_inbox",
        work_pool="cpu",
        cron="0 1 * * *",  # every night 01:00
        description="Score every new file in the inbox with the champion model, exactly once.",
        tags=("scoring", "nightly"),
        # One scoring run at a time; the per-file lock guards runs started outside Prefect.
        concurrency_limit=1,
        trigger_on="lstm-pipeline.inbox.file-ready",
    ),
    DeploymentSpec(
        name="weekly-retention",
        entrypoint="flows/retention.py:retention",
        work_pool="cpu",
        cron="0 5 * * 1",  # Mondays 05:00, after the retrain
        description="Free the model files of old versions, finished runs' working files and "
        "old validation results. Keeps the champion, rollback targets, the newest accepted "
        "versions, anything in use, and every version's manifest and reports.",
        tags=("maintenance", "weekly"),
        concurrency_limit=1,
    ),
)


def timezone() -> str:
    """Time zone of every schedule: ``$LSTM_PIPELINE_TIMEZONE``, else UTC (never implicit)."""
    return os.environ.get(TIMEZONE_ENV) or DEFAULT_TIMEZONE


def zombie_seconds() -> int:
    """Seconds without a heartbeat after which a running flow run is marked Crashed:
    ``$LSTM_PIPELINE_CRASH_AFTER_SECONDS``, else 3 missed heartbeats."""
    return check_zombie_seconds(int(os.environ.get(ZOMBIE_ENV) or 3 * HEARTBEAT_SECONDS))


def check_zombie_seconds(seconds: int) -> int:
    """``seconds`` if a live run cannot be taken for a dead one: it must be longer than
    the gap between two heartbeats, else every healthy run would be marked Crashed."""
    if seconds <= HEARTBEAT_SECONDS:
        raise ValueError(
            f"{ZOMBIE_ENV}={seconds}: a flow run is marked Crashed after that many seconds "
            f"without a heartbeat, and heartbeats come every {HEARTBEAT_SECONDS} s; "
            f"give more than {HEARTBEAT_SECONDS}"
        )
    return seconds
