"""Micro-batching across requests: documents of concurrent requests are
gathered into one model batch, run on a worker thread, and each request is
answered with the results of its own documents.

The event loop never runs the model: :meth:`MicroBatcher.submit` queues the
documents of a request and returns a future that the worker thread resolves.
When the model is free, the worker expects as many documents as the last
batch held plus those that arrived while it ran: the clients just answered
are likely to send more, and those waiting are there. It waits for more, at
most ``max_wait_ms`` from the moment it is free and a document is waiting,
while fewer than that are waiting (and fewer than ``max_batch_documents`` or
``max_batch_words``); then it runs everything waiting, up to those limits, as
one batch. So clients that send their next request when answered end up in
one full batch, which starts as soon as the last of them is back; a lone
client never waits; and while a batch runs, new requests queue up, so under
load batches fill by themselves.
"""

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Deque, List, Optional, Sequence

#: runs a batch of texts; returns one result per text, in order
Process = Callable[[List[str]], List[Any]]


class QueueFull(Exception):
    """The queue cannot take a request's documents now."""

    def __init__(self, waiting: int, limit: int, retry_after: int) -> None:
        self.waiting, self.limit, self.retry_after = waiting, limit, retry_after
        super().__init__(f"{waiting} documents are waiting (limit {limit}); retry in {retry_after} s")


class Closed(Exception):
    """The batcher takes no new requests: it is shutting down, or its worker stopped."""


class DocumentFailed(Exception):
    """The model failed on one document of a request."""

    def __init__(self, index: int, error: BaseException) -> None:
        self.index, self.error = index, error
        super().__init__(f"document {index}: {type(error).__name__}: {error}")


class _Request:
    """One request's documents, their results so far, and its future."""

    def __init__(self, texts: Sequence[str], loop: asyncio.AbstractEventLoop) -> None:
        self.texts = texts
        self.loop = loop
        self.future: "asyncio.Future[List[Any]]" = loop.create_future()
        self.results: List[Any] = [None] * len(texts)
        self.remaining = len(texts)
        #: answered with an error, or given up by its caller: its documents are not run
        self.finished = False

    def _settle(self, value: Any = None, error: Optional[BaseException] = None) -> None:
        def settle() -> None:
            if not self.future.done():
                if error is not None:
                    self.future.set_exception(error)
                else:
                    self.future.set_result(value)

        try:
            self.loop.call_soon_threadsafe(settle)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    def done(self, index: int, result: Any) -> None:
        self.results[index] = result
        self.remaining -= 1
        if self.remaining == 0:
            self.finished = True
            self._settle(self.results)

    def fail(self, error: BaseException) -> None:
        self.finished = True
        self._settle(error=error)


@dataclass
class _Item:
    request: _Request
    index: int
    words: int
    queued: float


@dataclass
class BatcherStats:
    """Counters the service exposes as metrics."""

    batches: int = 0
    documents: int = 0
    batch_seconds: float = 0.0
    #: documents per second of model time, smoothed; for Retry-After
    rate: float = 0.0


class MicroBatcher:
    """Gathers documents of concurrent requests into batches for ``process``.

    ``on_batch(documents, seconds)`` is called after every batch (metrics).
    """

    def __init__(
        self,
        process: Process,
        max_batch_documents: int = 64,
        max_batch_words: int = 4096,
        max_wait_ms: float = 5.0,
        max_queue_documents: int = 1024,
        on_batch: Optional[Callable[[int, float], None]] = None,
    ) -> None:
        self.process = process
        self.max_batch_documents = max_batch_documents
        self.max_batch_words = max_batch_words
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue_documents = max_queue_documents
        self.on_batch = on_batch
        self.stats = BatcherStats()
        self._queue: Deque[_Item] = deque()
        self._queued_words = 0
        self._cond = threading.Condition()
        self._closing = False
        self._thread: Optional[threading.Thread] = None
        #: why the worker stopped, when it stopped by an error
        self.error: Optional[str] = None
        #: the batch the model is running now
        self._current: List[_Item] = []
        #: how many documents the next batch can expect (see the module's docstring)
        self._expected = 0

    # --- the event loop's side --------------------------------------------------------

    @property
    def waiting(self) -> int:
        """Documents queued and not yet taken into a batch."""
        return len(self._queue)

    @property
    def running(self) -> int:
        """Documents in the batch the model is running now."""
        return len(self._current)

    def start(self, init: Optional[Callable[[], None]] = None) -> None:
        """Start the worker thread; it runs ``init`` (loading the model) first.

        The model is loaded, warmed up and run on this one thread: with
        OpenMP (PyTorch's CPU threads), every thread that runs parallel work
        keeps a team of its own, and once the teams outnumber the cores their
        threads sleep between operations: on 2 cores the encoder ran 2.4x
        slower on a second thread (``benchmarks/thread_teams.py``).
        """
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, args=(init,), name="spacy-bert-ner-model", daemon=True)
            self._thread.start()

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained (at least 1)."""
        rate = self.stats.rate or 1.0
        return max(1, min(60, int(len(self._queue) / rate + 0.999)))

    def submit(self, texts: Sequence[str]) -> "asyncio.Future[List[Any]]":
        """A future of the results of ``process`` for ``texts``, batched with
        other requests; call it from the event loop.

        Raises :class:`QueueFull` at once when the queue cannot take all of
        ``texts`` and :class:`Closed` after :meth:`close` or once the worker
        has stopped; the future fails with :class:`DocumentFailed` when the
        model fails on one of them. Cancelling the future (a timeout) takes
        the request's documents out of the queue.
        """
        request = _Request(texts, asyncio.get_running_loop())
        if not texts:
            request.future.set_result([])
            return request.future
        now = time.monotonic()
        with self._cond:
            if self._closing or self.error is not None:
                raise Closed(self.error or "the service is shutting down")
            if len(self._queue) + len(texts) > self.max_queue_documents:
                raise QueueFull(len(self._queue), self.max_queue_documents, self.retry_after())
            for i, text in enumerate(texts):
                words = len(text.split())
                self._queue.append(_Item(request, i, words, now))
                self._queued_words += words
            self._cond.notify()
        request.future.add_done_callback(lambda future: future.cancelled() and self._discard(request))
        return request.future

    def close(self, timeout: Optional[float] = None) -> bool:
        """Take no new requests, annotate those queued, and stop the worker;
        False when it has not stopped within ``timeout`` seconds."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _discard(self, request: _Request) -> None:
        """Take a request that is given up out of the queue."""
        with self._cond:
            request.finished = True
            kept = deque(item for item in self._queue if item.request is not request)
            self._queued_words -= sum(item.words for item in self._queue if item.request is request)
            self._queue = kept

    # --- the worker thread ------------------------------------------------------------

    def _take(self) -> Optional[List[_Item]]:
        """The next batch, or ``None`` when closing with nothing left."""
        with self._cond:
            expected = self._expected
            free = time.monotonic()
            while not self._queue:
                if self._closing:
                    return None
                self._cond.wait()
            # the model waits at most max_wait once it is free and a document is there
            deadline = max(self._queue[0].queued, free) + self.max_wait
            while not self._closing and len(self._queue) < expected and self._queued_words < self.max_batch_words:
                left = deadline - time.monotonic()
                if left <= 0 or not self._queue:
                    break
                self._cond.wait(left)
            batch: List[_Item] = []
            words = 0
            while self._queue and len(batch) < self.max_batch_documents:
                item = self._queue[0]
                if batch and words + item.words > self.max_batch_words:
                    break
                self._queue.popleft()
                self._queued_words -= item.words
                if not item.request.finished:
                    batch.append(item)
                    words += item.words
            return batch

    def _run(self, init: Optional[Callable[[], None]] = None) -> None:
        try:
            if init is not None:
                init()
            while True:
                batch = self._take()
                if batch is None:
                    return
                if batch:
                    self._run_batch(batch)
        except BaseException as error:  # noqa: BLE001 (the worker must not die silently)
            self._stop(f"the model's worker stopped: {type(error).__name__}: {error}")

    def _stop(self, reason: str) -> None:
        """Fail every waiting request and refuse new ones."""
        with self._cond:
            self.error = reason
            items, self._queue, self._queued_words = self._current + list(self._queue), deque(), 0
        for item in items:
            if not item.request.finished:
                item.request.fail(Closed(reason))

    def _run_batch(self, batch: List[_Item]) -> None:
        texts = [item.request.texts[item.index] for item in batch]
        self._current = batch
        start = time.perf_counter()
        try:
            results = self.process(texts)
            if len(results) != len(texts):
                raise RuntimeError(f"the model gave {len(results)} results for {len(texts)} documents")
        except Exception:
            # one bad document must not fail the others of the batch: run them one by one
            results = []
            for item, text in zip(batch, texts):
                result = None
                if not item.request.finished:
                    try:
                        result = self.process([text])[0]
                    except Exception as error:  # noqa: BLE001 (reported to that request's caller)
                        self._discard(item.request)
                        item.request.fail(DocumentFailed(item.index, error))
                results.append(result)
        seconds = time.perf_counter() - start
        stats = self.stats
        stats.batches += 1
        stats.documents += len(batch)
        stats.batch_seconds += seconds
        rate = len(batch) / seconds if seconds > 0 else 0.0
        stats.rate = rate if stats.rate == 0.0 else 0.8 * stats.rate + 0.2 * rate
        if self.on_batch is not None:
            try:
                self.on_batch(len(batch), seconds)
            except Exception:  # noqa: BLE001 (metrics must not stop the answers)
                pass
        self._current = []
        with self._cond:
            # the documents of this batch (their clients are about to be answered) and those
            # that arrived while it ran: how many the next batch can expect; counted before
            # answering, so a document sent in reply is not counted twice
            self._expected = min(len(batch) + len(self._queue), self.max_batch_documents)
        for item, result in zip(batch, results):
            if not item.request.finished:
                item.request.done(item.index, result)
