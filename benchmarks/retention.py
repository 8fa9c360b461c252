"""Disk use after ten simulated weekly retrains, with and without the retention policy,
and the time of a `gc` run.

    uv run python benchmarks/retention.py [--workspace DIR] [--weeks 10]

Each week is `lstm-pipeline retrain --force` as a user runs it (a new process, its own
local Prefect server) on the committed fixture with a tiny model and that week's seed, so
every week registers, gates, exports and (when it passes) promotes a new version, leaves a
run folder and stores two validation results. Then the disk use of the registry, the runs
and the GX project is measured, `lstm-pipeline gc --dry-run` and `lstm-pipeline gc` are
timed with the default policy, and the disk use is measured again. Applying the policy
once after ten weeks leaves what applying it every week would: what it keeps depends on
the registry's state, not on its past.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import parser

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "aclImdb_sample.tar.gz"
TINY = [
    *("--min-rows", "100", "--min-accuracy", "0", "--no-baseline", "--max-regression", "1"),
    *("--epochs", "1", "--maxlen", "64", "--vocab-size", "2000", "--units", "8"),
    *("--embedding-dim", "8"),
]


def _cli(workspace: Path, *args: str) -> tuple[float, str]:
    command = [str(Path(sys.executable).with_name("lstm-pipeline")), *args,
               "--workspace", str(workspace)]  # fmt: skip
    env = {**os.environ, "PREFECT_HOME": str(workspace / "prefect")}
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started, done.stdout


def _usage(workspace: Path) -> dict[str, int]:
    def size(folder: Path) -> int:
        return sum(p.lstat().st_size for p in folder.rglob("*") if not p.is_dir())

    return {name: size(workspace / name) for name in ("registry", "runs", "gx")}


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(workspace=Path("artifacts/benchmarks/retention"))
    p.add_argument("--weeks", type=int, default=10)
    args = p.parse_args()
    workspace = args.workspace.resolve()
    shutil.rmtree(workspace, ignore_errors=True)
    workspace.mkdir(parents=True)
    weekly = []
    for week in range(1, args.weeks + 1):
        seconds, _ = _cli(workspace, "retrain", "--source", str(FIXTURE), "--force",
                          "--seed", str(week), *TINY)  # fmt: skip
        weekly.append(seconds)
    before = _usage(workspace)
    from data_contracts import prune_results
    from lstm_model.release.config import RetentionConfig
    from lstm_model.release.retention import free_runs, free_versions

    started = time.perf_counter()
    free_versions(workspace / "registry", RetentionConfig(), dry_run=True)
    free_runs(workspace, workspace / "registry", RetentionConfig(), dry_run=True)
    prune_results(workspace, 10, dry_run=True)
    library_seconds = time.perf_counter() - started
    dry_seconds, _ = _cli(workspace, "gc", "--dry-run")
    gc_seconds, done = _cli(workspace, "gc")
    after = _usage(workspace)
    again_seconds, _ = _cli(workspace, "gc")

    from lstm_model.release.registry import Registry

    versions = Registry(workspace / "registry").list_versions()
    print(f"{args.weeks} weekly retrains of a tiny model on the fixture "
          f"(median {sorted(weekly)[len(weekly) // 2]:.0f} s each)")  # fmt: skip
    print(f"{'':10} {'without policy':>15} {'with policy':>12} {'ratio':>6}")
    for name in (*before, "total"):
        b = sum(before.values()) if name == "total" else before[name]
        a = sum(after.values()) if name == "total" else after[name]
        print(f"{name:10} {b / 2**20:12.1f} MiB {a / 2**20:8.1f} MiB {a / b if b else 0:6.2f}")
    print(f"the three retention steps in-process, dry run: {library_seconds:.1f} s")
    print(f"gc --dry-run: {dry_seconds:.1f} s; gc: {gc_seconds:.1f} s; gc again (nothing "
          f"to free): {again_seconds:.1f} s (each a process with its Prefect server)")  # fmt: skip
    kept = [v.version for v in versions if not v.removed_at]
    print(f"versions kept whole: {kept}; records kept: {len(versions)} of {args.weeks}")
    print(done.splitlines()[0] if done else "")


if __name__ == "__main__":
    main()
