"""Create the work pools and apply the deployments to the Prefect server at PREFECT_API_URL.

    python -m deployments.apply [--root .]

Idempotent: pools are created or updated, deployments upserted by name.
"""

from __future__ import annotations

import argparse
import logging
from datetime import timedelta
from pathlib import Path
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
from prefect.events import DeploymentEventTrigger
from prefect.exceptions import ObjectNotFound
from prefect.flows import Flow
from prefect.schedules import Cron

from deployments.alerts import ensure_alerts
from deployments.specs import (
    CRASH_DETECTION,
    DEPLOYMENTS,
    WORK_POOLS,
    DeploymentSpec,
    check_zombie_seconds,
    timezone,
    zombie_seconds,
)

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]


def ensure_work_pools() -> None:
    """Create each process work pool, or bring its description and limit up to date."""
    with get_client(sync_client=True) as client:
        for pool in WORK_POOLS:
            try:
                client.read_work_pool(pool.name)
            except ObjectNotFound:
                client.create_work_pool(
                    WorkPoolCreate(
                        name=pool.name,
                        type="process",
                        description=pool.description,
                        concurrency_limit=pool.concurrency_limit,
                    )
                )
                log.info("work pool %s created", pool.name)
                continue
            client.update_work_pool(
                pool.name,
                WorkPoolUpdate(
                    description=pool.description, concurrency_limit=pool.concurrency_limit
                ),
            )


def ensure_crash_detection(within_seconds: int | None = None) -> None:
    """The automation that marks a flow run Crashed when its heartbeats stop (a worker or
    its machine killed mid-run), as Prefect's guide to zombie flow runs sets it up."""
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    within = check_zombie_seconds(within_seconds) if within_seconds else zombie_seconds()
    terminal = ("Completed", "Failed", "Cancelled", "Crashed")
    automation = Automation(
        name=CRASH_DETECTION,
        description=f"Mark a flow run Crashed when no heartbeat comes for {within} s.",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", *(f"prefect.flow-run.{s}" for s in terminal)},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=within),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"No heartbeat for {within} s: the worker or its machine stopped "
                "mid-run. Retry the run: scoring and training pick up where they stopped.",
            )
        ],
    )
    with get_client(sync_client=True) as client:
        for existing in client.read_automations_by_name(CRASH_DETECTION):
            client.delete_automation(existing.id)
    automation.create()


def apply_deployment(spec: DeploymentSpec, root: Path = ROOT) -> UUID:
    """Upsert one deployment; its flow code is read from ``root`` by the worker."""
    flow = Flow.from_source(source=str(root), entrypoint=spec.entrypoint)
    triggers = []
    if spec.trigger_on:
        triggers.append(
            DeploymentEventTrigger(
                name=f"on {spec.trigger_on}",
                expect={spec.trigger_on},
                match={"prefect.resource.id": "lstm-pipeline.*"},
            )
        )
    return flow.deploy(
        name=spec.name,
        work_pool_name=spec.work_pool,
        schedules=[Cron(spec.cron, timezone=timezone())],
        description=spec.description,
        tags=list(spec.tags),
        parameters=spec.parameters,
        concurrency_limit=spec.concurrency_limit,
        triggers=triggers,
        job_variables=spec.job_variables,
        enforce_parameter_schema=True,
        build=False,
        push=False,
        print_next_steps=False,
        ignore_warnings=True,  # process pools for local work are the point here
    )


def apply_all(root: Path = ROOT) -> dict[str, UUID]:
    """Work pools, crash detection, alerts, then every deployment: deployment name -> id."""
    ensure_work_pools()
    ensure_crash_detection()
    ensure_alerts()
    return {spec.name: apply_deployment(spec, root) for spec in DEPLOYMENTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="repository the workers run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name, deployment_id in apply_all(args.root.resolve()).items():
        log.info("deployment %s: %s", name, deployment_id)


if __name__ == "__main__":
    main()
