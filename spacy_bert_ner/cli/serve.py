from typing import Optional

import typer
from wasabi import msg

from spacy_bert_ner.cli._util import RUNTIME_HELP, app, fail


def _check_model(model: str) -> None:
    from pathlib import Path

    from spacy.util import is_package

    if not Path(model).exists() and not is_package(model):
        raise ValueError(f"{model}: no such pipeline directory or installed package")


@app.command("serve")
def serve_cli(
    model: str = typer.Argument(..., help="Pipeline directory or installed package name (fixed for the life of the service)"),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; 0.0.0.0 exposes the service to the network"),
    port: int = typer.Option(8080, "--port", "-p", help="Port to bind"),
    runtime: Optional[str] = typer.Option(None, "--runtime", "-r", help=RUNTIME_HELP),
    threads: int = typer.Option(0, "--threads", help="Torch threads for the model (0: torch's default, one per core)"),
    max_documents: int = typer.Option(64, "--max-documents", help="Documents per request (413 above)"),
    max_characters: int = typer.Option(10_000, "--max-characters", help="Characters per document (422 above)"),
    max_request_bytes: int = typer.Option(1_048_576, "--max-request-bytes", help="Bytes per request body (413 above)"),
    max_queue_documents: int = typer.Option(
        1024, "--max-queue", help="Documents waiting for the model (429 with Retry-After above)"
    ),
    max_batch_documents: int = typer.Option(64, "--batch-documents", help="Documents per model batch, gathered across requests"),
    max_batch_words: int = typer.Option(4096, "--batch-words", help="Words per model batch"),
    max_wait_ms: float = typer.Option(5.0, "--max-wait-ms", help="How long a batch waits for more documents to join"),
    request_timeout_s: float = typer.Option(30.0, "--timeout", help="Seconds before a request gets 504"),
    shutdown_timeout_s: float = typer.Option(
        30.0, "--shutdown-timeout", min=0, help="On SIGTERM/SIGINT, seconds to finish the requests already accepted"
    ),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn's log level"),
) -> None:
    """Serve the model over HTTP: POST /v1/ner, GET /health, /ready, /info,
    /metrics, and a page to try it at /."""
    from spacy_bert_ner.serve import ServeSettings, create_app, require_serve

    try:
        require_serve()
        _check_model(model)
        settings = ServeSettings(
            max_documents=max_documents,
            max_characters=max_characters,
            max_request_bytes=max_request_bytes,
            max_queue_documents=max_queue_documents,
            max_batch_documents=max_batch_documents,
            max_batch_words=max_batch_words,
            max_wait_ms=max_wait_ms,
            request_timeout_s=request_timeout_s,
            shutdown_timeout_s=shutdown_timeout_s,
        )
        if runtime is not None:
            from spacy_bert_ner.runtime import require_runtime

            require_runtime(runtime)
    except (ImportError, ValueError) as error:
        fail(error)
    import uvicorn

    if threads > 0:
        import torch

        torch.set_num_threads(threads)
    msg.info(f"Serving {model} on http://{host}:{port} (the model loads in the background; GET /ready says when it is ready)")
    uvicorn.run(
        create_app(model, settings, runtime),
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=settings.shutdown_timeout_s,
        server_header=False,
    )
