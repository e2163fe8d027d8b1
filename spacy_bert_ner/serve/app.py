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
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, Dict, Optional, Union

from spacy_bert_ner.errors import require_extra
from spacy_bert_ner.serve.batcher import Closed, DocumentFailed, MicroBatcher, QueueFull
from spacy_bert_ner.serve.pipeline import ServedPipeline
from spacy_bert_ner.serve.requests import ApiError, parse_documents, read_body
from spacy_bert_ner.serve.settings import ServeSettings

STATIC = Path(__file__).parent / "static"
ENDPOINTS = ("/", "/v1/ner", "/health", "/ready", "/info", "/metrics", "/static")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
        b"base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    (b"referrer-policy", b"no-referrer"),
]
LOGGER = logging.getLogger("spacy_bert_ner.serve")


def require_serve() -> None:
    """Raise :class:`~spacy_bert_ner.errors.MissingDependency` naming the
    extra when FastAPI, uvicorn or prometheus_client is missing."""
    require_extra("serve", ("fastapi", "uvicorn", "prometheus_client"), "serving")


# --- the app --------------------------------------------------------------------------------


class Service:
    """The model, the batcher and the metrics of one app."""

    def __init__(self, model: Union[str, Path, Any], settings: ServeSettings, runtime: Optional[str]) -> None:
        from spacy_bert_ner.serve.metrics import ServiceMetrics

        self.settings = settings
        self.model = ServedPipeline(model, runtime)
        self.batcher = MicroBatcher(
            self.model,
            settings.max_batch_documents,
            settings.max_batch_words,
            settings.max_wait_ms,
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
            raise ApiError(
                429,
                "queue_full",
                str(full),
                headers={"Retry-After": str(full.retry_after)},
                limit="max_queue_documents",
                value=full.limit,
            ) from None
        except asyncio.TimeoutError:
            raise ApiError(
                504,
                "timeout",
                f"not answered within {settings.request_timeout_s} s",
                limit="request_timeout_s",
                value=settings.request_timeout_s,
            ) from None
        except Closed as closed:
            failure = self.failure()
            if failure is not None:
                raise ApiError(503, "model_failed", failure) from None
            raise ApiError(503, "shutting_down", str(closed)) from None
        except DocumentFailed as failed:
            raise ApiError(
                500, "model_error", f"documents[{failed.index}]: the model failed: {failed.error}", document=failed.index
            ) from None
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
            path = path[len(root) :]
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
            body = await read_body(_body_chunks(receive), length, self.service.settings.max_request_bytes)
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
        return JSONResponse(
            {"error": {"code": code, "message": str(error.detail)}},
            status_code=error.status_code,
            headers=getattr(error, "headers", None),
        )

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
