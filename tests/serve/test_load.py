"""A bounded load test on loopback: a fixed number of requests from a fixed number of
concurrent clients against a small queue. Every accepted request is answered with its
own documents' entities, none is lost, and the only refusals are 429s."""

import asyncio
import random
from collections import Counter

import httpx
import spacy

from spacy_bert_ner.inference.entities import entity_record
from spacy_bert_ner.serve import ServeSettings, create_app

from .conftest import running
from .test_app import TEXTS

REQUESTS = 240
CLIENTS = 24


def test_bounded_load_loses_nothing_and_refuses_only_with_429(serve_model):
    nlp = spacy.load(serve_model)
    rng = random.Random(0)
    bodies = []
    for i in range(REQUESTS):
        texts = rng.sample(TEXTS, rng.randint(1, 3))
        bodies.append({"documents": [{"id": f"{i}-{j}", "text": t} for j, t in enumerate(texts)]})
    expected = {t: [entity_record(s) for s in doc.ents] for t, doc in zip(TEXTS, nlp.pipe(TEXTS))}
    settings = ServeSettings(max_queue_documents=12, max_documents=4, max_wait_ms=2)
    with running(create_app(str(serve_model), settings)) as server:

        async def client(queue, results, http):
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                results[i] = await http.post("/v1/ner", json=bodies[i])

        async def load():
            queue = asyncio.Queue()
            for i in range(REQUESTS):
                queue.put_nowait(i)
            results = {}
            limits = httpx.Limits(max_connections=CLIENTS)
            async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as http:
                await asyncio.wait_for(asyncio.gather(*(client(queue, results, http) for _ in range(CLIENTS))), timeout=240)
            return results

        results = asyncio.run(load())
        batcher = server.service.batcher.stats
    assert sorted(results) == list(range(REQUESTS))  # every request got an answer
    statuses = Counter(r.status_code for r in results.values())
    assert set(statuses) <= {200, 429}, statuses
    assert statuses[200] > 0
    for i, response in results.items():
        if response.status_code == 429:
            assert response.json()["error"]["code"] == "queue_full" and int(response.headers["retry-after"]) >= 1
            continue
        answer = response.json()["documents"]
        sent = bodies[i]["documents"]
        assert [d["id"] for d in answer] == [d["id"] for d in sent]
        assert all(d["entities"] == expected[d["text"]] for d in answer)
    accepted_documents = sum(len(bodies[i]["documents"]) for i, r in results.items() if r.status_code == 200)
    assert batcher.documents == accepted_documents
    assert batcher.batches < statuses[200]  # requests shared batches
