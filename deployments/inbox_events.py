"""Turn files dropped into the scoring and labelled inboxes into Prefect events.

    python -m deployments.inbox_events [--inbox PATH] [--labelled-inbox PATH]
                                       [--poll-seconds 2]

Watches both inboxes and emits an event once for each file that becomes ready by its
flow's own settle rule (and again if it changes): ``lstm-pipeline.inbox.file-ready`` for
the scoring inbox, ``lstm-pipeline.labelled.file-ready`` for the labelled one. The
``nightly-scoring`` deployment has a trigger on the first, so a dropped file is scored
minutes, not a night, later; the ``retrain`` deployment has one on the second, so a labelled
drop is trained on the same day, not the next Monday. The schedules stay as the safety
net, and the extra runs are harmless: a file is scored once, and a labelled file becomes a
span once, whichever run gets it (and one run of each deployment runs at a time).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from prefect.events import emit_event

from lstm_model.config import default_workspace
from lstm_model.data.config import LabelledConfig
from lstm_model.data.drops import printable, ready_files
from lstm_model.scoring.config import ScoringConfig

log = logging.getLogger(__name__)
EVENT = "lstm-pipeline.inbox.file-ready"
RESOURCE_PREFIX = "lstm-pipeline.inbox."
LABELLED_EVENT = "lstm-pipeline.labelled.file-ready"
LABELLED_PREFIX = "lstm-pipeline.labelled."


def announce_ready(
    inbox: Path,
    settle_seconds: float,
    seen: dict[str, tuple[int, int]],
    event: str = EVENT,
    prefix: str = RESOURCE_PREFIX,
) -> list[str]:
    """Emit an event for each ready file not announced before in its current form;
    ``seen`` (name -> size, mtime) carries what was announced between calls."""
    inbox.mkdir(parents=True, exist_ok=True)
    announced = []
    present = set()
    for path in ready_files(inbox, settle_seconds):
        try:
            stat = path.lstat()
        except FileNotFoundError:  # scored and moved away since the listing
            continue
        present.add(path.name)
        if seen.get(path.name) == (stat.st_size, stat.st_mtime_ns):
            continue
        seen[path.name] = (stat.st_size, stat.st_mtime_ns)
        # The display form: a name may hold newlines or bytes that are not UTF-8.
        name = printable(path.name)
        emit_event(
            event=event,
            resource={
                "prefect.resource.id": f"{prefix}{name}",
                "prefect.resource.name": name,
            },
            payload={"inbox": str(inbox), "bytes": stat.st_size},
        )
        announced.append(name)
        log.info("announced %s", name)
    for name in set(seen) - present:  # scored and archived, or removed
        del seen[name]
    return announced


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inbox", type=Path, default=None, help="default: the flow's inbox")
    parser.add_argument(
        "--labelled-inbox", type=Path, default=None, help="default: the workspace's"
    )
    parser.add_argument("--poll-seconds", type=float, default=2.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    watched = [
        (
            (args.inbox or default_workspace() / "scoring" / "inbox").resolve(),
            ScoringConfig().settle_seconds, EVENT, RESOURCE_PREFIX, {},
        ),
        (
            (args.labelled_inbox or default_workspace() / "labelled" / "inbox").resolve(),
            LabelledConfig().settle_seconds, LABELLED_EVENT, LABELLED_PREFIX, {},
        ),
    ]  # fmt: skip
    for inbox, settle, event, _, _ in watched:
        log.info("watching %s for %s (settle %.0f s)", inbox, event, settle)
    while True:
        for inbox, settle, event, prefix, seen in watched:
            try:
                announce_ready(inbox, settle, seen, event, prefix)
            except Exception:  # the watcher outlives any bad pass; the schedule is the net
                log.exception("could not announce the ready files of %s", inbox)
        time.sleep(args.poll_seconds)


if __name__ == "__main__":
    main()
