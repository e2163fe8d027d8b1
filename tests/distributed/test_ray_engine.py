"""Batch annotation on a local Ray cluster (loopback, 2 CPUs, no dashboard, a small object store):
the same rows as the local engine, bad records reported, and no record lost or doubled when a worker dies."""

import json
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import spacy

from spacy_bert_ner.formats.records import expand_inputs
from spacy_bert_ner.inference.annotate import annotate_local, read_output

from ..inference.test_annotate import expected_ids, write_corpus

ray = pytest.importorskip("ray") if not os.environ.get("CI") else __import__("ray")


@pytest.fixture(scope="module")
def cluster():
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=100 * 1024 * 1024,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )  # loopback only
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def bert_ner_model(two_runs):
    return two_runs[0]


def _rows(folder):
    return sorted((r["id"], r["status"], r["start_char"], r["end_char"], r["label"], r["error"]) for r in read_output(folder))


def test_ray_gives_the_local_rows(cluster, bert_ner_model, tmp_path):
    from spacy_bert_ner.distributed.ray_engine import annotate_ray

    files = expand_inputs(write_corpus(tmp_path / "in"))
    annotate_local(spacy.load(bert_ner_model), files, tmp_path / "local")
    # 2 actors of half a CPU each leave the cluster's second CPU to the reading and writing tasks
    stats = annotate_ray(str(bert_ner_model), files, tmp_path / "ray", workers=2, cpus_per_worker=0.5)
    assert _rows(tmp_path / "ray") == _rows(tmp_path / "local")
    assert stats.documents == len(expected_ids()) and stats.errors == 4
    ids = Counter(r["id"] for r in read_output(tmp_path / "ray") if r["status"] != "entity")
    assert ids["a2"] == 1  # the empty document has its row
    assert {"no-text", "number", "a.jsonl:6", "a.jsonl:10"} <= set(ids)


def test_ray_writes_json_lines_too(cluster, bert_ner_model, tmp_path):
    from spacy_bert_ner.distributed.ray_engine import annotate_ray

    files = expand_inputs(write_corpus(tmp_path / "in"))
    annotate_ray(str(bert_ner_model), files, tmp_path / "out", fmt="jsonl", workers=1, cpus_per_worker=1)
    parts = [p for p in (tmp_path / "out").iterdir() if p.suffix == ".json"]
    assert parts and all(json.loads(line) for p in parts for line in p.read_text().splitlines())
    assert sorted({r["id"] for r in read_output(tmp_path / "out")}) == sorted(expected_ids())


def _annotator_pids():
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if b"RayAnnotator" in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                pass
    return pids


def test_a_worker_killed_mid_run_loses_and_doubles_nothing(cluster, bert_ner_model, tmp_path):
    from spacy_bert_ner.distributed.ray_engine import annotate_ray

    folder = tmp_path / "in"
    folder.mkdir()
    ids = []
    for f in range(4):
        with (folder / f"part{f}.jsonl").open("w") as out:
            for k in range(1500):
                ids.append(f"{f}-{k}")
                out.write(json.dumps({"id": ids[-1], "text": f"anna works at acme in paris number {k} ."}) + "\n")
    result = {}
    run = threading.Thread(
        target=lambda: result.update(
            stats=annotate_ray(
                str(bert_ner_model), expand_inputs(folder), tmp_path / "out", workers=2, cpus_per_worker=0.5, block_records=200
            )
        )
    )
    run.start()
    killed, seen = None, set()
    deadline = time.time() + 240  # bounded; a loaded 2-core machine needs more than 2 minutes
    while killed is None and time.time() < deadline and run.is_alive():
        pids = _annotator_pids()
        seen.update(pids)
        if pids:
            time.sleep(1.0)  # let it take a block
            killed = pids[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    assert killed is not None, "no annotator process was seen"
    while run.is_alive() and time.time() < deadline:
        seen.update(_annotator_pids())
        time.sleep(0.1)
    run.join(timeout=5)
    assert "stats" in result, "the job did not finish"
    rows = list(read_output(tmp_path / "out"))
    assert {r["id"] for r in rows} == set(ids)  # nothing lost
    # nothing doubled: a document annotated twice would repeat its rows
    repeated = Counter((r["id"], r["status"], r["start_char"], r["end_char"], r["label"]) for r in rows)
    assert max(repeated.values()) == 1
    assert result["stats"].documents == len(ids)
    assert len(seen) >= 3, seen  # the killed actor was replaced
