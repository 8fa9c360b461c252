"""Micro-batching: concurrent requests share model calls and each gets its own answers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from serving.batching import MicroBatcher
from serving.exported import ExportedModel


class LengthModel:
    """A stand-in predictor with a known answer per text (its length / 100), that records
    each call and takes ``seconds`` per call, so requests pile up meanwhile."""

    def __init__(self, seconds: float = 0.05, fail: bool = False) -> None:
        self.calls: list[int] = []
        self.seconds = seconds
        self.fail = fail
        self.lock = threading.Lock()

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        with self.lock:
            self.calls.append(len(texts))
        time.sleep(self.seconds)
        if self.fail:
            raise RuntimeError("the model broke")
        return np.array([len(t) / 100 for t in texts], dtype="float32")


def exported(predictor: LengthModel, version: int = 1) -> ExportedModel:
    return ExportedModel(
        version=version, backend="saved_model", predictor=predictor, metrics={}, trained_at=""
    )


def run(model: ExportedModel, requests: list[list[str]], max_texts: int = 64):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        batcher = MicroBatcher(lambda: model, max_texts=max_texts, workers=2)
        batcher.start()
        try:
            return await asyncio.gather(
                *(batcher.predict(r) for r in requests), return_exceptions=True
            )
        finally:
            await batcher.stop()

    return asyncio.run(go())


def test_concurrent_requests_share_calls_and_get_their_own_answers() -> None:
    predictor = LengthModel()
    requests = [["x" * (i + 1)] * (1 + i % 3) for i in range(40)]
    answers = run(exported(predictor), requests)
    for request, (model, probabilities) in zip(requests, answers, strict=True):
        assert model.version == 1
        assert probabilities.tolist() == pytest.approx([len(t) / 100 for t in request])
    assert sum(predictor.calls) == sum(map(len, requests))
    assert len(predictor.calls) < len(requests) / 4  # batched, not one call per request


def test_a_batch_never_exceeds_max_texts() -> None:
    predictor = LengthModel()
    run(exported(predictor), [["a", "b", "c"]] * 30, max_texts=8)
    assert max(predictor.calls) <= 8 and sum(predictor.calls) == 90


def test_a_lone_request_is_not_held_back() -> None:
    predictor = LengthModel(seconds=0.0)
    started = time.perf_counter()
    [(_, probabilities)] = run(exported(predictor), [["abc"]])
    assert time.perf_counter() - started < 0.5 and predictor.calls == [1]
    assert probabilities.tolist() == pytest.approx([0.03])


def test_a_failing_call_fails_every_request_of_its_batch_and_nothing_else() -> None:
    answers = run(exported(LengthModel(fail=True)), [["a"], ["b"], ["c"]])
    assert all(isinstance(a, RuntimeError) and "broke" in str(a) for a in answers)
