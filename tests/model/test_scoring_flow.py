"""The scoring flow under Prefect's test harness, with the GX scoring contracts."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from data_contracts import ContractViolation, build_data_docs
from data_contracts.scoring import validate_scoring_input, validate_scoring_output
from flows.score import score_inbox
from lstm_model.errors import PipelineError
from lstm_model.events import INPUT_REJECTED
from lstm_model.scoring.config import ScoringConfig
from tests.helpers.events import related_ids, server_events

pytestmark = pytest.mark.usefixtures("prefect_harness")  # one test server for the session


def test_flow_scores_a_mixed_inbox_and_publishes_its_report(  # type: ignore[no-untyped-def]
    registry_with_champion, tmp_path: Path, prefect_harness: str
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    inbox = tmp_path / "scoring" / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "good.txt").write_text("Loved it.\nHated it.\n\n")
    (inbox / "bad.txt").write_bytes(b"\x00\x01binary")
    os.mkfifo(inbox / "pipe.txt")  # quarantined as it is: never opened
    kwargs = {
        "workspace": tmp_path,
        "registry": registry_with_champion,
        "config": ScoringConfig(settle_seconds=0),
    }
    state = score_inbox(**kwargs, return_state=True)
    summary = state.result()
    assert summary.files == {"scored": 1, "skipped": 0, "quarantined": 2, "failed": 0}
    assert (summary.rows_total, summary.rows_scored, summary.rows_rejected) == (3, 2, 1)
    # past the alert bounds (a quarantined file; a third of the rows rejected): an event
    run = f"prefect.flow-run.{state.state_details.flow_run_id}"
    (event,) = server_events(prefect_harness, INPUT_REJECTED, lambda e: run in related_ids(e))
    assert event["payload"]["files_quarantined"] == 2 and event["payload"]["rows_rejected"] == 1
    assert event["payload"]["summary"] == (
        "2 files quarantined (alert at 1); 1 of 3 rows rejected (33.3%, alert above 10.0%)"
    )
    assert len(list((tmp_path / "scoring" / "results").glob("good.*.v1.parquet"))) == 1
    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["scoring-report"])),
            sort=ArtifactSort.CREATED_DESC,  # this run's: the test server is the session's
            limit=1,
        )
    assert "| 3 | 2 | 1 |" in str(artifact.data) and "data:image/png;base64," in str(artifact.data)
    # the same content dropped again is skipped by the next run
    (inbox / "copy.txt").write_text("Loved it.\nHated it.\n\n")
    again = score_inbox(**kwargs)
    assert again.files == {"scored": 0, "skipped": 1, "quarantined": 0, "failed": 0}
    docs = tmp_path / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    assert "scoring_input" in docs.read_text() and "scoring_output" in docs.read_text()


def test_scoring_contracts_name_what_is_wrong(tmp_path: Path) -> None:
    rows = pd.DataFrame({"id": ["a", "a"], "text": ["fine", "  "], "row_number": [1, 2]})
    with pytest.raises(ContractViolation) as info:
        validate_scoring_input(rows, workspace=tmp_path, max_text_chars=100)
    message = str(info.value)
    assert "expect_column_values_to_be_unique" in message
    assert "expect_column_values_to_not_match_regex" in message
    out = pd.DataFrame({"id": ["a", "b"], "probability": [0.2, 1.3], "label": [1, 1]})
    with pytest.raises(ContractViolation) as info:
        validate_scoring_output(out, workspace=tmp_path, rows=3)
    message = str(info.value)
    assert "expect_table_row_count_to_equal" in message
    assert "expect_column_values_to_be_between" in message
    assert "expect_column_pair_values_to_be_equal" in message


def test_a_gx_store_file_cut_by_a_kill_is_rebuilt(tmp_path: Path) -> None:
    rows = pd.DataFrame({"id": ["a"], "text": ["fine"], "row_number": [1]})
    validate_scoring_input(rows, workspace=tmp_path, max_text_chars=100)
    stored = tmp_path / "gx" / "validation_definitions" / "scoring_input.json"
    stored.write_text("")  # what a process killed while GX wrote it leaves
    validate_scoring_input(rows, workspace=tmp_path, max_text_chars=100)
    assert json.loads(stored.read_text())["name"] == "scoring_input"


def test_chunk_contracts_leave_the_data_docs_to_their_run_unless_they_fail(tmp_path: Path) -> None:
    site = tmp_path / "gx" / "uncommitted" / "data_docs" / "local_site"
    stored = tmp_path / "gx" / "uncommitted" / "validations"

    def pages() -> int:
        return len(list((site / "validations").rglob("*.html")))

    rows = pd.DataFrame({"id": ["a"], "text": ["fine"], "row_number": [1]})
    validate_scoring_input(rows, workspace=tmp_path, max_text_chars=100)
    assert len(list(stored.rglob("*.json"))) == 1  # the result is kept...
    assert not (site / "index.html").exists()  # ...and no site is built for a chunk that passes
    with pytest.raises(ContractViolation) as info:
        validate_scoring_input(rows.assign(text=[" "]), workspace=tmp_path, max_text_chars=100)
    assert pages() == 1 and f"Data Docs: {(site / 'index.html').as_uri()}" in str(info.value)
    assert build_data_docs(tmp_path) == (site / "index.html").as_uri()
    assert pages() == 2 and len(list(stored.rglob("*.json"))) == 2
    assert build_data_docs(tmp_path / "elsewhere") is None  # no project: nothing to build

    since = datetime.now(UTC)
    assert build_data_docs(tmp_path, since=since) is None  # nothing new: nothing rendered
    validate_scoring_input(rows, workspace=tmp_path, max_text_chars=100)
    newest = max(stored.rglob("*.json"), key=lambda p: p.stat().st_mtime)
    oldest = min(stored.rglob("*.json"), key=lambda p: p.stat().st_mtime)
    oldest.write_text(oldest.read_text()[:50])  # what a run killed while GX wrote it leaves
    assert build_data_docs(tmp_path, since=since) == (site / "index.html").as_uri()
    assert pages() == 3 and oldest.exists()  # only the new result was read and rendered
    assert build_data_docs(tmp_path) is not None  # all of them: the cut one is dropped
    assert not oldest.exists() and newest.exists() and pages() >= 2


def test_a_task_that_fails_outside_the_library_fails_only_its_file(  # type: ignore[no-untyped-def]
    registry_with_champion, tmp_path: Path, monkeypatch
) -> None:
    import tasks.scoring

    inbox = tmp_path / "scoring" / "inbox"
    inbox.mkdir(parents=True)
    (inbox / "good.txt").write_text("Loved it.\n")
    (inbox / "doomed.txt").write_text("Hated it.\n")
    real = tasks.scoring.score_file

    def lost_worker(path: Path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if path.name == "doomed.txt":
            raise PipelineError("the worker was lost")
        return real(path, *args, **kwargs)

    def full_disk(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tasks.scoring, "score_file", lost_worker)
    monkeypatch.setattr(tasks.scoring, "build_data_docs", full_disk)  # the run's last task
    state = score_inbox(
        workspace=tmp_path,
        registry=registry_with_champion,
        config=ScoringConfig(settle_seconds=0),
        return_state=True,
    )
    assert state.is_completed(), state  # the files' outcomes stand: the Data Docs wait
    summary = state.result()
    assert summary.files == {"scored": 1, "skipped": 0, "quarantined": 0, "failed": 1}
    assert (inbox / "doomed.txt").exists()  # left for the next run
    assert "| doomed.txt | failed | 0 | 0 | 0 | PipelineError: the worker was lost |" in (
        summary.report_path.read_text()
    )
