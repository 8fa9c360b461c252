"""The model that answers requests, switched whole when the registry's champion changes.

A background thread reads the champion pointer every ``poll_seconds``. A new champion
(promotion or rollback) is verified and loaded beside the current one and then swapped in
with one assignment: a request reads ``slot.current`` once, so it finishes on the model it
started with, and the next request gets the new one. A version that fails verification is
refused and logged; the previous model keeps answering, and the refused version is tried
again after ``retry_refused_seconds`` (its files may have been restored). Verification
includes the manifest's signature (when a signing key is set) and the canary texts.

A broken champion pointer (garbage, a wrong type, a missing version, a link, a folder) is
never followed: the previous model keeps answering, and the problem is reported by
``/readyz`` and ``/v1/model`` and logged once each time it changes, not at every poll.
What the endpoints show is ``public``: no paths, no hashes (the log has the details).
"""

from __future__ import annotations

import logging
import math
import re
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from lstm_model.release.registry import ChampionPointerError, Registry
from serving.config import ServingConfig
from serving.exported import ExportedModel, load_exported

log = logging.getLogger(__name__)

_PATH = re.compile(r"(?<![\w.])/[^\s:;,'\"()]+")
_HASH = re.compile(r"\b[0-9a-f]{8,}\b…?")
PUBLIC_CHARS = 300


def public(reason: str, *folders: str) -> str:
    """A reason fit for any client: ``folders`` (which may hold spaces) and any other
    machine path blanked, hashes blanked, length capped."""
    for folder in sorted(filter(None, folders), key=len, reverse=True):
        # What lies below a known folder is shown relative to it (``versions/3/...``).
        reason = reason.replace(folder.rstrip("/") + "/", "").replace(folder, "<path>")
    text = _HASH.sub("<hash>", _PATH.sub("<path>", reason))
    return text if len(text) <= PUBLIC_CHARS else text[: PUBLIC_CHARS - 1] + "…"


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
        self.problem: str | None = None
        """What is wrong with the champion pointer now (public), or None."""
        self.waiting_for: str | None = "the first check of the registry has not finished"
        self._retry_at = 0.0
        self._logged: tuple[int, str] | None = None
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

    @property
    def reason(self) -> str:
        """Why no model answers (public), for 503s and ``/readyz``."""
        if self.problem:
            return self.problem
        if self.refused:
            return f"champion version {self.refused.version} refused: {self.refused.reason}"
        return self.waiting_for or "loading"

    def retry_after(self) -> int:
        """Whole seconds until the watcher really looks again at what keeps it from a model."""
        wait = self.config.poll_seconds
        if self.refused and not self.problem:
            wait = max(wait, self._retry_at - time.monotonic())
        return max(1, math.ceil(wait))

    def check(self) -> None:
        """Load the champion if it is not the model answering now (and not refused lately)."""
        try:
            version = self.registry.champion()
        except (ChampionPointerError, OSError) as error:
            self._broken_pointer(self._public(str(error)))
            return
        if self.problem is not None:
            log.info("the champion pointer names version %s again", version)
            self.problem = None
        if version is None:
            self.waiting_for = "no champion model in the registry yet"
            return
        current = self.current
        if current is not None and current.version == version:
            return
        refused = self.refused
        if refused and refused.version == version and time.monotonic() < self._retry_at:
            return
        self.waiting_for = f"loading model version {version}"
        try:
            # leased while it answers: retention keeps its files
            self.registry.hold(version, "prediction service")
            model = load_exported(
                self.registry.root, version, self.config.backend, self.config.inference_threads
            )
        except Exception as error:  # any failure: keep answering with the old one
            self.registry.let_go(version)
            self.refused = Refusal(
                version=version, reason=self._public(str(error)), at=datetime.now(UTC).isoformat()
            )
            self._retry_at = time.monotonic() + self.config.retry_refused_seconds
            keeping = f"still serving version {current.version}" if current else "not ready"
            # Once per change, not every retry (the public text: it has no temporary paths).
            if self._logged != (version, self.refused.reason):
                self._logged = (version, self.refused.reason)
                log.error("refused champion version %d: %s; %s", version, error, keeping)
            return
        self.current = model
        if current is not None:
            self.registry.let_go(current.version)
        self.refused = None
        self._logged = None
        self.waiting_for = None
        log.info(
            "serving model version %d (%s)%s",
            version,
            self.config.backend,
            f", replacing version {current.version}" if current else "",
        )

    def _public(self, reason: str) -> str:
        return public(reason, str(self.registry.root), tempfile.gettempdir())

    def _broken_pointer(self, problem: str) -> None:
        current = self.current
        keeping = f"still serving version {current.version}" if current else "no model loaded"
        problem = f"the champion pointer is broken: {problem}; {keeping}"
        if problem != self.problem:
            log.error("%s", problem)
        self.problem = problem

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception as error:  # nothing may kill the watcher
                self._broken_pointer(self._public(f"{type(error).__name__}: {error}"))
            self._stop.wait(self.config.poll_seconds)
