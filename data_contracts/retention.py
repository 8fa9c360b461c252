"""Retention of validation results: each contract run stores one in the GX project, and
the Data Docs list them all, so a weekly pipeline grows both without bound.

The newest ``keep`` results of each contract stay; older ones are removed through GX's own
validation results store, then the Data Docs site is cleaned and built again from what is
left, so no page links to a removed result.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from data_contracts._runner import stored_result
from lstm_model.artifacts import exclusive_lock

log = logging.getLogger(__name__)


class PrunedResult(BaseModel):
    """One validation result removed (or that would be)."""

    model_config = ConfigDict(frozen=True)

    contract: str
    run_time: str
    bytes: int


def prune_results(project_root: Path, keep: int, *, dry_run: bool) -> list[PrunedResult]:
    """Remove all but the newest ``keep`` validation results of each contract in the GX
    project at ``project_root/gx``, and rebuild the Data Docs when any went."""
    gx_root = project_root / "gx"
    if not (gx_root / "great_expectations.yml").is_file():
        return []
    import great_expectations as gx  # heavy import (seconds), so only when pruning

    with exclusive_lock(project_root / ".gx-project.lock"):  # the lock run_suite holds
        context = gx.get_context(mode="file", project_root_dir=project_root)
        store = context.validation_results_store
        by_contract = defaultdict(list)
        for key in store.list_keys():
            by_contract[key.expectation_suite_identifier.name].append(key)
        pruned, keys = [], []
        for contract, found in sorted(by_contract.items()):
            found.sort(key=lambda k: str(k.run_id.run_time), reverse=True)
            for key in found[keep:]:
                stored = stored_result(gx_root, key)
                size = stored.stat().st_size if stored.is_file() else 0
                pruned.append(PrunedResult(
                    contract=contract, run_time=str(key.run_id.run_time), bytes=size,
                ))  # fmt: skip
                keys.append(key)
        if keys and not dry_run:
            for key in keys:
                store.remove_key(key)
            context.clean_data_docs()
            context.build_data_docs()
            log.info("removed %d validation results; Data Docs rebuilt", len(keys))
    return pruned
