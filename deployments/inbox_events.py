"""Turn files dropped into the scoring inbox into Prefect events.

    python -m deployments.inbox_events [--inbox PATH] [--poll-seconds 2]

Watches the inbox and emits ``lstm-pipeline.inbox.file-ready`` once for each file that
becomes ready by the scoring flow's own settle rule (and again if it changes). The
``nightly-scoring`` deployment has a trigger on that event, so a dropped file is scored
minutes, not a night, later; the schedule stays as the safety net, and the scoring ledger
makes the extra runs harmless (a file is scored once, whichever run gets it).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from prefect.events import emit_event

from lstm_model.config import default_workspace
from lstm_model.data.drops import printable, ready_files
from lstm_model.scoring.config import ScoringConfig

log = logging.getLogger(__name__)
EVENT = "lstm-pipeline.inbox.file-ready"
RESOURCE_PREFIX = "lstm-pipeline.inbox."


def announce_ready(
    inbox: Path, settle_seconds: float, seen: dict[str, tuple[int, int]]
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
            event=EVENT,
            resource={
                "prefect.resource.id": f"{RESOURCE_PREFIX}{name}",
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
    parser.add_argument("--poll-seconds", type=float, default=2.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    inbox = (args.inbox or default_workspace() / "scoring" / "inbox").resolve()
    settle = ScoringConfig().settle_seconds
    log.info("watching %s (settle %.0f s)", inbox, settle)
    seen: dict[str, tuple[int, int]] = {}
    while True:
        try:
            announce_ready(inbox, settle, seen)
        except Exception:  # the watcher outlives any one bad pass; the schedule is the net
            log.exception("could not announce the ready files of %s", inbox)
        time.sleep(args.poll_seconds)


if __name__ == "__main__":
    main()
