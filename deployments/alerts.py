"""Alerts: Prefect automations that send a notification through a Prefect notification
block when something needs a person, set up by the stack from the environment.

``$LSTM_PIPELINE_ALERT_WEBHOOK`` (an http(s) URL) turns them on: a generic webhook block
(Prefect's ``CustomWebhookNotificationBlock``, a JSON POST of ``subject`` and ``body``) is
saved as ``lstm-pipeline-alerts``, and one automation per kind of alert sends to it:

- a flow run Failed or Crashed;
- a candidate model rejected by its gate (``lstm-pipeline.gate.rejected``, with the numbers);
- a scoring run that quarantined files or rejected rows above its thresholds
  (``lstm-pipeline.scoring.input-rejected``);
- a scoring run whose texts drifted from the training data (``lstm-pipeline.scoring.drift``).

Each message names the run and links to it in the UI. The server sends them after the
fact, so a receiver that is missing or down never fails the run it reports on. Without the
variable, no alert automation exists (any left from before are removed).
"""

from __future__ import annotations

import logging
import os
from urllib.parse import urlparse

from lstm_model.events import (
    DRIFT,
    GATE_REJECTED,
    INPUT_REJECTED,
    MODEL_RESOURCE,
    SCORING_RESOURCE,
)

log = logging.getLogger(__name__)

WEBHOOK_ENV = "LSTM_PIPELINE_ALERT_WEBHOOK"
BLOCK_NAME = "lstm-pipeline-alerts"
PREFIX = "alert: "


_RUN = "Flow run {{ flow_run.name }} of {{ flow.name }}: {{ flow_run|ui_url }}"
ALERTS: dict[str, tuple[set[str], str, str, str]] = {
    "run failed or crashed": (
        {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"},
        "prefect.flow-run.*",
        # the state the event reports, not the run's state now (a retry may have begun)
        "{{ flow.name }} run {{ flow_run.name }} {{ event.payload.validated_state.name }}",
        "Flow run {{ flow_run.name }} of {{ flow.name }} ended "
        "{{ event.payload.validated_state.name }}: {{ event.payload.validated_state.message }}"
        "\n{{ flow_run|ui_url }}",
    ),
    "gate rejected a model": (
        {GATE_REJECTED},
        f"{MODEL_RESOURCE}.*",
        "model version {{ event.payload.version }} rejected by its gate",
        "{{ event.payload.reason }}\n" + _RUN,
    ),
    "scoring input rejected": (
        {INPUT_REJECTED},
        f"{SCORING_RESOURCE}.*",
        "scoring run {{ flow_run.name }}: {{ event.payload.files_quarantined }} files "
        "quarantined, {{ event.payload.rows_rejected }} rows rejected",
        "{{ event.payload.summary }}\n" + _RUN,
    ),
    "scoring drift": (
        {DRIFT},
        f"{SCORING_RESOURCE}.*",
        "scoring run {{ flow_run.name }}: input drift",
        "{{ event.payload.warnings | join('; ') }}\n" + _RUN,
    ),
}


def webhook_url() -> str | None:
    """The receiver from ``$LSTM_PIPELINE_ALERT_WEBHOOK``; ValueError naming the variable
    if it is set but no http(s) URL."""
    url = os.environ.get(WEBHOOK_ENV, "").strip()
    if not url:
        return None
    parsed = urlparse(url)
    if parsed.scheme not in {"http", "https"} or not parsed.netloc:
        raise ValueError(f"${WEBHOOK_ENV} is {url!r}: give an http(s) URL, or unset it")
    return url


def ensure_alerts() -> list[str]:
    """Save the notification block and upsert the alert automations (or remove them when
    no receiver is set); returns the names of the automations now in place."""
    from prefect import get_client
    from prefect.automations import Automation
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    url = webhook_url()
    with get_client(sync_client=True) as client:
        for automation in client.read_automations():
            if automation.name.startswith(PREFIX):
                client.delete_automation(automation.id)
    if url is None:
        log.info("alerts off: set $%s to a webhook URL to turn them on", WEBHOOK_ENV)
        return []
    block = CustomWebhookNotificationBlock(
        name=BLOCK_NAME,
        url=url,
        method="POST",
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
        timeout=10,
    )
    block_id = block.save(BLOCK_NAME, overwrite=True)
    names = []
    for name, (events, resources, subject, body) in ALERTS.items():
        Automation(
            name=PREFIX + name,
            description=f"Send an alert to the {BLOCK_NAME} webhook: {name}.",
            trigger=EventTrigger(
                expect=events,
                match=ResourceSpecification({"prefect.resource.id": [resources]}),
                posture=Posture.Reactive,
                threshold=1,
            ),
            actions=[SendNotification(block_document_id=block_id, subject=subject, body=body)],
        ).create()
        names.append(PREFIX + name)
    log.info("alerts on: %d automations send to %s", len(names), urlparse(url).netloc)
    return names
