"""Where the default suite spends CPU: seconds per test and per module, children included.

    python benchmarks/suite_cpu.py [--out suite-cpu.jsonl] [pytest arguments...]

Runs pytest (2 workers, as ``make test``) with this file as a plugin. Around every test it
sums the CPU time of the worker and of every process below it (user + system, with the
children they reaped), so servers, CLI runs, Dask workers and flow-run processes count
for the test that made them work. Prints the modules and tests that cost most, beside the
suite's whole CPU time (the reference). Wall time per test is a poor guide here: the
system tests mostly wait.
"""

from __future__ import annotations

import collections
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

OUT_ENV = "SUITE_CPU_OUT"


def _cpu_below_me() -> float:
    me = psutil.Process()
    total = 0.0
    for process in [me, *me.children(recursive=True)]:
        try:
            t = process.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system + t.children_user + t.children_system
    return total


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: Any, nextitem: Any) -> Any:
    cpu, wall, start = _cpu_below_me(), time.monotonic(), time.time()
    yield
    record = {
        "id": item.nodeid,
        "cpu": _cpu_below_me() - cpu,
        "wall": time.monotonic() - wall,
        "start": start,
        "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
    }
    with open(os.environ[OUT_ENV], "a") as out:
        out.write(json.dumps(record) + "\n")


def main() -> None:
    args = sys.argv[1:]
    out = Path("suite-cpu.jsonl")
    if args[:1] == ["--out"]:
        out, args = Path(args[1]), args[2:]
    out.unlink(missing_ok=True)
    # The plugin alone on the path: benchmarks/ itself holds modules (``serving``) that
    # would shadow the project's packages in every process the suite starts.
    plugin_dir = Path(tempfile.mkdtemp(prefix="suite-cpu-"))
    shutil.copy(__file__, plugin_dir / "suite_cpu.py")
    env = {**os.environ, OUT_ENV: str(out.resolve()), "PYTHONPATH": str(plugin_dir)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "suite_cpu", "-q", *args], env=env
        )
    finally:
        shutil.rmtree(plugin_dir)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    whole = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    modules: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0])
    for row in rows:
        module = modules[row["id"].split("::")[0]]
        module[0] += row["cpu"]
        module[1] += row["wall"]
        module[2] += 1
    elapsed = time.monotonic() - started
    counted = sum(r["cpu"] for r in rows)
    print(f"\n{len(rows)} tests, pytest exit {done.returncode}, wall {elapsed:.0f} s")
    print(f"CPU counted per test {counted:.0f} s; the whole run's {whole:.0f} s")
    for name, (cpu, wall, n) in sorted(modules.items(), key=lambda m: -m[1][0])[:20]:
        print(f"{cpu:8.1f} s CPU {wall:8.1f} s wall {n:4d} tests  {name}")
    for row in sorted(rows, key=lambda r: -r["cpu"])[:20]:
        print(f"{row['cpu']:8.1f} s CPU {row['wall']:8.1f} s wall  {row['id']}")


if __name__ == "__main__":
    main()
