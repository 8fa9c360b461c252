"""Prefect's cost per task: a flow of no-op tasks against the same calls made directly.

    uv run python benchmarks/orchestration_overhead.py [--tasks 200] [--repeats 3]

Runs under a temporary local Prefect server (SQLite), as `lstm-pipeline` does. Prints the
median time of a flow that calls one no-op task --tasks times, the same calls made as plain
functions, and the difference per task: what each step of the pipeline pays to be
orchestrated (state tracking, logging, retries/caching hooks).
"""

from __future__ import annotations

import argparse
import statistics
import time


def noop(i: int) -> int:
    return i


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    from prefect import flow, task
    from prefect.testing.utilities import prefect_test_harness

    noop_task = task(noop, name="noop", persist_result=False)

    @flow(name="overhead", persist_result=False)
    def many(n: int) -> int:
        return sum(noop_task(i) for i in range(n))

    def direct(n: int) -> int:
        return sum(noop(i) for i in range(n))

    flow_times, direct_times = [], []
    with prefect_test_harness(server_startup_timeout=120):
        many(5)  # warm-up: first flow run, imports
        for _ in range(args.repeats):
            started = time.perf_counter()
            assert many(args.tasks) == direct(args.tasks)
            flow_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            direct(args.tasks)
            direct_times.append(time.perf_counter() - started)
    in_flow, plain = statistics.median(flow_times), statistics.median(direct_times)
    print(f"{args.tasks} no-op tasks, median of {args.repeats}")
    print(f"flow of tasks:   {in_flow:8.3f} s (flow run included)")
    print(f"direct calls:    {plain:8.6f} s")
    print(f"overhead per task: {1000 * (in_flow - plain) / args.tasks:.1f} ms")


if __name__ == "__main__":
    main()
