"""Micro-batching: requests that arrive together share one model call. A small model's call
costs about the same for one row as for a thousand, so under load the rows of many requests
go through it at once, and the time a row waits for company is bounded (`max_wait`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

Rows = list[dict[str, Any]]
Records = list[dict[str, Any]]


@dataclass
class Counts:
    """What the batcher has done, for /health (and for the tests that show it batches)."""

    requests: int = 0
    rows: int = 0
    model_calls: int = 0
    queued_rows: int = 0  # waiting for the model now


@dataclass
class MicroBatcher:
    """Collects requests until `max_rows` rows or `max_wait` seconds after the first, then runs
    `predict` once on all their rows (in one thread of its own: the model is not called from
    two threads at once) and gives each request its own rows' records back."""

    predict: Callable[[Rows], Records]
    max_rows: int = 1024
    max_wait: float = 0.002
    counts: Counts = field(default_factory=Counts)
    _queue: asyncio.Queue[tuple[Rows, asyncio.Future[Records]]] = field(init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _model: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        self._queue = asyncio.Queue()
        self._model = ThreadPoolExecutor(max_workers=1, thread_name_prefix="taskfit-model")

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """After the server has answered every request in flight (uvicorn's shutdown order)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._model.shutdown(wait=True)

    async def submit(self, rows: Rows) -> Records:
        future: asyncio.Future[Records] = asyncio.get_running_loop().create_future()
        self.counts.queued_rows += len(rows)
        await self._queue.put((rows, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0][0])
            deadline = loop.time() + self.max_wait
            while size < self.max_rows:
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    left = deadline - loop.time()
                    if left <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self._queue.get(), left)
                    except TimeoutError:
                        break
                batch.append(item)
                size += len(item[0])
            await self._answer(batch, size)

    async def _answer(self, batch: list[tuple[Rows, asyncio.Future[Records]]], size: int) -> None:
        rows = [row for part, _ in batch for row in part]
        try:
            records = await asyncio.get_running_loop().run_in_executor(
                self._model, self.predict, rows
            )
        except Exception as exc:  # each request of the batch gets the error
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            start = 0
            for part, future in batch:
                if not future.done():  # its client may have gone
                    future.set_result(records[start : start + len(part)])
                start += len(part)
        finally:
            self.counts.requests += len(batch)
            self.counts.rows += size
            self.counts.model_calls += 1
            self.counts.queued_rows -= size
