"""Prefect's cost per task: flows of no-op tasks against the same calls made directly.

    uv run python benchmarks/orchestration_overhead.py [--small 200] [--large 1000]
        [--repeats 5] [--drain 5]

Runs under a temporary local Prefect server (SQLite), as `lstm-pipeline` does. Each repeat
times a flow of --small no-op tasks and one of --large, after --drain seconds that let the
server work through the events of the run before (Prefect sends task states as events in
the background; without the pause one run's backlog lands in the next one's time). The
cost per task is the slope between the two sizes, the cost per flow run what is left of the
small flow; the reference is the same calls made as plain functions in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time


def noop(i: int) -> int:
    return i


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", type=int, default=200)
    p.add_argument("--large", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--drain", type=float, default=5.0)
    args = p.parse_args()

    from prefect import flow, task
    from prefect.testing.utilities import prefect_test_harness

    noop_task = task(noop, name="noop", persist_result=False)

    @flow(name="overhead", persist_result=False)
    def many(n: int) -> int:
        return sum(noop_task(i) for i in range(n))

    def direct(n: int) -> int:
        return sum(noop(i) for i in range(n))

    def timed(call, n: int) -> float:  # type: ignore[no-untyped-def]
        time.sleep(args.drain)
        started = time.perf_counter()
        assert call(n) == n * (n - 1) // 2
        return time.perf_counter() - started

    small, large, plain = [], [], []
    with prefect_test_harness(server_startup_timeout=120):
        many(5)  # warm-up: first flow run, imports
        for _ in range(args.repeats):
            small.append(timed(many, args.small))
            large.append(timed(many, args.large))
            plain.append(timed(direct, args.large) / args.large)
    per_task = statistics.median(
        (b - a) / (args.large - args.small) for a, b in zip(small, large, strict=True)
    )
    per_run = statistics.median(small) - args.small * per_task
    print(f"median of {args.repeats} repeats, flows of {args.small} and {args.large} no-op tasks")
    print(f"flow of {args.small:>5} tasks: {statistics.median(small):7.2f} s")
    print(f"flow of {args.large:>5} tasks: {statistics.median(large):7.2f} s")
    print(f"per task:  {1000 * per_task:6.2f} ms  vs  a direct call "
          f"{1e6 * statistics.median(plain):.2f} us (the reference)")  # fmt: skip
    print(f"per flow run: {per_run:5.2f} s")


if __name__ == "__main__":
    main()
