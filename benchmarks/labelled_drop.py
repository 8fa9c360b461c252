"""A labelled drop of 10,000 texts through the labelled inbox, on the full data.

    uv run python benchmarks/labelled_drop.py [--source ARCHIVE] [--workspace DIR] [--rows N]

The drop is made from the archive with no hand-written label: the first 25 words of
randomly chosen aclImdb train reviews (seed 0; short texts, as a team's tickets or
product reviews are), each with its review's label, written as CSV. It is taken three
times into fresh workspaces; each time the whole intake is measured (reading and row
rules, the leak and conflict checks against the 50,000 aclImdb reviews, the fixed splits,
the span written) with and without the GX contract ``labelled_reviews``. Printed: the
medians, beside ingesting the aclImdb archive itself (50,000 reviews, the same run).
"""

from __future__ import annotations

import shutil
import statistics
import time
from pathlib import Path

from _common import parser


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.set_defaults(workspace=Path("artifacts/benchmarks/labelled"))
    p.add_argument("--rows", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    if not args.source.is_file():
        raise SystemExit(f"{args.source} not found: pass --source PATH to the full archive")

    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from data_contracts import validate_labelled_reviews
    from lstm_model.data.config import LabelledConfig
    from lstm_model.data.ingest import ingest_reviews, load_reviews
    from lstm_model.data.labelled import labelled_folders, take_labelled
    from lstm_model.data.sources import resolve_source

    root = args.workspace.resolve()
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    reviews = ingest_reviews(resolve_source(str(args.source)), root / "imdb")
    ingest_seconds = time.perf_counter() - started

    table = load_reviews(reviews, ["split", "label", "text"])
    train = table.filter(pc.equal(table["split"], "train"))
    picked = np.random.default_rng(0).permutation(train.num_rows)[: args.rows]
    train = train.take(pa.array(np.sort(picked)))
    heads = [" ".join(t.split()[:25]) for t in train["text"].to_pylist()]
    drop = root / "drop.csv"
    pcsv.write_csv(pa.table({"text": heads, "label": train["label"]}), drop)
    config = LabelledConfig(settle_seconds=0, domain="short")

    timings: dict[str, list[float]] = {"with contract": [], "without contract": []}
    outcome = None
    for repeat in range(args.repeats):
        for kind, times in timings.items():
            workspace = root / f"ws-{kind.replace(' ', '-')}-{repeat}"
            inbox = labelled_folders(workspace).inbox
            inbox.mkdir(parents=True)
            shutil.copy(drop, inbox / "short.csv")
            check = None
            if kind == "with contract":

                def check(frame, workspace=workspace):  # type: ignore[no-untyped-def]
                    validate_labelled_reviews(
                        frame, workspace=workspace, max_text_chars=config.max_text_chars
                    )

            started = time.perf_counter()
            report = take_labelled(workspace, reviews, config, check=check)
            times.append(time.perf_counter() - started)
            (outcome,) = report.outcomes
            assert outcome.status == "accepted", outcome

    assert outcome is not None
    with_contract = statistics.median(timings["with contract"])
    without = statistics.median(timings["without contract"])
    print(f"drop: {args.rows} texts; accepted {outcome.rows_accepted}, rejected "
          f"{outcome.rows_rejected}; split {outcome.counts['short']}")  # fmt: skip
    rejects = sorted((workspace.parent).glob("ws-*-0/labelled/rejects/*.parquet"))
    if rejects:
        reasons = pq.read_table(rejects[0])["reason"].value_counts().to_pylist()
        top = sorted(reasons, key=lambda r: -r["counts"])[:3]
        print("  rejected: " + "; ".join(f"{r['counts']} x {r['values']}" for r in top))
    print(f"ingest of the aclImdb archive (50,000 reviews): {ingest_seconds:6.2f} s")
    print(f"labelled intake, median of {args.repeats}:")
    print(f"  without the GX contract:   {without:6.2f} s  "
          f"({args.rows / without:,.0f} rows/s)")  # fmt: skip
    print(f"  with the GX contract:      {with_contract:6.2f} s  "
          f"(the contract: {with_contract - without:.2f} s)")  # fmt: skip
    print(f"  ratio intake / aclImdb ingest: {with_contract / ingest_seconds:.2f}")


if __name__ == "__main__":
    main()
