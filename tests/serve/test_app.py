"""The service's contract on loopback: answers in predict's shape, health/ready/info/metrics,
limits and bad input as 4xx JSON errors, batching across requests without cross-talk,
429 when the queue is full, timeouts, model failures kept to their request, graceful shutdown."""

import asyncio
import json
import re

import httpx
import pytest
import spacy

from spacy_bert_ner.inference.entities import entity_record
from spacy_bert_ner.serve import ServeSettings, create_app, settings_from_environment

from .conftest import running, wait_until

TEXTS = [
    "anna works at acme .",
    "i live in paris .",
    "the office of globex is in berlin",
    "we met boris and carla yesterday",
    "felix visited rome today",
    "emma works at initech .",
    "i live in vienna .",
    "david visited madrid today",
]


def entities(nlp, text):
    return [entity_record(span) for span in nlp(text).ents]


def metric(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{re.escape(name + labels)} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


@pytest.fixture(scope="module")
def nlp(serve_model):
    return spacy.load(serve_model)


@pytest.fixture(scope="module")
def server(serve_model):
    settings = ServeSettings(max_documents=4, max_characters=200, max_request_bytes=8000)
    with running(create_app(str(serve_model), settings)) as run:
        yield run


def test_ner_answers_each_document_in_predict_shape(server, nlp):
    documents = [{"id": "a", "text": TEXTS[0], "source": "test"}, {"id": 7, "text": TEXTS[2]}, {"text": TEXTS[3]}]
    with server.client() as client:
        response = client.post("/v1/ner", json={"documents": documents})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == f"{nlp.meta['lang']}_{nlp.meta['name']}"
    assert [d["id"] for d in body["documents"][:2]] == ["a", 7] and "id" not in body["documents"][2]
    assert body["documents"][0]["source"] == "test"  # other fields are kept, as predict keeps them
    for document, answer in zip(documents, body["documents"]):
        assert answer["text"] == document["text"]
        assert answer["entities"] == entities(nlp, document["text"])
    found = [e for d in body["documents"] for e in d["entities"]]
    assert found, "the toy model finds entities in these texts"
    for entity in found:
        assert set(entity) == {"text", "label", "start_char", "end_char", "confidence"}
        assert 0.0 <= entity["confidence"] <= 1.0


def test_health_ready_info_and_metrics(server, nlp):
    with server.client() as client:
        assert client.get("/health").json() == {"status": "alive"}
        assert client.get("/ready").json() == {"status": "ready"}
        info = client.get("/info").json()
        before = client.get("/metrics").text
        assert client.post("/v1/ner", json={"documents": [{"text": t} for t in TEXTS[:3]]}).status_code == 200
        after = client.get("/metrics")
    assert info["labels"] == sorted(nlp.get_pipe("bert_ner").labels)
    assert info["runtime"] == {"transformer": "fp32"}
    assert info["pipeline"] == nlp.pipe_names and info["version"] == nlp.meta["version"]
    assert info["limits"]["max_documents"] == 4
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    words = sum(len(nlp.make_doc(t)) for t in TEXTS[:3])
    assert metric(text, "spacy_bert_ner_documents_total") - metric(before, "spacy_bert_ner_documents_total") == 3
    assert metric(text, "spacy_bert_ner_words_total") - metric(before, "spacy_bert_ner_words_total") == words
    assert metric(text, "spacy_bert_ner_requests_total", '{endpoint="/v1/ner",status="200"}') >= 1
    for name in (
        "spacy_bert_ner_request_duration_seconds_bucket",
        "spacy_bert_ner_queue_documents",
        "spacy_bert_ner_batch_documents_bucket",
        "spacy_bert_ner_batches_total",
    ):
        assert name in text


def _post(client, content, **kwargs):
    return client.post("/v1/ner", content=content, headers={"content-type": "application/json"}, **kwargs)


BAD = [
    (b'{"documents": [', 400, "invalid_json"),
    ('{"documents": [{"text": "caf\xe9"}]}'.encode("latin-1"), 400, "invalid_encoding"),
    (b"[]", 422, "invalid_request"),
    (b'{"docs": []}', 422, "invalid_request"),
    (b'{"documents": {"text": "x"}}', 422, "invalid_request"),
    (b'{"documents": []}', 422, "no_documents"),
    (b'{"documents": ["anna"]}', 422, "invalid_document"),
    (b'{"documents": [{"id": "x"}]}', 422, "invalid_document"),
    (b'{"documents": [{"text": 5}]}', 422, "invalid_document"),
    (b'{"documents": [{"text": "a", "id": [1]}]}', 422, "invalid_document"),
    (b'{"documents": [{"text": "a", "id": true}]}', 422, "invalid_document"),
    (b'{"documents": [{"text": ""}]}', 422, "empty_text"),
    (b'{"documents": [{"text": "  \\n "}]}', 422, "empty_text"),
    (b'{"documents": [{"text": "anna\\u0000 x"}]}', 422, "control_character"),
    (b'{"documents": [{"text": "ok"}, {"id": "b", "text": "bad \\ud800 x"}]}', 422, "lone_surrogate"),
    (b'{"documents": [{"text": "%s"}]}' % (b"a" * 201), 422, "text_too_long"),
    (b'{"documents": [{"text": "ok \\u0085 x"}]}', 422, "control_character"),
    (b'{"documents": [{"text": "ok", "x": NaN}]}', 400, "invalid_json"),
    (b'{"documents": [{"text": "ok", "x": -Infinity}]}', 400, "invalid_json"),
    (b'{"documents": [{"text": "ok", "x": 1e400}]}', 400, "invalid_json"),
    (b'{"documents": [{"text": "ok", "x": ' + b"[" * 1500 + b"]" * 1500 + b"}]}", 400, "invalid_json"),
    (b'{"documents": [{"text": "ok", "id": ' + b"9" * 5000 + b"}]}", 400, "invalid_json"),
    (b'{"documents": [{"text": "ok", "id": 9007199254740993}]}', 422, "invalid_document"),
    (b'{"documents": [{"text": "a"}], "documents": [{"text": "b"}]}', 400, "invalid_json"),
    (b'{"documents": [{"text": "ok", "id": "\\udc00"}]}', 422, "lone_surrogate"),
    (b'{"documents": [{"text": "ok", "\\udc00": 1}]}', 422, "lone_surrogate"),
    (json.dumps({"documents": [{"text": "a"}] * 5}).encode(), 413, "too_many_documents"),
    (json.dumps({"documents": [{"text": "a" * 150}] * 4, "x": "y" * 8000}).encode(), 413, "request_too_large"),
]


@pytest.mark.parametrize("body,status,code", BAD, ids=[code + str(i) for i, (_, _, code) in enumerate(BAD)])
def test_bad_input_gets_a_4xx_json_error_and_the_service_goes_on(server, body, status, code):
    with server.client() as client:
        response = _post(client, body)
        assert response.headers["content-type"] == "application/json"
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert error["code"] == code and error["message"]
        assert client.post("/v1/ner", json={"documents": [{"text": TEXTS[1]}]}).status_code == 200


def test_errors_name_the_document_and_the_limit(server):
    with server.client() as client:
        error = _post(client, b'{"documents": [{"text": "ok"}, {"id": "b", "text": "bad \\u0007"}]}').json()["error"]
        assert error["document"] == 1 and "documents[1] (id 'b')" in error["message"] and "U+0007" in error["message"]
        error = client.post("/v1/ner", json={"documents": [{"text": "a"}] * 5}).json()["error"]
        assert error["limit"] == "max_documents" and error["value"] == 4
        error = client.post("/v1/ner", json={"documents": [{"text": "a" * 300}]}).json()["error"]
        assert error["limit"] == "max_characters" and "300 characters" in error["message"]


def test_a_body_over_the_byte_limit_is_refused_without_a_content_length(server):
    def chunks():  # a chunked body: the limit is enforced while reading
        yield b'{"documents": [{"text": "'
        for _ in range(10):
            yield b"a" * 1000
        yield b'"}]}'

    with server.client() as client:
        response = client.post("/v1/ner", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "request_too_large"


def test_unknown_paths_and_methods_get_json_errors(server):
    with server.client() as client:
        assert client.get("/v2/ner").json()["error"]["code"] == "not_found"
        wrong_method = client.get("/v1/ner")
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"


def test_the_page_and_its_files_are_served_with_a_strict_policy(server):
    with server.client() as client:
        page = client.get("/")
        script = client.get("/static/page.js")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert script.status_code == 200 and "/v1/ner" in script.text
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script.text  # shown text is never parsed as HTML


async def _post_all(url, bodies, timeout=60):
    async with httpx.AsyncClient(base_url=url, timeout=timeout) as client:
        return await asyncio.gather(*(client.post("/v1/ner", json=body) for body in bodies))


def test_concurrent_requests_share_model_batches_without_cross_talk(serve_model, gated_nlp, gate, nlp):
    app = create_app(gated_nlp, ServeSettings(max_wait_ms=0))
    with running(app) as server:
        batcher = server.service.batcher
        batches_before = batcher.stats.batches
        gate.clear()
        bodies = [{"documents": [{"id": i, "text": text}]} for i, text in enumerate(TEXTS)]

        async def scenario():
            first = asyncio.ensure_future(_post_all(server.url, bodies[:1]))
            # the first request is held in the model; the other 7 wait in the queue
            await asyncio.to_thread(wait_until, lambda: batcher.running == 1, 30, "the first request in the model")
            rest = asyncio.ensure_future(_post_all(server.url, bodies[1:]))
            await asyncio.to_thread(wait_until, lambda: batcher.waiting == len(TEXTS) - 1, 30, "7 queued")
            gate.set()
            return (await first) + (await rest)

        responses = asyncio.run(scenario())
        batches = server.service.batcher.stats.batches - batches_before
    assert [r.status_code for r in responses] == [200] * len(TEXTS)
    assert batches == 2 < len(TEXTS)
    for i, (text, response) in enumerate(zip(TEXTS, responses)):
        answer = response.json()["documents"]
        assert answer == [{"id": i, "text": text, "entities": entities(nlp, text)}]


def test_a_full_queue_gives_429_with_retry_after_and_accepted_requests_are_answered(gated_nlp, gate):
    app = create_app(gated_nlp, ServeSettings(max_queue_documents=4, max_documents=4, max_wait_ms=0))
    with running(app) as server:
        gate.clear()

        async def scenario():
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                first = asyncio.ensure_future(client.post("/v1/ner", json={"documents": [{"text": TEXTS[0]}]}))
                await asyncio.to_thread(wait_until, lambda: server.service.batcher.running == 1, 30)
                queued = [
                    asyncio.ensure_future(client.post("/v1/ner", json={"documents": [{"text": t}, {"text": t}]}))
                    for t in TEXTS[1:3]
                ]
                await asyncio.to_thread(wait_until, lambda: server.service.batcher.waiting == 4, 30, "4 queued")
                refused = await client.post("/v1/ner", json={"documents": [{"text": TEXTS[3]}]})
                gate.set()
                return refused, await asyncio.gather(first, *queued)

        refused, answered = asyncio.run(scenario())
        metrics = httpx.get(server.url + "/metrics").text
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["code"] == "queue_full" and refused.json()["error"]["limit"] == "max_queue_documents"
    assert [r.status_code for r in answered] == [200, 200, 200]
    assert metric(metrics, "spacy_bert_ner_rejections_total", '{reason="queue_full"}') == 1


def test_a_request_not_answered_in_time_gets_504_and_leaves_the_queue(gated_nlp, gate):
    app = create_app(gated_nlp, ServeSettings(request_timeout_s=0.5, max_wait_ms=0, max_queue_documents=4, max_documents=4))
    with running(app) as server:
        batcher = server.service.batcher
        gate.clear()

        async def scenario():
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
                held = asyncio.ensure_future(client.post("/v1/ner", json={"documents": [{"text": TEXTS[0]}]}))
                await asyncio.to_thread(wait_until, lambda: batcher.running == 1, 30, "the first in the model")
                late = await client.post("/v1/ner", json={"documents": [{"text": t} for t in TEXTS[1:5]]})
                waiting = batcher.waiting  # the late request's 4 documents left the queue with its 504
                # the queue has room again: a request of 4 documents is queued, not refused
                queued = asyncio.ensure_future(client.post("/v1/ner", json={"documents": [{"text": t} for t in TEXTS[4:8]]}))
                await asyncio.to_thread(wait_until, lambda: batcher.waiting == 4, 30, "4 queued")
                gate.set()
                return await held, late, waiting, await queued

        held, late, waiting, queued = asyncio.run(scenario())
        wait_until(lambda: batcher.running == 0, 30, "the model to finish")
    assert late.status_code == 504 and late.json()["error"]["code"] == "timeout"
    assert held.status_code == 504  # it was held by the closed gate past its timeout too
    assert queued.status_code == 504 or queued.status_code == 200
    assert waiting == 0
    # the held document and at most the last request's; never the late request's
    assert batcher.stats.documents in (1, 5)


def test_a_model_failure_fails_only_its_own_request(gated_nlp, gate, nlp):
    app = create_app(gated_nlp, ServeSettings(max_wait_ms=0))
    with running(app) as server:
        gate.clear()
        bodies = [
            {"documents": [{"text": TEXTS[0]}]},
            {"documents": [{"text": "BOOM goes anna"}]},
            {"documents": [{"text": TEXTS[1]}]},
        ]

        async def scenario():
            first = asyncio.ensure_future(_post_all(server.url, bodies[:1]))
            await asyncio.to_thread(wait_until, lambda: server.service.batcher.running == 1, 30, "the first in the model")
            rest = asyncio.ensure_future(_post_all(server.url, bodies[1:]))
            await asyncio.to_thread(wait_until, lambda: server.service.batcher.waiting == 2, 30, "2 queued")
            gate.set()
            return (await first) + (await rest)

        first, failed, last = asyncio.run(scenario())
        with server.client() as client:
            again = client.post("/v1/ner", json={"documents": [{"text": TEXTS[2]}]})
    assert failed.status_code == 500 and failed.json()["error"]["code"] == "model_error"
    assert first.status_code == last.status_code == again.status_code == 200
    assert last.json()["documents"][0]["entities"] == entities(nlp, TEXTS[1])


def test_not_ready_while_the_model_warms_up(gated_nlp, gate):
    gate.clear()  # the warm-up batch waits at the gate
    with running(create_app(gated_nlp), wait_ready=False) as server:
        with server.client() as client:
            assert client.get("/health").status_code == 200
            ready = client.get("/ready")
            refused = client.post("/v1/ner", json={"documents": [{"text": TEXTS[0]}]})
            gate.set()
            wait_until(lambda: client.get("/ready").status_code == 200, 30, "ready")
            assert client.post("/v1/ner", json={"documents": [{"text": TEXTS[0]}]}).status_code == 200
    assert ready.status_code == 503 and ready.json() == {"status": "loading"}
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "not_ready" and refused.headers["retry-after"] == "1"


def test_a_model_that_cannot_load_is_reported_not_ready(tmp_path):
    with running(create_app(str(tmp_path / "missing")), wait_ready=False) as server:
        with server.client() as client:
            wait_until(lambda: client.get("/ready").json()["status"] != "loading", 30, "the load to fail")
            ready = client.get("/ready")
            refused = client.post("/v1/ner", json={"documents": [{"text": "x"}]})
    assert ready.status_code == 503 and ready.json()["status"] == "failed" and "missing" in ready.json()["error"]
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "model_failed"


def test_shutdown_answers_the_requests_already_accepted(gated_nlp, gate, nlp):
    app = create_app(gated_nlp, ServeSettings(max_wait_ms=0))
    with running(app) as server:
        gate.clear()
        bodies = [{"documents": [{"text": t}]} for t in TEXTS[:4]]

        async def scenario():
            first = asyncio.ensure_future(_post_all(server.url, bodies[:1]))
            await asyncio.to_thread(wait_until, lambda: server.service.batcher.running == 1, 30, "the first in the model")
            rest = asyncio.ensure_future(_post_all(server.url, bodies[1:]))
            await asyncio.to_thread(wait_until, lambda: server.service.batcher.waiting == 3, 30, "3 queued")
            server.server.should_exit = True  # what SIGTERM does
            await asyncio.to_thread(wait_until, lambda: not _accepts(server.url), 30, "the listening socket to close")
            gate.set()
            return (await first) + (await rest)

        responses = asyncio.run(scenario())
    assert [r.status_code for r in responses] == [200] * 4
    assert [r.json()["documents"][0]["entities"] for r in responses] == [entities(nlp, t) for t in TEXTS[:4]]
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/health", timeout=2)


def _accepts(url: str) -> bool:
    try:
        httpx.get(url + "/health", timeout=1)
        return True
    except httpx.TransportError:
        return False


def test_a_stopped_worker_is_reported_and_refuses_requests(gated_nlp, gate):
    class Stop(BaseException):
        pass

    def broken(texts):
        raise Stop("the test stopped the worker")

    with running(create_app(gated_nlp, ServeSettings(max_wait_ms=0))) as server:
        server.service.batcher.process = broken
        with server.client() as client:
            first = client.post("/v1/ner", json={"documents": [{"text": TEXTS[0]}]})
            ready = client.get("/ready")
            later = client.post("/v1/ner", json={"documents": [{"text": TEXTS[1]}]})
    assert first.status_code == 503 and first.json()["error"]["code"] == "model_failed"
    assert ready.status_code == 503 and ready.json()["status"] == "failed" and "Stop" in ready.json()["error"]
    assert later.status_code == 503 and later.json()["error"]["code"] == "model_failed"


def test_settings_from_the_environment():
    settings = settings_from_environment({"SPACY_BERT_NER_SERVE_MAX_DOCUMENTS": "8", "SPACY_BERT_NER_SERVE_MAX_WAIT_MS": "2.5"})
    assert settings.max_documents == 8 and settings.max_wait_ms == 2.5 and settings.max_queue_documents == 1024
    with pytest.raises(ValueError, match="SPACY_BERT_NER_SERVE_MAX_DOCUMENTS='many': not a int"):
        settings_from_environment({"SPACY_BERT_NER_SERVE_MAX_DOCUMENTS": "many"})
    with pytest.raises(ValueError, match="max_documents must be positive"):
        ServeSettings(max_documents=0)
    with pytest.raises(ValueError, match="must not exceed max_queue_documents"):
        ServeSettings(max_documents=8, max_queue_documents=4)
    with pytest.raises(ValueError, match="max_wait_ms must be a finite number"):
        settings_from_environment({"SPACY_BERT_NER_SERVE_MAX_WAIT_MS": "inf"})
    with pytest.raises(ValueError, match="max_wait_ms must be at most"):
        ServeSettings(max_wait_ms=1e9)
