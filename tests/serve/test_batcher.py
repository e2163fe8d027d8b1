"""How the micro-batcher forms batches: it waits (up to ``max_wait_ms``) for as
many documents as its last batch held plus those that arrived while it ran,
starts at once when they are there, and never keeps a lone client waiting."""

import asyncio
import threading
import time

from spacy_bert_ner.serve.batcher import MicroBatcher

# long enough that a batch started before it cannot have waited it out
LONG_WAIT_MS = 3000


class Recorder:
    """A model step that records each batch and when it started; ``gate``
    holds a batch until released."""

    def __init__(self) -> None:
        self.batches = []
        self.started = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, texts):
        self.started.append(time.monotonic())
        self.batches.append(list(texts))
        self.gate.wait(10)
        return [text.upper() for text in texts]


def _batcher(recorder, **settings):
    batcher = MicroBatcher(recorder, **settings)
    batcher.start()
    return batcher


def test_a_lone_client_is_never_kept_waiting():
    recorder = Recorder()
    batcher = _batcher(recorder, max_wait_ms=LONG_WAIT_MS)

    async def client():
        for i in range(3):
            sent = time.monotonic()
            assert await batcher.submit([f"doc {i}"]) == [f"DOC {i}"]
            assert time.monotonic() - sent < LONG_WAIT_MS / 1000 / 2

    try:
        asyncio.run(client())
    finally:
        batcher.close(5)
    assert recorder.batches == [["doc 0"], ["doc 1"], ["doc 2"]]


def test_a_batch_starts_once_as_many_documents_are_back_as_the_last_one_held():
    """Three clients, answered together, come back 50 ms apart: the batcher
    waits for all three, and starts as soon as the third is there."""
    recorder = Recorder()
    batcher = _batcher(recorder, max_wait_ms=LONG_WAIT_MS)

    async def one(delay, text):
        await asyncio.sleep(delay)
        return (await batcher.submit([text]))[0]

    async def main():
        recorder.gate.clear()
        first = asyncio.ensure_future(batcher.submit(["a"]))
        await asyncio.sleep(0.1)  # "a" runs alone; b, c and d queue up behind it
        rest = [asyncio.ensure_future(batcher.submit([t])) for t in "bcd"]
        await asyncio.sleep(0.1)
        recorder.gate.set()
        await asyncio.gather(first, *rest)  # b, c, d waited for a 4th (a's client) up to max_wait_ms
        sent = time.monotonic()
        answers = await asyncio.gather(*(one(0.05 * i, t) for i, t in enumerate("xyz")))
        return sent, answers

    try:
        sent, answers = asyncio.run(main())
    finally:
        batcher.close(5)
    assert answers == ["X", "Y", "Z"]
    assert recorder.batches == [["a"], ["b", "c", "d"], ["x", "y", "z"]]  # x, y, z: one batch, though 50 ms apart
    assert recorder.started[-1] - sent < LONG_WAIT_MS / 1000 / 2  # it did not wait out max_wait_ms


def test_fewer_documents_than_the_last_batch_run_after_max_wait():
    recorder = Recorder()
    batcher = _batcher(recorder, max_wait_ms=200)

    async def main():
        recorder.gate.clear()
        blocked = asyncio.ensure_future(batcher.submit(["first"]))
        await asyncio.sleep(0.1)
        rest = asyncio.ensure_future(batcher.submit(["a", "b", "c"]))
        await asyncio.sleep(0.1)
        recorder.gate.set()
        await asyncio.gather(blocked, rest)  # the last batch now held 3
        sent = time.monotonic()
        assert await batcher.submit(["lonely"]) == ["LONELY"]  # 1 < 3: it waits out max_wait_ms, then runs
        return time.monotonic() - sent

    try:
        waited = asyncio.run(main())
    finally:
        batcher.close(5)
    assert recorder.batches[-1] == ["lonely"]
    assert waited >= 0.15
