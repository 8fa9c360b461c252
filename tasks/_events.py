"""Emitting the pipeline's own Prefect events (names in ``lstm_model.events``): an event
that cannot be sent is logged, never raised, so an alert never fails the run it is about."""

from __future__ import annotations

import logging
from typing import Any

from prefect.events import emit_event

log = logging.getLogger(__name__)


def emit(event: str, resource: str, name: str, payload: dict[str, Any]) -> None:
    """Emit ``event`` about ``resource`` (an id such as ``lstm-pipeline.model.3``); Prefect
    relates it to the flow and task run it is emitted from."""
    try:
        emit_event(
            event=event,
            resource={"prefect.resource.id": resource, "prefect.resource.name": name},
            payload=payload,
        )
    except Exception as error:  # an alert must never fail the run
        log.warning("event %s not emitted: %s", event, error)
