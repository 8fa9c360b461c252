"""The scoring contracts' cost per chunk: Data Docs once per run against once per chunk.

    uv run python benchmarks/scoring_contracts.py [--chunks 60] [--rows 1000]

Runs both GX scoring contracts (``scoring_input`` on the rows, ``scoring_output`` on their
results) on ``--chunks`` chunks of ``--rows`` rows, as a scoring run does on every chunk,
two ways in one fresh GX project each:
  - reference: the site rebuilt by every validation (GX's UpdateDataDocsAction, what
    every contract did before);
  - now: the chunk contracts as the pipeline runs them (the site left to the run), plus
    the run's one ``build_data_docs`` at its end (the pages of this run's results).
Each way starts from an empty project: one run's cost, not that of months of results.
Prints the median seconds per chunk, those of the first and the last ten chunks (the
rebuild reads every stored result, so it grows with them), the totals and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd


def _chunks(rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = [f"film.txt:{i}" for i in range(rows)]
    texts = [f"Review {i}: a good film, well acted and far too long." for i in range(rows)]
    given = pd.DataFrame({"id": ids, "text": texts, "row_number": range(1, rows + 1)})
    scored = pd.DataFrame({"id": ids, "probability": 0.75, "label": 1})
    return given, scored


def _time(chunks: int, one: Callable[[Path], None], end: Callable[[Path], object]) -> list[float]:
    with tempfile.TemporaryDirectory() as folder:
        workspace = Path(folder)
        seconds = []
        for _ in range(chunks):
            started = time.perf_counter()
            one(workspace)
            seconds.append(time.perf_counter() - started)
        started = time.perf_counter()
        end(workspace)
        return [*seconds, time.perf_counter() - started]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chunks", type=int, default=60)
    p.add_argument("--rows", type=int, default=1000)
    args = p.parse_args()

    from data_contracts import build_data_docs
    from data_contracts._runner import run_suite
    from data_contracts.scoring import (
        input_expectations,
        output_expectations,
        validate_scoring_input,
        validate_scoring_output,
    )

    given, scored = _chunks(args.rows)
    checked = scored.assign(threshold_label=1)

    def every_chunk(workspace: Path) -> None:
        for name, frame, suite in (
            ("scoring_input", given, input_expectations(max_text_chars=20_000)),
            ("scoring_output", checked, output_expectations(rows=args.rows)),
        ):
            result = run_suite(
                name, frame, suite, project_root=workspace, id_columns=("id",), max_examples=5
            )
            assert result.success, result.summary()

    def now(workspace: Path) -> None:
        validate_scoring_input(given, workspace=workspace, max_text_chars=20_000)
        validate_scoring_output(scored, workspace=workspace, rows=args.rows)

    with tempfile.TemporaryDirectory() as warm:
        every_chunk(Path(warm))  # warm-up: imports, GX's first project
    reference = _time(args.chunks, every_chunk, lambda _: None)
    started = datetime.now(UTC)  # the run's start, as the flow passes it
    results = {
        "reference: Data Docs every chunk": reference,
        "now: Data Docs once, at the end": _time(
            args.chunks, now, lambda w: build_data_docs(w, since=started)
        ),
    }
    print(f"{args.chunks} chunks of {args.rows} rows, both contracts on each")
    totals = {}
    for name, seconds in results.items():
        per_chunk, end = seconds[:-1], seconds[-1]
        totals[name] = sum(seconds)
        print(
            f"{name:34s} median {statistics.median(per_chunk):.3f} s/chunk, "
            f"first 10 {statistics.median(per_chunk[:10]):.3f}, "
            f"last 10 {statistics.median(per_chunk[-10:]):.3f}, "
            f"end {end:.2f} s, total {totals[name]:.1f} s"
        )
    reference, current = totals.values()
    print(f"total now / reference: {current / reference:.2f}")


if __name__ == "__main__":
    main()
