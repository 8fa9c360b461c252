"""Alerts: the automations and the webhook block the stack sets up, the thresholds that make
a scoring run an alert, and an event that cannot be sent never failing a run. Run on
Prefect's test server; the alerts reaching a webhook from a real stack are tested in
tests/system/test_stack.py."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from deployments.alerts import ALERTS, BLOCK_NAME, PREFIX, WEBHOOK_ENV, ensure_alerts, webhook_url
from lstm_model.events import DRIFT, GATE_REJECTED, INPUT_REJECTED
from lstm_model.scoring.config import ScoringConfig
from lstm_model.scoring.report import RunSummary, rejected_input
from tasks._events import emit


def _summary(quarantined: int, rejected: int, total: int) -> RunSummary:
    return RunSummary(
        files={"scored": 1, "skipped": 0, "quarantined": quarantined, "failed": 0},
        rows_total=total, rows_scored=total - rejected, rows_rejected=rejected,
        positive_rate=0.5, oov_rate=None, mean_chars=None, warnings=[],
        report_path=Path("report.md"), histogram_path=None,
    )  # fmt: skip


def test_a_scoring_run_alerts_on_quarantined_files_or_rejected_rows_past_the_bounds() -> None:
    config = ScoringConfig(alert_quarantined_files=2, alert_rejected_share=0.1)
    assert rejected_input(_summary(1, 10, 100), config) is None  # 10% is not above 10%
    assert rejected_input(_summary(2, 0, 100), config) == "2 files quarantined (alert at 2)"
    assert rejected_input(_summary(0, 11, 100), config) == (
        "11 of 100 rows rejected (11.0%, alert above 10.0%)"
    )
    never = ScoringConfig(alert_quarantined_files=0, alert_rejected_share=1.0)
    assert rejected_input(_summary(50, 100, 100), never) is None


def test_the_webhook_variable_must_hold_an_http_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WEBHOOK_ENV, raising=False)
    assert webhook_url() is None
    monkeypatch.setenv(WEBHOOK_ENV, "hooks.example/alerts")
    with pytest.raises(ValueError, match=f"\\${WEBHOOK_ENV} is 'hooks.example/alerts'"):
        webhook_url()


@pytest.mark.usefixtures("prefect_harness")
def test_alerts_are_automations_that_send_to_one_webhook_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect import get_client
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    def alerts() -> list:  # type: ignore[type-arg]
        with get_client(sync_client=True) as client:
            return [a for a in client.read_automations() if a.name.startswith(PREFIX)]

    monkeypatch.setenv(WEBHOOK_ENV, "http://127.0.0.1:9/alerts")
    ensure_alerts()
    names = ensure_alerts()  # again: upserted, never doubled
    found = alerts()
    assert sorted(a.name for a in found) == sorted(names) == sorted(PREFIX + n for n in ALERTS)
    block = CustomWebhookNotificationBlock.load(BLOCK_NAME)
    assert block.url == "http://127.0.0.1:9/alerts" and block.method == "POST"
    expected = {
        frozenset({"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}),
        frozenset({GATE_REJECTED}), frozenset({INPUT_REJECTED}), frozenset({DRIFT}),
    }  # fmt: skip
    assert {frozenset(a.trigger.expect) for a in found} == expected
    for automation in found:
        (action,) = automation.actions
        assert action.block_document_id == block._block_document_id
        assert "flow_run|ui_url" in action.body  # every message links to its run

    monkeypatch.delenv(WEBHOOK_ENV)
    assert ensure_alerts() == [] and alerts() == []


def test_an_event_that_cannot_be_sent_is_logged_never_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def unreachable(**_: object) -> None:
        raise ConnectionError("no server")

    monkeypatch.setattr("tasks._events.emit_event", unreachable)
    with caplog.at_level(logging.WARNING):
        emit(GATE_REJECTED, "lstm-pipeline.model.3", "model version 3", {"version": 3})
    assert f"event {GATE_REJECTED} not emitted: no server" in caplog.text
