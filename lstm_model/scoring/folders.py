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

from lstm_model.data.drops import DropFolders


class ScoringFolders(DropFolders):
    """Where scoring reads and writes; every path is below ``root``."""

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.sqlite"

    @property
    def staging(self) -> Path:
        """Input and scored parts of files being scored in parallel (see ``parallel``)."""
        return self.root / "staging"

    @property
    def locks(self) -> Path:
        return self.root / "locks"

    def written(self) -> tuple[Path, ...]:
        return (self.results, *super().written(), self.staging, self.locks)
