"""Fuzzing the scoring inbox with a larger budget: hostile files and file-system objects.

    uv run python benchmarks/scoring_fuzz.py [--examples 500] [--seed 0] [--registry PATH]

Runs the hypothesis generators of tests/model/test_scoring_fuzz.py for --examples inboxes
(odd encodings, escapes, NUL bytes, huge lines and fields, broken CSV quoting, JSONL and
Parquet of every shape, corrupt bytes, odd names, links, FIFOs, sockets, devices), each
scored for real on the sequential or the Dask path and reported. Needs no full data:
without --registry it trains the tests' tiny champion on the committed fixture once
(cached in --workspace).
Prints the cases generated, the runs, and the crashes, hangs, reconciliation errors and
failed outcomes, each against its target (0), with the run time.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the generators live in the tests


def tiny_champion(workspace: Path) -> Path:
    """A registry whose champion is the tests' tiny model, trained once on the fixture."""
    from lstm_model.data.config import TokeniserConfig
    from lstm_model.data.dataset import tokenise_reviews
    from lstm_model.data.ingest import ingest_reviews
    from lstm_model.data.sources import resolve_source
    from lstm_model.evaluation.evaluate import evaluate_model
    from lstm_model.release.promotion import register_candidate
    from lstm_model.release.registry import Registry
    from lstm_model.training.fit import train_model
    from tests.helpers.tiny import FIXTURE, TINY_MODEL, TINY_TRAIN

    root = workspace / "fuzz-registry"
    if root.is_dir() and Registry(root).champion() is not None:
        return root
    print("training the tiny champion on the fixture (once) ...", flush=True)
    reviews = ingest_reviews(resolve_source(str(FIXTURE)), workspace / "fuzz-data")
    tokenised = tokenise_reviews(
        reviews, TokeniserConfig(vocab_size=2000, maxlen=40), workspace / "fuzz-data"
    )
    trained = train_model(tokenised, TINY_MODEL, TINY_TRAIN, workspace / "fuzz-run", verbose=0)
    evaluation = evaluate_model(
        trained.model_path, tokenised, trained.history, workspace / "fuzz-evaluation"
    )
    version = register_candidate(
        root, trained, evaluation, tokenised, model_config=TINY_MODEL, train_config=TINY_TRAIN
    )
    registry = Registry(root)
    registry.set_status(version, "accepted", "fuzz champion")
    registry.promote(version, "imdb_sentiment")
    return root


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=500, help="inboxes to generate and score")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--registry", type=Path, default=None, help="default: the tiny champion")
    p.add_argument("--workspace", type=Path, default=Path("artifacts/benchmarks"))
    p.add_argument("--show", type=int, default=5, help="findings of each kind to print")
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.ERROR)  # every quarantine logs a warning

    from hypothesis import HealthCheck, given, seed, settings
    from hypothesis import strategies as st

    from lstm_model.scoring.infer import load_scoring_model
    from tests.helpers.hostile_inbox import Entry, Findings, cases, run_case

    champion = load_scoring_model(args.registry or tiny_champion(args.workspace.resolve()))
    findings, entries_seen = Findings(), [0]

    @seed(args.seed)
    @settings(max_examples=args.examples, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(entries=cases(), parallel=st.booleans())
    def fuzz(entries: list[Entry], parallel: bool) -> None:
        entries_seen[0] += len(entries)
        run_case(entries, champion, parallel, findings)

    started = time.perf_counter()
    fuzz()
    seconds = time.perf_counter() - started

    print(f"scoring fuzz: --examples {args.examples} --seed {args.seed}, champion model "
          f"version {champion.version}")  # fmt: skip
    rows = [
        ("cases generated (inboxes)", findings.runs, None),
        ("inbox entries generated", entries_seen[0], None),
        ("scoring runs", findings.runs, None),
        *((f"outcomes {status}", n, None) for status, n in sorted(findings.statuses.items())),
        ("rows scored", findings.rows["scored"], None),
        ("rows rejected", findings.rows["rejected"], None),
        ("crashes", len(findings.crashes), 0),
        ("hangs", len(findings.hangs), 0),
        ("reconciliation errors", len(findings.reconciliation), 0),
        ("failed outcomes", len(findings.failed), 0),
    ]
    for label, value, target in rows:
        goal = "" if target is None else f"target {target}  {'ok' if value == target else 'MISSED'}"
        print(f"  {label:<28}{value:>8}   {goal}")
    print(f"  {'run time':<28}{seconds:>8.1f} s ({seconds / max(findings.runs, 1):.2f} s a run)")
    for kind in ("crashes", "hangs", "reconciliation", "failed"):
        for finding in getattr(findings, kind)[: args.show]:
            print(f"\n{kind}: {finding}")
    if findings.crashes or findings.hangs or findings.reconciliation or findings.failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
