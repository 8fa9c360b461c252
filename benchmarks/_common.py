"""Shared setup of the full-data benchmarks: the real archive, ingested and tokenised once."""

from __future__ import annotations

import argparse
import logging
import re
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_SOURCE = "../shared/data/aclImdb_v1_labeled.tar.gz"
_SENTENCE = re.compile(r"(?<=[.!?])\s+|<br\s*/?>", re.IGNORECASE)


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--source", type=Path, default=Path(DEFAULT_SOURCE))
    p.add_argument("--workspace", type=Path, default=Path("artifacts/benchmarks"))
    return p


def last_sentence(text: str, words: int = 5) -> str | None:
    """The last sentence of ``text`` with at least ``words`` words (None when none has)."""
    for sentence in reversed([s.strip() for s in _SENTENCE.split(text)]):
        if len(sentence.split()) >= words:
            return sentence
    return None


def prepare(source: Path, workspace: Path, tokeniser):  # type: ignore[no-untyped-def]
    """(IngestResult, TokenisedResult) of the full archive; cached across benchmark runs."""
    from lstm_model.data.dataset import tokenise_reviews
    from lstm_model.data.ingest import ingest_reviews
    from lstm_model.data.sources import resolve_source

    if not source.is_file():
        raise SystemExit(f"{source} not found: pass --source PATH to the full aclImdb archive")
    logging.basicConfig(level=logging.WARNING)
    reviews = ingest_reviews(resolve_source(str(source)), workspace)
    return reviews, tokenise_reviews(reviews, tokeniser, workspace)


def start_service(registry: Path, log: Path, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    """`lstm-pipeline serve` on a free loopback port over ``registry``: (process, URL)."""
    command = [str(Path(sys.executable).with_name("lstm-pipeline")), "serve", "--registry",
               str(registry), "--port", "0", *args]  # fmt: skip
    with log.open("wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    for _ in range(600):
        found = re.search(r"Uvicorn running on (http://\S+:\d+)", log.read_text())
        if found:
            return server, found.group(1)
        if server.poll() is not None:
            raise SystemExit(log.read_text())
        time.sleep(0.2)
    raise SystemExit(f"the service did not start:\n{log.read_text()}")


def wait_ready(url: str, version: int) -> None:
    """Wait until the service at ``url`` answers with model ``version``."""
    import httpx

    for _ in range(600):
        ready = httpx.get(f"{url}/readyz", timeout=10)
        if ready.status_code == 200 and ready.json()["model_version"] == version:
            return
        time.sleep(0.5)
    raise SystemExit("the service never became ready")
