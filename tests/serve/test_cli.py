"""``spacy-bert-ner serve``: a real process on a loopback port, stopped by SIGTERM
after answering; its options' defaults are the settings' defaults."""

import inspect
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import fields

import httpx

from spacy_bert_ner.cli.serve import serve_cli
from spacy_bert_ner.serve import ServeSettings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_runs_answers_and_stops_on_sigterm(serve_model):
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "spacy_bert_ner", "serve", str(serve_model), "--port", str(port), "--log-level", "info"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "the service did not become ready"
            try:
                if httpx.get(url + "/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        response = httpx.post(url + "/v1/ner", json={"documents": [{"id": "x", "text": "anna works at acme ."}]})
        assert response.status_code == 200 and response.json()["documents"][0]["id"] == "x"
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal: the exit is SIGTERM's
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)
        output = process.stdout.read()
        assert "Application shutdown complete" in output and "Traceback" not in output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_refuses_a_missing_model_with_a_message(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "spacy_bert_ner", "serve", str(tmp_path / "nope")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert "no such pipeline directory or installed package" in result.stdout + result.stderr


def test_every_setting_is_an_option_with_the_same_default():
    defaults = ServeSettings()
    parameters = inspect.signature(serve_cli).parameters
    for field in fields(ServeSettings):
        assert parameters[field.name].default.default == getattr(defaults, field.name), field.name
