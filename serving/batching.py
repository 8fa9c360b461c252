"""Server-side micro-batching: concurrent requests share one model call.

Greedy, with no timer: each of ``workers`` loops takes the oldest waiting request, then
every request that is already queued, up to ``max_texts`` texts, and predicts them in one
call in a worker thread. A lone request is never held back (latency at concurrency 1 is
unchanged); under load, requests pile up while the workers are busy and batches form by
themselves. All requests of a batch are answered by the same model, whose version they
report, so a hot switch between batches is as safe as without batching.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
import numpy as np

from serving.exported import ExportedModel


@dataclass
class _Waiting:
    texts: list[str]
    done: asyncio.Future[tuple[ExportedModel, np.ndarray]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class MicroBatcher:
    def __init__(self, model: Callable[[], ExportedModel], *, max_texts: int, workers: int) -> None:
        self._model = model
        self.max_texts = max_texts
        self.workers = workers
        self._pending: deque[_Waiting] = deque()
        self._arrived = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []
        self.batches = 0  # model calls made, for the tests and the benchmark
        self.requests = 0

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self.workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def predict(self, texts: list[str]) -> tuple[ExportedModel, np.ndarray]:
        """Probabilities for ``texts`` and the model that gave them."""
        waiting = _Waiting(texts)
        async with self._arrived:
            self._pending.append(waiting)
            self._arrived.notify()
        return await waiting.done

    async def _work(self) -> None:
        while True:
            async with self._arrived:
                await self._arrived.wait_for(lambda: bool(self._pending))
                batch = [self._pending.popleft()]
                size = len(batch[0].texts)
                while self._pending and size + len(self._pending[0].texts) <= self.max_texts:
                    batch.append(self._pending.popleft())
                    size += len(batch[-1].texts)
            batch = [w for w in batch if not w.done.cancelled()]  # clients that went away
            if not batch:
                continue
            try:
                model = self._model()
                texts = [t for w in batch for t in w.texts]
                probabilities = await anyio.to_thread.run_sync(model.predict, texts)
            except Exception as error:  # hand the failure to every request of the batch
                for waiting in batch:
                    if not waiting.done.done():
                        waiting.done.set_exception(error)
                continue
            self.batches += 1
            self.requests += len(batch)
            start = 0
            for waiting in batch:
                end = start + len(waiting.texts)
                if not waiting.done.done():
                    waiting.done.set_result((model, probabilities[start:end]))
                start = end
