"""Latency and throughput of the prediction service against the raw model.

Starts `lstm-pipeline serve` on loopback over the registry's champion (run `make retrain`
first), then measures, on the same machine and in the same run:

- single-review requests at concurrency 1: p50 and p99 latency (target p99 <= 50 ms);
- batches of 32 reviews from 16 concurrent clients: texts per second, against the same
  exported model called in this process on the same batches (target >= 50%), and, for
  context, in batches of 512;
- that the service's probabilities equal the nightly batch scorer's (max |diff| <= 1e-6).

Rounds alternate raw and served measurements; medians are reported.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from benchmarks._common import parser, start_service, wait_ready


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--registry", type=Path, default=Path("artifacts/registry"))
    p.add_argument("--backend", choices=["saved_model", "tflite"], default="saved_model")
    p.add_argument("--singles", type=int, default=1000, help="requests at concurrency 1")
    p.add_argument("--batches", type=int, default=192, help="batch requests per round")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()

    from lstm_model.release.registry import Registry
    from serving.exported import load_exported

    version = Registry(args.registry).champion()
    if version is None:
        raise SystemExit(f"no champion in {args.registry}: run `make retrain` first")
    texts = _test_texts(args.source, args.workspace)
    print(f"champion version {version}, backend {args.backend}, {len(texts)} test reviews")

    batches = [texts[i : i + 32] for i in range(0, 32 * args.batches, 32)]
    big = [[t for b in batches[i : i + 16] for t in b] for i in range(0, len(batches), 16)]
    singles = [[t] for t in texts[: args.batches * 8]]
    model = load_exported(args.registry, version, args.backend)
    raw32, raw512, raw1 = [], [], []
    served: dict[bool, list[float]] = {True: [], False: []}
    served1: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        for micro in (True, False):  # the service with, then without, micro-batching
            log = Path(tmp) / f"serve-{micro}.log"
            server, url = start_service(
                args.registry, log, "--backend", args.backend,
                "--micro-batching" if micro else "--no-micro-batching",
            )  # fmt: skip
            try:
                wait_ready(url, version)
                if micro:
                    p50, p99, n = _latency(url, texts[: args.singles + 50])
                for _ in range(args.rounds):  # alternate raw and served measurements
                    if micro:
                        raw32.append(_raw(model, batches))
                        raw512.append(_raw(model, big))
                        raw1.append(_raw(model, singles[: len(singles) // 4]))
                    served[micro].append(_served(url, batches, clients=16))
                    served1[micro].append(_served(url, singles, clients=16))
                if micro:
                    diff = _parity(url, args.registry, texts[:1000], Path(tmp))
            finally:
                server.terminate()
                server.wait(timeout=60)

    def med(values: list[float]) -> float:
        return statistics.median(values)

    def show(values: list[float]) -> str:
        return f"{med(values):8.0f} texts/s   rounds {[round(x) for x in values]}"

    s, r32, r512 = med(served[True]), med(raw32), med(raw512)
    print(f"\nsingle reviews, concurrency 1, {n} requests (micro-batching on):")
    print(f"  p50 {p50:.1f} ms   p99 {p99:.1f} ms   (target p99 <= 50 ms: "
          f"{'met' if p99 <= 50 else 'NOT met'})")  # fmt: skip
    print(f"batches of 32, 16 concurrent clients, {args.batches} requests x {args.rounds} rounds:")
    print(f"  served, micro-batching on    {show(served[True])}")
    print(f"  served, micro-batching off   {show(served[False])}")
    print(f"  raw in-process, batches 32   {show(raw32)}")
    print(f"  raw in-process, batches 512  {show(raw512)}")
    print(f"  served / raw(32)  {s / r32:.2f}   served / raw(512) {s / r512:.2f}   "
          f"(target >= 0.50: {'met' if s / r32 >= 0.5 else 'NOT met'})")  # fmt: skip
    print(f"single reviews, 16 concurrent clients, {len(singles)} requests x {args.rounds} rounds:")
    print(f"  served, micro-batching on    {show(served1[True])}")
    print(f"  served, micro-batching off   {show(served1[False])}")
    print(f"  raw in-process, one by one   {show(raw1)}")
    print(f"  micro-batching on / off      {med(served1[True]) / med(served1[False]):.2f}")
    print(f"service vs batch scorer on {min(1000, len(texts))} reviews: max |diff| {diff:.2e} "
          f"(target <= 1e-6: {'met' if diff <= 1e-6 else 'NOT met'})")  # fmt: skip


def _latency(url: str, texts: list[str]) -> tuple[float, float, int]:
    """p50 and p99 in ms of one-review requests sent one after another (50 warm-ups)."""
    latencies = []
    with httpx.Client(base_url=url, timeout=60) as http:
        for i, text in enumerate(texts):
            started = time.perf_counter()
            response = http.post("/v1/predict", json={"text": text})
            if i >= 50:
                latencies.append(time.perf_counter() - started)
            response.raise_for_status()
    p50, p99 = (1000 * float(np.percentile(latencies, q)) for q in (50, 99))
    return p50, p99, len(latencies)


def _test_texts(source: Path, workspace: Path) -> list[str]:
    import pyarrow.compute as pc

    from lstm_model.data.ingest import ingest_reviews, load_reviews
    from lstm_model.data.sources import resolve_source

    reviews = load_reviews(ingest_reviews(resolve_source(str(source)), workspace))
    texts = reviews.filter(pc.equal(reviews["split"], "test"))["text"].to_pylist()
    return texts[:: max(1, len(texts) // 10_000)]  # both labels, spread over the split


def _raw(model, batches: list[list[str]]) -> float:  # type: ignore[no-untyped-def]
    model.predict(batches[0])
    started = time.perf_counter()
    for batch in batches:
        model.predict(batch)
    return sum(map(len, batches)) / (time.perf_counter() - started)


def _served(url: str, batches: list[list[str]], clients: int) -> float:
    queue = list(enumerate(batches))
    lock = threading.Lock()
    failures: list[str] = []

    def client() -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            http.get("/healthz")  # connect before the clock starts
            start_line.wait()
            while True:
                with lock:
                    if not queue:
                        return
                    _, batch = queue.pop()
                body = {"text": batch[0]} if len(batch) == 1 else {"texts": batch}
                response = http.post("/v1/predict", json=body)
                if response.status_code != 200:
                    failures.append(response.text)

    start_line = threading.Event()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    started = time.perf_counter()
    start_line.set()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return sum(map(len, batches)) / seconds


def _parity(url: str, registry: Path, texts: list[str], tmp: Path) -> float:
    """Largest |service - nightly batch scorer| over ``texts``."""
    from lstm_model.scoring.sequential import score_texts

    with httpx.Client(base_url=url, timeout=120) as http:
        served = [
            p["probability"]
            for i in range(0, len(texts), 32)
            for p in http.post("/v1/predict", json={"texts": texts[i : i + 32]}).json()[
                "predictions"
            ]
        ]
    batch = score_texts(registry, texts, tmp / "scoring")
    return float(np.max(np.abs(np.array(served) - batch)))


if __name__ == "__main__":
    main()
