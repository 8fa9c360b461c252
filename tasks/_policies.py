"""Retry and cache policies shared by the tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from data_contracts import ContractViolation
from lstm_model.artifacts import MANIFEST_NAME, read_manifest
from lstm_model.errors import DownloadError, PipelineError


def retry_on_transient_io(task: Any, task_run: Any, state: Any) -> bool:
    """Retry I/O hiccups and failed downloads; never bad data, which fails the same way."""
    try:
        state.result()
    except DownloadError:
        return True
    except (PipelineError, ContractViolation, FileNotFoundError, PermissionError):
        return False
    except OSError:
        return True
    except Exception:
        return False
    return False


IO_RETRIES: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": [2, 10],
    "retry_condition_fn": retry_on_transient_io,
}
"""Task options for steps that read or write files: retry transient I/O errors twice."""


def published_key(kind: str, folder: Path) -> str | None:
    """Cache key for a task whose output is the artifact at ``folder``.

    None (no caching, the task runs) unless a complete artifact is published there, so
    Prefect never hands back a result whose files were deleted since.
    """
    if not (folder / MANIFEST_NAME).is_file():
        return None
    return f"{kind}-{read_manifest(folder).content_sha256}-{folder.resolve()}"
