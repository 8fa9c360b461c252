"""Benchmark the data half of the pipeline on the full aclImdb archive.

    uv run python benchmarks/data_pipeline.py [--source ../shared/data/aclImdb_v1_labeled.tar.gz]

Times ingest (archive -> Parquet), the imdb_reviews contract, and tokenising the
50,000 reviews (fit on train + encode all), each the median of ``--repeats`` runs into
fresh workspaces (no cache hits), and prints each beside its target. The
reference, measured in the same run on the same machine: a plain Python read of the
archive plus a regex tokeniser with a dict vocabulary (about 10 s for both together
when the targets were set).
"""

from __future__ import annotations

import argparse
import collections
import re
import statistics
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

DEFAULT_SOURCE = "../shared/data/aclImdb_v1_labeled.tar.gz"
TARGETS_S = {"ingest": 10.0, "validate": 15.0, "tokenise": 10.0}


def plain_python_reference(source: Path) -> float:
    """Read every review with tarfile, tokenise with a regex, fit and map a vocabulary."""
    started = time.perf_counter()
    train: list[list[str]] = []
    test: list[list[str]] = []
    pattern = re.compile(r"[a-z0-9']+")
    with tarfile.open(source, "r|gz") as archive:
        for member in archive:
            parts = member.name.split("/")
            if member.isfile() and len(parts) == 4 and parts[2] in ("pos", "neg"):
                text = archive.extractfile(member).read().decode("utf-8")  # type: ignore[union-attr]
                words = pattern.findall(text.lower().replace("<br />", " "))
                (train if parts[1] == "train" else test).append(words)
    counts = collections.Counter(w for words in train for w in words)
    index = {w: i + 2 for i, (w, _) in enumerate(counts.most_common(9998))}
    for words in train + test:
        ids = [index.get(w, 1) for w in words][-200:]
        [0] * (200 - len(ids)) + ids
    return time.perf_counter() - started


def timed(step: Callable[[], object], repeats: int) -> list[float]:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path(DEFAULT_SOURCE))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not args.source.is_file():
        parser.error(f"{args.source} not found: pass --source PATH to the full aclImdb archive")

    from data_contracts import validate_imdb_reviews
    from data_contracts.config import ReviewsContractConfig
    from lstm_model.data.config import TokeniserConfig
    from lstm_model.data.dataset import tokenise_reviews
    from lstm_model.data.ingest import ingest_reviews
    from lstm_model.data.sources import resolve_source

    source = resolve_source(str(args.source))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        runs = iter(range(1000))

        def ingest():  # type: ignore[no-untyped-def]
            return ingest_reviews(resolve_source(str(args.source)), root / f"i{next(runs)}")

        results = {"ingest": timed(ingest, args.repeats)}
        reviews = ingest_reviews(source, root / "main")
        assert reviews.rows == 50_000, reviews.rows

        # The first validation pays for importing Great Expectations (seconds): kept apart.
        results["validate"] = timed(
            lambda: validate_imdb_reviews(
                reviews, workspace=root / f"gx{next(runs)}", config=ReviewsContractConfig()
            ),
            args.repeats + 1,
        )
        results["tokenise"] = timed(
            lambda: tokenise_reviews(reviews, TokeniserConfig(), root / f"t{next(runs)}"),
            args.repeats,
        )
        reference = statistics.median(
            plain_python_reference(args.source) for _ in range(args.repeats)
        )

    print(f"full archive: {args.source} ({reviews.rows} reviews), median of {args.repeats}")
    print(f"{'step':<28}{'seconds':>9}{'target':>9}   verdict")
    rows = [
        ("ingest to Parquet", statistics.median(results["ingest"]), TARGETS_S["ingest"]),
        ("validate, first (GX import)", results["validate"][0], TARGETS_S["validate"]),
        ("validate, warm", statistics.median(results["validate"][1:]), TARGETS_S["validate"]),
        (
            "tokenise 50k (fit+encode)",
            statistics.median(results["tokenise"]),
            TARGETS_S["tokenise"],
        ),
    ]
    for name, seconds, target in rows:
        verdict = "ok" if seconds <= target else "OVER TARGET"
        print(f"{name:<28}{seconds:>9.2f}{target:>9.1f}   {verdict}")
    ours = rows[0][1] + rows[3][1]
    print(
        f"reference: plain Python read + regex tokeniser {reference:.2f} s; "
        f"ours, ingest + tokenise {ours:.2f} s (ratio {ours / reference:.2f})"
    )


if __name__ == "__main__":
    main()
