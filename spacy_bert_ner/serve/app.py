"""The HTTP service: a FastAPI app around one pipeline, fixed at start.

``POST /v1/ner`` annotates ``{"documents": [{"id": ..., "text": ...}, ...]}``
and answers ``{"model": ..., "documents": [...]}``: each input document, in
order, with its ``entities`` added, the shape ``predict`` writes to JSON Lines.
Documents of concurrent requests share model batches
(:class:`~spacy_bert_ner.serve.batcher.MicroBatcher`); the model runs on a
worker thread, never on the event loop.

``GET /health`` answers while the process runs; ``GET /ready`` once the model
is loaded and has annotated a warm-up batch; ``GET /info`` describes the model;
``GET /metrics`` is Prometheus text; ``GET /`` is a page to try the model.

Every error is JSON, ``{"error": {"code", "message", ...}}``, with a 4xx
status for anything the client can fix: 400 body not UTF-8 or not JSON, 413
too many documents or too many bytes, 422 a field of the wrong type, an empty
text, a text over the character limit or holding a control character, 429
the queue is full (with ``Retry-After``), 503 not ready yet or shutting down,
504 not answered in time.
"""
import asyncio
import json
import logging
import os
import re
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Dict, List, Optional, Tuple, Union

from spacy_bert_ner.pipeline.batching import length_groups
from spacy_bert_ner.serve.batcher import Closed, DocumentFailed, MicroBatcher, QueueFull
from spacy_bert_ner.serve.settings import ServeSettings
from spacy_bert_ner.tools.predict import span_entity

STATIC = Path(__file__).parent / "static"
INSTALL = 'pip install "spacy-bert-ner[serve]"'
ENDPOINTS = ("/", "/v1/ner", "/health", "/ready", "/info", "/metrics", "/static")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
     b"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
]
# C0 controls other than tab, newline and carriage return; DEL; C1 controls; lone surrogates
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# a JSON escape of a UTF-16 surrogate: only such an escape can put a lone surrogate in a string
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# integer ids beyond what a JSON double holds exactly are refused (JavaScript clients would change them)
MAX_ID = 2**53
LOGGER = logging.getLogger("spacy_bert_ner.serve")
WARM_UP = ["Warm up.", "Ada Lovelace wrote the first program for Charles Babbage 's engine in London ."]


def require_serve() -> None:
    """Raise ``ImportError`` naming the extra when FastAPI, uvicorn or
    prometheus_client is missing."""
    missing = []
    for module in ("fastapi", "uvicorn", "prometheus_client"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ImportError(f"serving needs {', '.join(missing)}: {INSTALL}")


class ApiError(Exception):
    """An answer other than 200, as ``{"error": {"code", "message", **extra}}``."""

    def __init__(self, status: int, code: str, message: str, headers: Optional[Dict[str, str]] = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers, self.extra = status, code, message, headers, extra

    def body(self) -> Dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


# --- the model ------------------------------------------------------------------------------


class Model:
    """The pipeline of the service: loaded (and warmed up) once, on the
    batcher's thread, so ``/health`` answers while it loads."""

    def __init__(self, model: Union[str, Path, Any], runtime: Optional[str] = None) -> None:
        self.source = model
        self.runtime = runtime
        self.nlp: Any = None if isinstance(model, (str, Path)) else model
        self.error: Optional[str] = None
        self.ready = threading.Event()
        self.description: Dict[str, Any] = {}

    def load(self) -> None:
        from spacy_bert_ner import runtime as runtimes

        try:
            if self.nlp is None:
                self.nlp = runtimes.load(str(self.source), self.runtime)
            elif self.runtime is not None:
                runtimes.set_runtime(self.nlp, self.runtime)
            self(WARM_UP)
            self.description = self.info()
        except Exception as error:  # noqa: BLE001 (reported by /ready and /info)
            self.error = f"{type(error).__name__}: {error}"
            return
        self.ready.set()

    def __call__(self, texts: List[str]) -> List[Tuple[List[Dict[str, Any]], int]]:
        """``(entities, words)`` of each text, in order. The texts are run
        shortest first, in groups of similar length
        (:func:`~spacy_bert_ner.pipeline.batching.length_groups`), so a batch
        of mixed lengths carries little padding."""
        nlp = self.nlp
        docs = [nlp.make_doc(text) for text in texts]
        results: List[Any] = [None] * len(docs)
        for group in length_groups(docs):
            for i, doc in zip(group, nlp.pipe([docs[i] for i in group], batch_size=len(group))):
                results[i] = ([span_entity(span) for span in doc.ents], len(doc))
        return results

    def info(self) -> Dict[str, Any]:
        from spacy_bert_ner.runtime import transformer_runtimes

        nlp = self.nlp
        meta = nlp.meta
        labels = sorted({label for name in nlp.pipe_names for label in _ner_labels(nlp.get_pipe(name))})
        performance = meta.get("performance") or {}
        return {
            "model": f"{meta.get('lang', 'xx')}_{meta.get('name', 'pipeline')}",
            "version": meta.get("version"),
            "spacy_version": meta.get("spacy_version"),
            "pipeline": list(nlp.pipe_names),
            "labels": labels,
            "runtime": transformer_runtimes(nlp),
            "scores": {k: v for k, v in performance.items() if k.startswith("ents_") and k != "ents_per_type"},
            "scores_per_label": performance.get("ents_per_type", {}),
        }


def _ner_labels(component: Any) -> List[str]:
    from spacy.pipeline import EntityRecognizer

    from spacy_bert_ner.pipeline.bert_ner import BertNER

    return list(component.labels) if isinstance(component, (EntityRecognizer, BertNER)) else []


# --- requests -------------------------------------------------------------------------------


def parse_documents(body: bytes, settings: ServeSettings) -> List[Dict[str, Any]]:
    """The documents of a request body, or an :class:`ApiError` naming what is wrong."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ApiError(400, "invalid_encoding", f"the request body is not valid UTF-8 ({e.reason} at byte {e.start})") from None
    try:
        payload = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        raise ApiError(400, "invalid_json", f"the request body is not JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    except _Invalid as e:
        raise ApiError(400, "invalid_json", f"the request body is not valid here: {e}") from None
    except (ValueError, RecursionError) as e:  # an integer too long to convert; nesting too deep
        raise ApiError(400, "invalid_json", f"the request body cannot be read: {type(e).__name__}: {str(e)[:200]}") from None
    if SURROGATE_ESCAPE.search(text):
        bad = _lone_surrogate(payload)
        if bad is not None:
            raise ApiError(422, "lone_surrogate", f"{bad} holds a lone UTF-16 surrogate escape (not a character)")
    if not isinstance(payload, dict):
        raise ApiError(422, "invalid_request", f"the request must be a JSON object with \"documents\", got {_json_type(payload)}")
    unknown = sorted(set(payload) - {"documents"})
    if unknown:
        raise ApiError(422, "invalid_request", f"unknown field {_short(unknown[0])}: a request has only \"documents\"")
    documents = payload.get("documents")
    if not isinstance(documents, list):
        raise ApiError(422, "invalid_request", f"\"documents\" must be a list of objects, got {_json_type(documents)}")
    if not documents:
        raise ApiError(422, "no_documents", "\"documents\" is empty")
    if len(documents) > settings.max_documents:
        raise ApiError(413, "too_many_documents", f"{len(documents)} documents in one request; the limit is {settings.max_documents}",
                       limit="max_documents", value=settings.max_documents)
    for i, document in enumerate(documents):
        _check_document(i, document, settings)
    return documents


class _Invalid(ValueError):
    """JSON that Python's parser takes but the API does not."""


def _no_constant(name: str) -> Any:
    raise _Invalid(f"{name} is not a JSON number")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise _Invalid(f"the number {literal[:40]} is out of range")
    return value


def _unique_keys(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Invalid(f"the key {_short(key)} appears twice in one object")
        out[key] = value
    return out


def _lone_surrogate(value: Any, where: str = "") -> Optional[str]:
    """Where ``value`` holds a lone surrogate (in a string or a key), if anywhere."""
    if isinstance(value, str):
        return (where or "the request") if any("\ud800" <= c <= "\udfff" for c in value) else None
    items = enumerate(value) if isinstance(value, list) else value.items() if isinstance(value, dict) else ()
    for key, item in items:
        if isinstance(key, str) and any("\ud800" <= c <= "\udfff" for c in key):
            return f"a key of {where or 'the request'}"
        found = _lone_surrogate(item, f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if where else key)
        if found:
            return found
    return None


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_document(i: int, document: Any, settings: ServeSettings) -> None:
    if not isinstance(document, dict):
        raise ApiError(422, "invalid_document", f"documents[{i}] must be an object, got {_json_type(document)}", document=i)
    doc_id = document.get("id")
    valid_id = doc_id is None or isinstance(doc_id, str) or (isinstance(doc_id, int) and not isinstance(doc_id, bool))
    name = f"documents[{i}]" + (f" (id {_short(doc_id)})" if valid_id and doc_id is not None else "")
    if not valid_id:
        raise ApiError(422, "invalid_document", f"{name}: \"id\" must be a string or an integer, got {_json_type(doc_id)}", document=i)
    if isinstance(doc_id, int) and abs(doc_id) > MAX_ID:
        raise ApiError(422, "invalid_document", f"{name}: an integer \"id\" must be within ±2^53; send larger ids as strings", document=i)
    text = document.get("text")
    if not isinstance(text, str):
        what = "has no \"text\"" if text is None else f"\"text\" must be a string, got {_json_type(text)}"
        raise ApiError(422, "invalid_document", f"{name}: {what}", document=i)
    if not text.strip():
        raise ApiError(422, "empty_text", f"{name}: the text is empty", document=i)
    if len(text) > settings.max_characters:
        raise ApiError(422, "text_too_long", f"{name}: {len(text)} characters; the limit is {settings.max_characters}",
                       document=i, limit="max_characters", value=settings.max_characters)
    bad = CONTROL.search(text)
    if bad:
        raise ApiError(422, "control_character", f"{name}: control character U+{ord(bad.group()):04X} at character {bad.start()}",
                       document=i)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(type(value), type(value).__name__)


async def _read_body(receive_stream: Any, content_length: Optional[str], limit: int) -> bytes:
    too_large = ApiError(413, "request_too_large", f"the request body is over {limit} bytes", limit="max_request_bytes", value=limit)
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in receive_stream:
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


# --- the app --------------------------------------------------------------------------------


class Service:
    """The model, the batcher and the metrics of one app."""

    def __init__(self, model: Union[str, Path, Any], settings: ServeSettings, runtime: Optional[str]) -> None:
        from spacy_bert_ner.serve.metrics import ServiceMetrics

        self.settings = settings
        self.model = Model(model, runtime)
        self.batcher = MicroBatcher(
            self.model, settings.max_batch_documents, settings.max_batch_words, settings.max_wait_ms,
            settings.max_queue_documents,
        )
        self.metrics = ServiceMetrics(lambda: self.batcher.waiting)
        self.batcher.on_batch = self.metrics.batch

    def start(self) -> None:
        """Start the model's thread: it loads the model, then runs batches."""
        self.batcher.start(init=self.model.load)

    def close(self) -> None:
        """Annotate what is queued and stop the model's thread, waiting at most
        ``shutdown_timeout_s`` (the thread is a daemon: a batch still running
        then does not keep the process alive)."""
        self.batcher.close(self.settings.shutdown_timeout_s)

    def failure(self) -> Optional[str]:
        """Why the service cannot answer any more, if it cannot: the model did
        not load, or its worker stopped."""
        if self.model.error is not None:
            return f"the model could not be loaded: {self.model.error}"
        return self.batcher.error

    def check_ready(self) -> None:
        failure = self.failure()
        if failure is not None:
            raise ApiError(503, "model_failed", failure)
        if not self.model.ready.is_set():
            raise ApiError(503, "not_ready", "the model is loading", headers={"Retry-After": "1"})

    async def annotate(self, body: bytes, arrived: float) -> Dict[str, Any]:
        settings = self.settings
        self.check_ready()
        documents = parse_documents(body, settings)
        left = settings.request_timeout_s - (time.monotonic() - arrived)
        try:
            if left <= 0:
                raise asyncio.TimeoutError
            results = await asyncio.wait_for(self.batcher.submit([d["text"] for d in documents]), timeout=left)
        except QueueFull as full:
            raise ApiError(429, "queue_full", str(full), headers={"Retry-After": str(full.retry_after)},
                           limit="max_queue_documents", value=full.limit) from None
        except asyncio.TimeoutError:
            raise ApiError(504, "timeout", f"not answered within {settings.request_timeout_s} s",
                           limit="request_timeout_s", value=settings.request_timeout_s) from None
        except Closed as closed:
            failure = self.failure()
            if failure is not None:
                raise ApiError(503, "model_failed", failure) from None
            raise ApiError(503, "shutting_down", str(closed)) from None
        except DocumentFailed as failed:
            raise ApiError(500, "model_error", f"documents[{failed.index}]: the model failed: {failed.error}", document=failed.index) from None
        out = []
        words = entities = 0
        for document, (found, n_words) in zip(documents, results):
            out.append({**document, "entities": found})
            words += n_words
            entities += len(found)
        self.metrics.annotated(len(documents), words, entities)
        return {"model": self.model.description["model"], "documents": out}


class _Front:
    """The ASGI layer in front of FastAPI: it answers ``POST /v1/ner`` itself,
    counts and times every HTTP request by endpoint, and adds the security
    headers to every answer.

    ``/v1/ner`` is handled here rather than by a FastAPI route: FastAPI's
    routing, dependency and exception layers add event-loop time to every
    request, which counts when requests carry one short document each and
    the event loop shares the cores with the model. Everything else
    goes to FastAPI.
    """

    def __init__(self, app: Any, service: Service) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        endpoint = "/static" if path.startswith("/static/") else path if path in ENDPOINTS else "other"
        start = time.perf_counter()
        status = 500

        async def send_with_headers(message: Dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        try:
            if path == "/v1/ner":
                await self.ner(scope, receive, send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        finally:
            self.service.metrics.answered(endpoint, status, time.perf_counter() - start)

    async def ner(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        arrived = time.monotonic()
        headers: Dict[str, str] = {}
        try:
            if scope["method"] != "POST":
                raise ApiError(405, "method_not_allowed", "use POST", headers={"Allow": "POST"})
            length = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"content-length"), None)
            body = await _read_body(_body_chunks(receive), length, self.service.settings.max_request_bytes)
            status, payload = 200, await self.service.annotate(body, arrived)
            data = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
        except ApiError as error:
            self.service.metrics.rejected(error)
            status, headers = error.status, error.headers or {}
            data = json.dumps(error.body(), ensure_ascii=False).encode("utf-8")
        except Exception as error:  # noqa: BLE001 (a bug must still get a JSON answer)
            LOGGER.exception("POST /v1/ner failed")
            status = 500
            data = json.dumps({"error": {"code": "internal_error", "message": f"{type(error).__name__}: {error}"[:500]}}).encode()
        raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
        raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": data})


async def _body_chunks(receive: Any) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ApiError(400, "disconnected", "the client disconnected before sending the whole body")
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def create_app(model: Union[str, Path, Any], settings: Optional[ServeSettings] = None, runtime: Optional[str] = None) -> Any:
    """An ASGI app serving ``model`` (a pipeline's path or package name, or a
    loaded ``Language``) with ``settings`` (limits and batching) and, when
    given, the transformer ``runtime``.

    Run it with uvicorn (``uvicorn.run(create_app("en_bert_ner"))``) or any
    ASGI server; use one process per model copy. The model is loaded when the
    app starts and annotates one warm-up batch before ``/ready`` answers 200.
    """
    require_serve()
    from fastapi import FastAPI, Request
    from fastapi.responses import FileResponse, JSONResponse, Response
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException

    settings = settings or ServeSettings()
    service = Service(model, settings, runtime)

    @asynccontextmanager
    async def lifespan(app: Any):
        service.start()
        yield
        # requests already accepted have been answered by now (the server waits for them);
        # whatever is still queued is annotated before the worker stops
        await asyncio.to_thread(service.close)

    app = FastAPI(title="spacy-bert-ner", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> Response:
        service.metrics.rejected(error)
        return JSONResponse(error.body(), status_code=error.status, headers=error.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return JSONResponse({"error": {"code": code, "message": str(error.detail)}}, status_code=error.status_code,
                            headers=getattr(error, "headers", None))

    @app.get("/health")
    async def health() -> Dict[str, str]:
        return {"status": "alive"}

    @app.get("/ready")
    async def ready() -> Response:
        failure = service.failure()
        if failure is not None:
            return JSONResponse({"status": "failed", "error": failure}, status_code=503)
        if service.model.ready.is_set():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "loading"}, status_code=503, headers={"Retry-After": "1"})

    @app.get("/info")
    async def info() -> Dict[str, Any]:
        service.check_ready()
        return {**service.model.description, "limits": settings.to_dict()}

    @app.get("/metrics")
    async def metrics() -> Response:
        text, content_type = service.metrics.render()
        return Response(text, media_type=content_type)

    @app.get("/")
    async def page() -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(_Front, service=service)
    return app


def settings_from_environment(environ: Optional[Dict[str, str]] = None) -> ServeSettings:
    """:class:`ServeSettings` with each field read from
    ``SPACY_BERT_NER_SERVE_<FIELD>`` when set (e.g. ``..._MAX_DOCUMENTS=16``)."""
    from dataclasses import fields

    environ = os.environ if environ is None else environ
    values: Dict[str, Any] = {}
    for f in fields(ServeSettings):
        raw = environ.get(f"SPACY_BERT_NER_SERVE_{f.name.upper()}")
        if raw is not None:
            kind = type(f.default)
            try:
                values[f.name] = kind(raw)
            except ValueError:
                raise ValueError(f"SPACY_BERT_NER_SERVE_{f.name.upper()}={raw!r}: not a {kind.__name__}") from None
    return ServeSettings(**values)


def from_environment() -> Any:
    """The app for ``uvicorn --factory spacy_bert_ner.serve:from_environment``:
    the model from ``SPACY_BERT_NER_MODEL``, the runtime from
    ``SPACY_BERT_NER_RUNTIME`` and the settings from
    :func:`settings_from_environment`."""
    model = os.environ.get("SPACY_BERT_NER_MODEL")
    if not model:
        raise ValueError("set SPACY_BERT_NER_MODEL to the pipeline to serve (a path or an installed package name)")
    return create_app(model, settings_from_environment(), os.environ.get("SPACY_BERT_NER_RUNTIME") or None)
