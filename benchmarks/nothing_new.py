"""A retrain with nothing new, end to end, beside a real retrain measured in the same run.

    uv run python benchmarks/nothing_new.py [--source ARCHIVE] [--workspace DIR]

Runs `lstm-pipeline retrain --force` (a real retrain of the default model on the full
data), then `lstm-pipeline retrain` with nothing changed, each as the user runs it: a new
process with its own local Prefect server. Prints both wall times beside the target (the
second at most 30 s) and checks that the second wrote nothing to the registry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import parser

TARGET_SECONDS = 30.0


def _retrain(source: Path, workspace: Path, *extra: str) -> tuple[float, dict]:
    command = [str(Path(sys.executable).with_name("lstm-pipeline")), "retrain",
               "--source", str(source), "--workspace", str(workspace), *extra]  # fmt: skip
    env = {**os.environ, "PREFECT_HOME": str(workspace / "prefect")}
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-5000:]}")
    return seconds, json.loads(done.stdout[done.stdout.index("{") :])


def _snapshot(root: Path) -> list[tuple[str, int, int]]:
    return sorted(
        (str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
    )


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(workspace=Path("artifacts/benchmarks/nothing_new"))
    args = p.parse_args()
    if not args.source.is_file():
        raise SystemExit(f"{args.source} not found: pass --source PATH to the full archive")
    workspace = args.workspace.resolve()
    workspace.mkdir(parents=True, exist_ok=True)

    real_seconds, real = _retrain(args.source, workspace, "--force")
    registry = workspace / "registry"
    before = _snapshot(registry)
    idle_seconds, idle = _retrain(args.source, workspace)
    unchanged = _snapshot(registry) == before

    print(f"real retrain (--force): {real_seconds:7.1f} s, version {real['model_version']}, "
          f"test accuracy {real['metrics']['accuracy']:.4f}")  # fmt: skip
    print(f"nothing new:            {idle_seconds:7.1f} s   target <= {TARGET_SECONDS:.0f} s   "
          f"{'OK' if idle_seconds <= TARGET_SECONDS else 'MISSED'}")  # fmt: skip
    print(f"  ratio nothing-new / real retrain: {idle_seconds / real_seconds:.3f}")
    print(f"  said: {idle['nothing_new']}")
    print(f"  registry unchanged (every file's size and mtime): {unchanged}")
    if not unchanged or idle["nothing_new"] is None:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
