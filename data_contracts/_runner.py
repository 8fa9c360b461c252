"""Run a Great Expectations suite on a DataFrame, build Data Docs, explain failures.

Shared by the contract modules; each of those owns its expectations. The GX project
lives in ``<workspace>/gx`` (a File Data Context) so validation results accumulate and
the Data Docs site lists every run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from lstm_model.artifacts import exclusive_lock
from lstm_model.errors import DataContractError

log = logging.getLogger(__name__)

_DATASOURCE = "lstm_pipeline"
_BATCH = "whole_frame"
_SNIPPET = 80


class ExpectationFailure(BaseModel):
    """One failed expectation: what was expected, what was seen, and example offenders."""

    expectation: str
    kwargs: dict[str, Any]
    observed: str
    examples: list[Any] = Field(default_factory=list)

    def describe(self) -> str:
        args = ", ".join(f"{k}={_short(v)}" for k, v in self.kwargs.items())
        text = f"{self.expectation}({args}): {self.observed}"
        if self.examples:
            text += "\n      e.g. " + "\n      e.g. ".join(_short(e, 160) for e in self.examples)
        return text


class ContractResult(BaseModel):
    """Outcome of one contract run."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    contract: str
    success: bool
    evaluated: int
    failures: list[ExpectationFailure]
    data_docs: str | None
    details: dict[str, Any] = Field(default_factory=dict)

    def summary(self) -> str:
        """Human-readable report: each failed expectation with offending examples."""
        head = f"data contract {self.contract!r}: " + (
            "passed"
            if self.success
            else f"{len(self.failures)} of {self.evaluated} expectations failed"
        )
        lines = [head, *(f"  - {f.describe()}" for f in self.failures)]
        if self.data_docs:
            lines.append(f"  Data Docs: {self.data_docs}")
        return "\n".join(lines)


class ContractViolation(DataContractError):
    """Raised when data breaks its contract; the message lists every failure."""

    def __init__(self, result: ContractResult) -> None:
        super().__init__(result.summary())
        self.result = result


def run_suite(
    contract: str,
    frame: pd.DataFrame,
    expectations: Sequence[Any],
    *,
    project_root: Path,
    id_columns: Sequence[str],
    max_examples: int,
    data_docs: bool = True,
) -> ContractResult:
    """Validate ``frame`` against ``expectations`` with a GX checkpoint; update Data Docs.

    The result is kept in the project's validation results store either way. With
    ``data_docs=False`` the Data Docs are updated only when the contract fails (so that the
    violation's link shows it); the caller builds them once later (``build_data_docs``).
    Rebuilding the site is most of a small frame's validation, and grows with the results
    stored, so contracts run on every chunk of a file leave it to the end of their run.
    """
    import great_expectations as gx  # heavy import (seconds), so only when validating
    from great_expectations.checkpoint import UpdateDataDocsAction

    project_root.mkdir(parents=True, exist_ok=True)
    # The File Data Context rewrites its YAML/JSON stores and the Data Docs on every run:
    # parallel workers (the Dask scoring path) take turns, or they corrupt each other's files.
    with exclusive_lock(project_root / ".gx-project.lock"):
        context = _context(project_root)
        suite = context.suites.add_or_update(
            gx.ExpectationSuite(name=contract, expectations=list(expectations))
        )
        source = context.data_sources.add_or_update_pandas(name=_DATASOURCE)
        asset = next((a for a in source.assets if a.name == contract), None)
        asset = asset or source.add_dataframe_asset(name=contract)
        batch = next((b for b in asset.batch_definitions if b.name == _BATCH), None)
        batch = batch or asset.add_batch_definition_whole_dataframe(_BATCH)
        definition = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=contract, data=batch, suite=suite)
        )
        checkpoint = context.checkpoints.add_or_update(
            gx.Checkpoint(
                name=contract,
                validation_definitions=[definition],
                actions=[UpdateDataDocsAction(name="update_data_docs")] if data_docs else [],
                result_format={
                    "result_format": "SUMMARY",
                    "unexpected_index_column_names": [c for c in id_columns if c in frame.columns],
                    "partial_unexpected_count": max_examples,
                },
            )
        )
        outcome = checkpoint.run(batch_parameters={"dataframe": frame})
        results = [r for run in outcome.run_results.values() for r in run.results]
        failures = [_failure(r, max_examples) for r in results if not r.success]
        if failures and not data_docs:
            _render(context, list(outcome.run_results))
        docs = [site["site_url"] for site in context.get_docs_sites_urls()]
        log.info("contract %s: Data Docs at %s", contract, docs[0] if docs else "(none)")
        return ContractResult(
            contract=contract,
            success=not failures,
            evaluated=len(results),
            failures=failures,
            data_docs=docs[0] if docs else None,
        )


def build_data_docs(project_root: Path, *, since: datetime | None = None) -> str | None:
    """Render the Data Docs pages of the validation results stored since ``since`` (every
    stored result when None), with their suites' pages and the index.

    A stored result that is not valid JSON (a process killed while GX wrote it) is dropped
    with a warning: GX stops the whole build on it. The site's address; None where there
    is no GX project yet, or no result since ``since``.
    """
    gx_root = project_root / "gx"
    if not (gx_root / "great_expectations.yml").is_file():
        return None
    with exclusive_lock(project_root / ".gx-project.lock"):
        context = _context(project_root)
        keys = [
            key
            for key in context.validation_results_store.list_keys()
            if (since is None or key.run_id.run_time >= since)
            and _intact(stored_result(gx_root, key))
        ]
        if since is not None and not keys:
            return None
        sites = context.build_data_docs() if since is None else _render(context, keys)
    log.info("Data Docs of %d results rendered: %s", len(keys), ", ".join(sites.values()))
    return next(iter(sites.values()), None)


def _render(context: Any, keys: list[Any]) -> dict[str, str]:
    """The Data Docs pages of these validation results and of their suites, and the index
    (what GX's UpdateDataDocsAction renders for one result)."""
    suites = {key.expectation_suite_identifier for key in keys}
    return context.build_data_docs(resource_identifiers=[*keys, *suites])


def stored_result(gx_root: Path, key: Any) -> Path:
    """The file of one validation result (a ``ValidationResultIdentifier``) in the store."""
    parts = ("uncommitted", "validations", *key.to_tuple())
    return gx_root.joinpath(*parts[:-1], f"{parts[-1]}.json")


def _intact(path: Path) -> bool:
    try:
        json.loads(path.read_bytes())
    except ValueError:  # cut JSON or bytes; an unreadable file is an error, not damage
        log.warning("GX validation result %s is damaged (a killed run?); dropping it", path)
        path.unlink(missing_ok=True)
        return False
    return True


def _context(project_root: Path) -> Any:
    """The project's File Data Context, its stores first repaired; under the caller's lock."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    _repair_stores(project_root / "gx")
    context = gx.get_context(mode="file", project_root_dir=project_root)
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _repair_stores(gx_root: Path) -> None:
    """Delete stored suites, validation definitions and checkpoints that are not valid JSON.

    GX writes its file stores in place, so a process killed mid-write leaves an empty or
    cut file, and every later run fails on it. Each of these objects is rebuilt from code on
    every run (``add_or_update`` in ``run_suite``), so a damaged copy is safe to drop.
    """
    for folder in ("expectations", "validation_definitions", "checkpoints"):
        for path in (gx_root / folder).glob("*.json"):
            try:
                json.loads(path.read_text())
            except (ValueError, UnicodeDecodeError):
                log.warning("GX store file %s is damaged (a killed run?); rebuilding it", path)
                path.unlink()


def _failure(result: Any, max_examples: int) -> ExpectationFailure:
    config = result.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k not in {"batch_id", "result_format"}}
    if "row_condition" in kwargs:
        kwargs["row_condition"] = _condition_text(kwargs["row_condition"])
    info = result.exception_info or {}
    if info.get("raised_exception"):
        return ExpectationFailure(
            expectation=config.type,
            kwargs=kwargs,
            observed=f"could not be evaluated: {info.get('exception_message')}",
        )
    detail = result.result or {}
    if "unexpected_count" in detail and detail.get("unexpected_count"):
        percent = detail.get("unexpected_percent") or 0.0
        observed = (
            f"{detail['unexpected_count']} unexpected of {detail.get('element_count')} rows "
            f"({percent:.2f}%)"
        )
        examples = detail.get("partial_unexpected_index_list") or detail.get(
            "partial_unexpected_list", []
        )
    else:
        observed = f"observed {_short(detail.get('observed_value'))}"
        examples = []
    return ExpectationFailure(
        expectation=config.type,
        kwargs=kwargs,
        observed=observed,
        examples=[_plain(e) for e in examples[:max_examples]],
    )


def _condition_text(condition: Any) -> str:
    if isinstance(condition, dict) and condition.get("type") == "comparison":
        return f"{condition['column']['name']} {condition['operator']} {condition['parameter']!r}"
    return str(condition)


def _plain(value: Any) -> Any:
    """NumPy scalars and tuples to plain JSON-able Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if isinstance(value, str) and len(value) > _SNIPPET:
        return value[:_SNIPPET] + "…"
    return value


def _short(value: Any, limit: int = _SNIPPET) -> str:
    text = repr(_plain(value)) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
