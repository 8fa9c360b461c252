"""Where scoring reads and writes, all below one root.

``inbox/`` (users drop files), ``results/`` (one Parquet per scored file), ``rejects/`` (bad
rows of good files, with reasons), ``quarantine/`` (whole bad files and every inbox entry
that is not a regular file, each with a JSON sidecar saying what it is and why),
``archive/`` (inputs once done), ``ledger.sqlite``, ``locks/`` and ``staging/`` (parts of
files scored in parallel). Everything the pipeline writes there is readable by its owner
only (``artifacts.file_mode``); the inbox keeps the mode its users gave it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from lstm_model.artifacts import (
    make_dirs,
)

FOLDERS = ("inbox", "results", "rejects", "quarantine", "archive")


class ScoringFolders(BaseModel):
    """Where scoring reads and writes; every path is below ``root``."""

    model_config = ConfigDict(frozen=True)

    root: Path

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def rejects(self) -> Path:
        return self.root / "rejects"

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def archive(self) -> Path:
        return self.root / "archive"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.sqlite"

    @property
    def staging(self) -> Path:
        """Input and scored parts of files being scored in parallel (see scoring_parts)."""
        return self.root / "staging"

    @property
    def locks(self) -> Path:
        return self.root / "locks"

    def create(self) -> None:
        """Make the folders: the inbox with the mode its users' umask gives it, every
        folder the pipeline writes with the owner-only ``artifacts.dir_mode``."""
        self.inbox.mkdir(parents=True, exist_ok=True)
        for name in (*FOLDERS[1:], "staging", "locks"):
            make_dirs(self.root / name)
