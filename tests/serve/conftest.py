"""Fixtures for the HTTP service: the tiny bert_ner model, a pipeline with a gate
that holds the model until a test opens it, and a uvicorn server on a loopback
port of its own that every test stops."""

import os
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import httpx
import pytest
import spacy
from spacy.language import Language

if not os.environ.get("CI"):
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    pytest.importorskip("prometheus_client")

# A pipe component that blocks while the gate is closed, so a test can queue requests
# before the model answers any; and that fails on a text holding "BOOM".
GATE = threading.Event()
GATE.set()


@Language.component("serve_test_gate")
def serve_test_gate(doc):
    if not GATE.wait(timeout=60):
        raise TimeoutError("the test never opened the gate")
    if "BOOM" in doc.text:
        raise RuntimeError("the test component failed on purpose")
    return doc


@pytest.fixture(scope="session")
def serve_model(two_runs):
    """A trained tiny transformer + bert_ner pipeline (entities with confidences)."""
    return two_runs[0]


@pytest.fixture
def gate():
    """The gate, open; tests close it with ``gate.clear()``. Always opened again."""
    GATE.set()
    yield GATE
    GATE.set()


@pytest.fixture
def gated_nlp(serve_model, gate):
    nlp = spacy.load(serve_model)
    nlp.add_pipe("serve_test_gate", last=True)
    return nlp


@dataclass
class Running:
    url: str
    server: Any
    app: Any

    @property
    def service(self):
        return self.app.state.service

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=kwargs.pop("timeout", 30), **kwargs)


@contextmanager
def running(app, wait_ready: bool = True, graceful_s: int = 30) -> Iterator[Running]:
    """``app`` served by uvicorn on 127.0.0.1 (a free port) in a thread; stopped on exit."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=graceful_s))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        run = Running(f"http://127.0.0.1:{port}", server, app)
        if wait_ready:
            with run.client() as client:
                while client.get("/ready").status_code != 200:
                    assert time.monotonic() < deadline, "the model did not become ready"
                    time.sleep(0.05)
        yield run
    finally:
        GATE.set()  # a test that failed with the gate closed must not hold the server
        server.should_exit = True
        thread.join(60)
        sock.close()
        assert not thread.is_alive(), "the server did not stop"


def wait_until(condition, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
