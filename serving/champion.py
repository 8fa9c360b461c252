"""The model that answers requests, switched whole when the registry's champion changes.

A background thread reads the champion pointer every ``poll_seconds``. A new champion
(promotion or rollback) is verified and loaded beside the current one and then swapped in
with one assignment: a request reads ``slot.current`` once, so it finishes on the model it
started with, and the next request gets the new one. A version that fails verification is
refused and logged; the previous model keeps answering, and the refused version is tried
again after ``retry_refused_seconds`` (its files may have been restored).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from lstm_model.config import ServingConfig
from lstm_model.exported import ExportedModel, load_exported
from lstm_model.registry import Registry

log = logging.getLogger(__name__)


class Refusal(BaseModel):
    """A champion version that was not loaded, and why."""

    model_config = ConfigDict(frozen=True)

    version: int
    reason: str
    at: str


class ModelSlot:
    """Holds the loaded champion and keeps it in step with the registry."""

    def __init__(self, registry_root: Path, config: ServingConfig) -> None:
        self.registry = Registry(registry_root)
        self.config = config
        self.current: ExportedModel | None = None
        self.refused: Refusal | None = None
        self.waiting_for: str | None = "the first check of the registry has not finished"
        self._retry_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Check the registry now and then every ``poll_seconds`` in a daemon thread."""
        self._thread = threading.Thread(target=self._watch, name="champion-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def check(self) -> None:
        """Load the champion if it is not the model answering now (and not refused lately)."""
        version = self.registry.champion()
        if version is None:
            self.waiting_for = f"no champion model in {self.registry.root} yet"
            return
        current = self.current
        if current is not None and current.version == version:
            return
        refused = self.refused
        if refused and refused.version == version and time.monotonic() < self._retry_at:
            return
        self.waiting_for = f"loading model version {version}"
        try:
            model = load_exported(
                self.registry.root, version, self.config.backend, self.config.inference_threads
            )
        except Exception as error:  # any failure: keep answering with the old one
            self.refused = Refusal(
                version=version, reason=str(error), at=datetime.now(UTC).isoformat()
            )
            self._retry_at = time.monotonic() + self.config.retry_refused_seconds
            keeping = f"still serving version {current.version}" if current else "not ready"
            log.error("refused champion version %d: %s; %s", version, error, keeping)
            return
        self.current = model
        self.refused = None
        self.waiting_for = None
        log.info(
            "serving model version %d (%s)%s",
            version,
            self.config.backend,
            f", replacing version {current.version}" if current else "",
        )

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception:  # a broken pointer file must not kill the watcher
                log.exception("could not read the champion pointer in %s", self.registry.root)
            self._stop.wait(self.config.poll_seconds)
