"""The scoring flow on one process against the same flow on a local Dask cluster.

    uv run python benchmarks/scoring_scale_out.py [--registry artifacts/registry]
        [--files 4] [--rows 5000] [--big-rows 20000] [--chunk-rows 5000] [--workers 2]
        [--repeats 2]

Needs a champion (run `make retrain` first). The inbox holds --files files of --rows test
reviews and one file of --big-rows (cut into parts of --chunk-rows on Dask). Both runs go
through the `score-inbox` flow under a temporary Prefect server, with both GX contracts;
the Dask time includes starting the cluster and loading the model in every worker.
Repeats alternate between the two modes; the medians are printed with their ratio, and
each run is checked to have scored every row exactly once.

This is a scale-out check, not a speed-up promise for a 2-core machine: TensorFlow already
spreads one process's predictions over all cores, so extra workers share the same cores.
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time
from pathlib import Path

from _common import parser, prepare


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--registry", type=Path, default=Path("artifacts/registry"))
    p.add_argument("--files", type=int, default=4)
    p.add_argument("--rows", type=int, default=5_000)
    p.add_argument("--big-rows", type=int, default=20_000)
    p.add_argument("--chunk-rows", type=int, default=5_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()

    import pandas as pd
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from prefect.testing.utilities import prefect_test_harness

    from flows.config import ScaleOutConfig
    from flows.score import score_inbox
    from lstm_model.data.config import TokeniserConfig
    from lstm_model.data.ingest import load_reviews
    from lstm_model.scoring.config import ScoringConfig

    reviews, _ = prepare(args.source, args.workspace, TokeniserConfig())
    table = load_reviews(reviews, columns=["split", "text"])
    test = table.filter(pc.equal(table["split"], "test"))["text"].to_pylist()
    base = [t.replace("\n", " ").replace("\r", " ") for t in test]
    config = ScoringConfig(settle_seconds=0, chunk_rows=args.chunk_rows)
    sizes = [args.rows] * args.files + [args.big_rows]
    total = sum(sizes)

    def run(workers: int, tag: str) -> float:
        with tempfile.TemporaryDirectory() as tmp:
            inbox = Path(tmp) / "scoring" / "inbox"
            inbox.mkdir(parents=True)
            at = 0
            for i, n in enumerate(sizes):
                lines = [f"{tag} {i}"] + [base[(at + k) % len(base)] for k in range(n - 1)]
                (inbox / f"drop{i}.txt").write_text("\n".join(lines) + "\n")
                at += n
            started = time.perf_counter()
            summary = score_inbox(
                workspace=Path(tmp),
                registry=args.registry.resolve(),
                config=config,
                scale_out=ScaleOutConfig(dask_workers=workers),
            )
            seconds = time.perf_counter() - started
            results = pd.concat(
                pq.read_table(f, columns=["source_file", "row_number"]).to_pandas()
                for f in (Path(tmp) / "scoring" / "results").glob("*.parquet")
            )
        assert summary.rows_scored == total == len(results), (summary, len(results))
        assert not results.duplicated().any()
        return seconds

    logging.getLogger("distributed").setLevel(logging.WARNING)
    serial, parallel = [], []
    with prefect_test_harness(server_startup_timeout=120):
        run(0, "warm-up")  # GX, the model's first trace, the server's first flow run
        for repeat in range(args.repeats):
            serial.append(run(0, f"serial {repeat}"))
            parallel.append(run(args.workers, f"dask {repeat}"))
    one, many = statistics.median(serial), statistics.median(parallel)
    print(f"{len(sizes)} files, {total} texts (largest {args.big_rows}, parts of "
          f"{args.chunk_rows}), median of {args.repeats} alternating repeats")  # fmt: skip
    print(f"one process (default):            {one:6.1f} s  {total / one:6.0f} texts/s")
    print(f"Dask, {args.workers} local worker processes: {many:6.1f} s  "
          f"{total / many:6.0f} texts/s  (cluster start included)")  # fmt: skip
    print(f"Dask / one process throughput: {one / many:.2f}; every row scored exactly once "
          "in every run")  # fmt: skip


if __name__ == "__main__":
    main()
