"""Adaptive micro-batching (SPEC 3.2 behaviour 1 and 2): one inference thread per worker process,
a queue in front of it, and the event loop only queues requests and wakes them.

    request (validated, preprocessed) ──put──▶ queue ──▶ inference thread
        await future ◀── call_soon_threadsafe ◀──  one onnxruntime call per batch

With batching off, every queued request is its own onnxruntime call. With batching on, the
thread takes the oldest request, then keeps taking queued ones until the batch holds
`max_batch_size` images or the oldest has waited `max_queue_delay_s`; it stops waiting early when
no other request is on its way (`arriving() == 0`: nothing is being read or preprocessed), so a
lone client never pays the delay. A request with more images than `max_batch_size` runs alone;
one that would overflow the batch waits for the next. Each request gets back exactly its own
rows. An onnxruntime failure fails the requests of that batch only (ModelError), and the thread
goes on with the next batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from src.ml.model import ModelError, Probabilities, Tensors

logger = logging.getLogger("synchronous_pattern.batcher")
STOP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class BatchInfo:
    """How one request was served: the batch it joined, its wait and the model's time."""

    batch_size: int  # images in the onnxruntime call
    queue_delay_s: float  # from queued to the start of that call
    inference_s: float  # the onnxruntime call


@dataclass(frozen=True)
class Batched:
    probabilities: Probabilities  # this request's rows only
    info: BatchInfo


@dataclass
class _Item:
    tensors: Tensors
    future: asyncio.Future[Batched]
    loop: asyncio.AbstractEventLoop
    queued_at: float

    @property
    def rows(self) -> int:
        return len(self.tensors)


class BatcherStopped(Exception):
    """The worker is shutting down: the request was not run."""


# batch size, the queue delay of each of its requests, inference seconds (None: it failed)
Observer = Callable[[int, list[float], float | None], None]


class Batcher:
    def __init__(
        self,
        predict: Callable[[Tensors], Probabilities],
        *,
        enabled: bool,
        max_batch_size: int,
        max_queue_delay_s: float,
        observe: Observer,
    ) -> None:
        self._predict = predict
        self.enabled = enabled
        self.max_batch_size = max_batch_size if enabled else 1
        self.max_queue_delay_s = max_queue_delay_s if enabled else 0.0
        self._observe = observe
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._carried: _Item | None = None  # taken from the queue, left for the next batch
        self._arriving = 0  # requests being read or preprocessed (event loop thread only)
        self._thread = threading.Thread(target=self._run, name="inference", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(STOP_TIMEOUT_S)

    @contextlib.contextmanager
    def arriving(self) -> Iterator[None]:
        """Marks a request on its way to the queue (read, decoded, preprocessed): while any is,
        a forming batch may wait for it. Entered and left on the event loop thread."""
        self._arriving += 1
        try:
            yield
        finally:
            self._arriving -= 1

    async def infer(self, tensors: Tensors) -> Batched:
        """This request's probabilities [n, C] for its tensors [n, ...], batched with others.
        Called inside `arriving()`: the request stops counting as on its way once queued."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Batched] = loop.create_future()
        self._arriving -= 1  # queued now, no longer on its way (arriving() counted it)
        try:
            self._queue.put(_Item(tensors, future, loop, time.perf_counter()))
            return await future
        finally:
            self._arriving += 1

    # --- the inference thread ---------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._collect()
            if batch is None:
                break
            self._serve(batch)
        self._fail_waiting()

    def _collect(self) -> list[_Item] | None:
        """The next batch, oldest request first; None when stopped."""
        first = self._carried or self._queue.get()
        self._carried = None
        if first is None:
            return None
        batch, rows = [first], first.rows
        deadline = first.queued_at + self.max_queue_delay_s
        while rows < self.max_batch_size:
            item = self._next(deadline)
            if item is None:
                break
            if rows + item.rows > self.max_batch_size:
                self._carried = item  # too many rows for this batch: first of the next one
                break
            batch.append(item)
            rows += item.rows
        return batch

    def _next(self, deadline: float) -> _Item | None:
        """A queued request; waits until `deadline` only while another is on its way."""
        try:
            item = self._queue.get_nowait()
        except queue.Empty:
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or self._arriving <= 0:
                return None
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                return None
        if item is None:  # stop: serve this batch first, then stop
            self._queue.put(None)
        return item

    def _serve(self, batch: list[_Item]) -> None:
        started = time.perf_counter()
        delays = [started - item.queued_at for item in batch]
        tensors = (
            batch[0].tensors if len(batch) == 1 else np.concatenate([i.tensors for i in batch])
        )
        try:
            probabilities = self._predict(tensors)
        except Exception as error:  # whatever it is, the thread must live on for the next batch
            failure = error if isinstance(error, ModelError) else ModelError(repr(error))
            self._observe(len(tensors), delays, None)
            logger.error(
                "inference failed",
                extra={"batch_size": len(tensors), "error": str(failure)},
                exc_info=not isinstance(error, ModelError),
            )
            for item in batch:
                _resolve(item, failure)
            return
        elapsed = time.perf_counter() - started
        self._observe(len(tensors), delays, elapsed)
        offset = 0
        for item, delay in zip(batch, delays, strict=True):
            rows = probabilities[offset : offset + item.rows]
            offset += item.rows
            _resolve(item, Batched(rows, BatchInfo(len(tensors), delay, elapsed)))

    def _fail_waiting(self) -> None:
        stopped = BatcherStopped("the server is shutting down")
        if self._carried is not None:
            _resolve(self._carried, stopped)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                _resolve(item, stopped)


def _resolve(item: _Item, outcome: Batched | Exception) -> None:
    """Wake the request on its own event loop (the future is not thread-safe)."""

    def settle() -> None:
        if item.future.done():  # the client went away and the request was cancelled
            return
        if isinstance(outcome, Exception):
            item.future.set_exception(outcome)
        else:
            item.future.set_result(outcome)

    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
        item.loop.call_soon_threadsafe(settle)
