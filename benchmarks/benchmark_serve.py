"""Throughput and latency of the HTTP service against a naive endpoint, and
``predict``'s words/s on the same texts.

Three measurements, on the same WikiANN-en test sentences (one document per
request, the text of one sentence):

* ``predict``: :func:`spacy_bert_ner.inference.predict.predict_file` over the texts
  as a ``.txt`` file (batch 64, length-sorted buffers), in its own process;
* ``batched``: ``spacy-bert-ner serve MODEL`` with its default settings;
* ``model alone``: the service's model step (:class:`spacy_bert_ner.serve.pipeline.ServedPipeline`)
  in one process, over the texts shuffled and cut into micro-batches of as many
  documents as the most clients: what the service could reach without HTTP;
* ``naive``: a FastAPI app with one ``nlp(text)`` per request in a plain
  ``def`` endpoint (FastAPI runs it in its thread pool), the usual hand-written
  wrapper.

Each server is its own process with the same torch threads. Load comes from
this process: ``C`` concurrent clients, each a keep-alive HTTP/1.1 connection
that sends its next request when the last is answered (a closed loop), until a
fixed number of requests is done. Clients are raw asyncio streams so the load
generator takes little of the CPU it shares with the servers. Repeats are
interleaved (predict, then each server at each client count) and the median
repeat is reported; latency percentiles pool all repeats.

    python benchmarks/benchmark_serve.py MODEL --data ../shared/data --output metrics/benchmark-serve.json
"""

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Sequence

sys.path.insert(0, str(Path(__file__).parent))
from data import wikiann  # noqa: E402
from record import header, write  # noqa: E402

NAIVE_APP = """
import os, sys, torch, spacy
from fastapi import FastAPI
torch.set_num_threads(int(os.environ["BENCH_THREADS"]))
nlp = spacy.load(os.environ["BENCH_MODEL"])
app = FastAPI()

@app.get("/ready")
def ready():
    return {"status": "ready"}

@app.post("/v1/ner")
def ner(body: dict):
    out = []
    for document in body["documents"]:
        doc = nlp(document["text"])
        entities = [{"text": e.text, "label": e.label_, "start_char": e.start_char, "end_char": e.end_char,
                     "confidence": float(e._.confidence) if e._.confidence is not None else None} for e in doc.ents]
        out.append({**document, "entities": entities})
    return {"documents": out}
"""

PREDICT = """
import json, sys, time, torch
from spacy_bert_ner import runtime
from spacy_bert_ner.inference.predict import predict_file
torch.set_num_threads(int(sys.argv[4]))
nlp = runtime.load(sys.argv[1])
predict_file(nlp, sys.argv[2], sys.argv[3] + ".warm.jsonl", batch_size=64)  # warm-up
stats = predict_file(nlp, sys.argv[2], sys.argv[3], batch_size=64)
print(json.dumps({"words": stats.words, "documents": stats.records, "seconds": stats.seconds}))
"""

# The service's model step alone, in this process and thread: the texts in shuffled
# micro-batches of C documents, as C one-document clients give them, in length groups.
MICRO = """
import json, random, sys, time, torch
from spacy_bert_ner.serve.pipeline import ServedPipeline
torch.set_num_threads(int(sys.argv[3]))
model = ServedPipeline(sys.argv[1])
model.load()
texts = open(sys.argv[2], encoding="utf8").read().splitlines()
random.Random(0).shuffle(texts)
size = int(sys.argv[4])
start = time.perf_counter()
words = sum(n for i in range(0, len(texts), size) for _, n in model(texts[i:i + size]))
seconds = time.perf_counter() - start
print(json.dumps({"words": words, "documents": len(texts), "seconds": seconds}))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, process: subprocess.Popen, timeout: float = 300) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the server on port {port} did not become ready")


def start_server(kind: str, model: str, threads: int, workdir: Path, serve_args: Sequence[str] = ()) -> Dict:
    port = free_port()
    if Path(model).exists():  # the server runs in the work folder
        model = str(Path(model).resolve())
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "BENCH_THREADS": str(threads),
        "BENCH_MODEL": model,
        "PYTHONPATH": str(workdir),
    }
    if kind == "batched":
        command = [
            sys.executable,
            "-m",
            "spacy_bert_ner",
            "serve",
            model,
            "--port",
            str(port),
            "--threads",
            str(threads),
            "--log-level",
            "warning",
            *serve_args,
        ]
    else:
        (workdir / "naive_app.py").write_text(NAIVE_APP)
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "naive_app:app",
            "--port",
            str(port),
            "--host",
            "127.0.0.1",
            "--log-level",
            "warning",
        ]
    process = subprocess.Popen(command, env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, process)
    return {"kind": kind, "port": port, "process": process}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


async def _client(port: int, bodies: List[bytes], next_index, latencies: List[float], statuses: Dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            i = next_index()
            if i is None:
                return
            body = bodies[i]
            start = time.perf_counter()
            writer.write(
                b"POST /v1/ner HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            status = int(status_line.split()[1])
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


def load(port: int, bodies: List[bytes], clients: int, requests: int) -> Dict:
    """``requests`` requests (cycling over ``bodies``) from ``clients`` closed-loop clients."""
    counter = iter(range(requests))

    def next_index():
        i = next(counter, None)
        return None if i is None else i % len(bodies)

    latencies: List[float] = []
    statuses: Dict[int, int] = {}

    async def run() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(_client(port, bodies, next_index, latencies, statuses) for _ in range(clients)))
        return time.perf_counter() - start

    cpu = time.process_time()
    seconds = asyncio.run(run())
    return {"seconds": seconds, "latencies": latencies, "statuses": statuses, "client_cpu_seconds": time.process_time() - cpu}


def percentile(values: Sequence[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main(argv: Sequence[str] = None) -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("SPACY_BERT_NER_DATA", "../shared/data")))
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--requests", default="400,1500,2000", help="requests per repeat at each client count")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--serve-args", default="", help="more options for spacy-bert-ner serve, e.g. '--max-wait-ms 2'")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    import spacy

    sentences = wikiann(args.data, "test", args.sentences)
    texts = [" ".join(words) for words, _ in sentences]
    tokenizer = spacy.blank("en").tokenizer
    words = [len(tokenizer(t)) for t in texts]
    bodies = [json.dumps({"documents": [{"id": i, "text": t}]}).encode() for i, t in enumerate(texts)]
    clients = [int(c) for c in args.clients.split(",")]
    requests = dict(zip(clients, (int(r) for r in args.requests.split(","))))
    workdir = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    (workdir / "texts.txt").write_text("\n".join(texts) + "\n", encoding="utf8")

    servers = {
        kind: start_server(kind, args.model, args.threads, workdir, args.serve_args.split()) for kind in ("batched", "naive")
    }
    runs: Dict[str, List[Dict]] = {}
    try:
        for name, server in servers.items():  # warm-up
            load(server["port"], bodies, 8, 200)
        for repeat in range(args.repeats):
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
            out = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    PREDICT,
                    args.model,
                    str(workdir / "texts.txt"),
                    str(workdir / f"p{repeat}.jsonl"),
                    str(args.threads),
                ],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            p = json.loads(out.stdout.strip().splitlines()[-1])
            runs.setdefault("predict", []).append(
                {**p, "words_per_second": p["words"] / p["seconds"], "documents_per_second": p["documents"] / p["seconds"]}
            )
            print(f"repeat {repeat}: predict {p['words'] / p['seconds']:.0f} words/s", flush=True)
            out = subprocess.run(
                [sys.executable, "-c", MICRO, args.model, str(workdir / "texts.txt"), str(args.threads), str(max(clients))],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            p = json.loads(out.stdout.strip().splitlines()[-1])
            runs.setdefault("micro", []).append({**p, "words_per_second": p["words"] / p["seconds"]})
            print(
                f"repeat {repeat}: model alone on micro-batches of {max(clients)}: {p['words'] / p['seconds']:.0f} words/s",
                flush=True,
            )
            for c in clients:
                for name, server in servers.items():
                    n = requests[c]
                    r = load(server["port"], bodies, c, n)
                    sent_words = sum(words[i % len(bodies)] for i in range(n))
                    r.update(
                        requests=n,
                        words=sent_words,
                        words_per_second=sent_words / r["seconds"],
                        documents_per_second=n / r["seconds"],
                    )
                    runs.setdefault(f"{name}@{c}", []).append(r)
                    print(
                        f"repeat {repeat}: {name} {c} clients: {r['words_per_second']:.0f} words/s, {r['documents_per_second']:.0f} docs/s, "
                        f"statuses {r['statuses']}",
                        flush=True,
                    )
        peak = {name: rss_mb(server["process"].pid) for name, server in servers.items()}
    finally:
        for server in servers.values():
            server["process"].send_signal(signal.SIGTERM)
        for server in servers.values():
            try:
                server["process"].wait(60)
            except subprocess.TimeoutExpired:
                server["process"].kill()

    def median_run(items: List[Dict]) -> Dict:
        return sorted(items, key=lambda r: r["words_per_second"])[len(items) // 2]

    predict = median_run(runs["predict"])
    result = {
        **header("benchmark_serve", argv),
        "versions": _versions(),
        "model": args.model,
        "texts": {"source": "WikiANN-en test", "documents": len(texts), "words": sum(words)},
        "threads": args.threads,
        "repeats": args.repeats,
        "predict": {
            "words_per_second": predict["words_per_second"],
            "documents_per_second": predict["documents_per_second"],
            "all_words_per_second": [r["words_per_second"] for r in runs["predict"]],
        },
        "model_alone_on_micro_batches": {
            "documents_per_batch": max(clients),
            "words_per_second": median_run(runs["micro"])["words_per_second"],
            "all_words_per_second": [r["words_per_second"] for r in runs["micro"]],
        },
        "server_peak_rss_mb": peak,
        "levels": {},
    }
    for c in clients:
        level = {}
        for name in servers:
            items = runs[f"{name}@{c}"]
            m = median_run(items)
            latencies = [x for r in items for x in r["latencies"]]
            statuses: Dict[str, int] = {}
            for r in items:
                for k, v in r["statuses"].items():
                    statuses[str(k)] = statuses.get(str(k), 0) + v
            level[name] = {
                "requests": m["requests"],
                "words_per_second": m["words_per_second"],
                "documents_per_second": m["documents_per_second"],
                "all_words_per_second": [r["words_per_second"] for r in items],
                "latency_ms": {f"p{q}": 1000 * percentile(latencies, q) for q in (50, 95, 99)},
                "statuses": statuses,
                "client_cpu_seconds": m["client_cpu_seconds"],
                "seconds": m["seconds"],
            }
        level["batched_vs_naive"] = level["batched"]["words_per_second"] / level["naive"]["words_per_second"]
        level["batched_vs_predict"] = level["batched"]["words_per_second"] / result["predict"]["words_per_second"]
        result["levels"][str(c)] = level
    top = result["levels"][str(max(clients))]
    result["goals"] = {
        f"batched at {max(clients)} clients >= 0.8 x predict": top["batched_vs_predict"] >= 0.8,
        f"batched at {max(clients)} clients >= 3 x naive": top["batched_vs_naive"] >= 3.0,
    }
    print(json.dumps({k: v for k, v in result.items() if k != "versions"}, indent=2))
    write(result, args.output)
    return result


def _versions() -> Dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("spacy", "spacy-transformers", "torch", "fastapi", "uvicorn")}


if __name__ == "__main__":
    main()
