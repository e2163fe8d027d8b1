"""Batch annotation on one machine: the local engine against Ray Data with
1 actor x 2 CPUs and 2 actors x 1 CPU, on the same corpus and model.

    python benchmarks/benchmark_annotate.py --model training/wikiann-en/model-best \\
        --data ../shared/data --output metrics/benchmark-annotate.json

The corpus is the WikiANN-en training sentences (20,000, words joined by
spaces) as JSON Lines, split into 8 files. Each configuration runs in its own
process; the time is from the start of annotation (the model loaded in each
actor or in the process included, Ray's cluster start excluded, reported
apart) to the last part file written. Memory is the machine's used memory
above its level before the run (``MemTotal - MemAvailable``), sampled every
0.5 s, so it counts Ray's workers and object store too.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data import wikiann  # noqa: E402
from record import header, write  # noqa: E402

RUN = """
import json, sys, time, torch
from pathlib import Path
from spacy_bert_ner.formats.records import expand_inputs
engine, model, corpus, out, workers, cpus = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), float(sys.argv[6])
files = expand_inputs(corpus)
ray_start = 0.0
if engine == "local":
    import spacy
    from spacy_bert_ner.inference.annotate import annotate_local
    torch.set_num_threads(int(cpus))
    start = time.perf_counter()
    stats = annotate_local(spacy.load(model), files, Path(out))
    seconds = time.perf_counter() - start
else:
    import ray
    from spacy_bert_ner.distributed.ray_engine import annotate_ray
    t = time.perf_counter()
    ray.init(num_cpus=int(workers * cpus) + 1, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    ray_start = time.perf_counter() - t
    start = time.perf_counter()
    stats = annotate_ray(model, files, Path(out), workers=workers, cpus_per_worker=cpus)
    seconds = time.perf_counter() - start
    ray.shutdown()
print(json.dumps({"seconds": seconds, "ray_start_seconds": ray_start, "documents": stats.documents, "words": stats.words,
                  "entities": stats.entities, "errors": stats.errors}))
"""


def used_mb() -> float:
    info = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, value = line.split(":", 1)
        info[key] = int(value.split()[0])
    return (info["MemTotal"] - info["MemAvailable"]) / 1024.0


def run(engine: str, model: str, corpus: Path, out: Path, workers: int, cpus: float) -> Dict:
    base = used_mb()
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], used_mb())
            time.sleep(0.5)

    sampler = threading.Thread(target=sample)
    sampler.start()
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS=str(int(max(1, cpus))))
    try:
        result = subprocess.run(
            [sys.executable, "-c", RUN, engine, model, str(corpus), str(out), str(workers), str(cpus)],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
    finally:
        done.set()
        sampler.join()
    row = json.loads(result.stdout.strip().splitlines()[-1])
    row.update(words_per_s=row["words"] / row["seconds"], peak_used_mb_above_base=round(peak[0] - base, 1))
    return row


def main() -> Dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data", default=os.environ.get("SPACY_BERT_NER_DATA", "../shared/data"))
    p.add_argument("--sentences", type=int, default=20000)
    p.add_argument("--files", type=int, default=8)
    p.add_argument("--output", default="metrics/benchmark-annotate.json")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-annotate-"))
    corpus = work / "corpus"
    corpus.mkdir()
    sentences = wikiann(args.data, "train", args.sentences)
    handles = [(corpus / f"part{k}.jsonl").open("w") for k in range(args.files)]
    for i, (words, _) in enumerate(sentences):
        handles[i % args.files].write(json.dumps({"id": i, "text": " ".join(words)}) + "\n")
    for h in handles:
        h.close()
    rows = {}
    for name, engine, workers, cpus in (("local-2-threads", "local", 1, 2), ("ray-1x2", "ray", 1, 2), ("ray-2x1", "ray", 2, 1)):
        rows[name] = r = run(engine, args.model, corpus, work / name, workers, cpus)
        print(
            f"{name:16s} {r['seconds']:7.1f} s  {r['words_per_s']:7.0f} words/s  {r['documents']} docs  "
            f"+{r['peak_used_mb_above_base']:.0f} MB  (ray start {r['ray_start_seconds']:.1f} s)",
            flush=True,
        )
    local = rows["local-2-threads"]["seconds"]
    result = {
        "rows": rows,
        "ray_overhead_vs_local": {k: rows[k]["seconds"] / local - 1 for k in ("ray-1x2", "ray-2x1")},
        "sentences": len(sentences),
        "files": args.files,
        "model": args.model,
    }
    print(json.dumps(result["ray_overhead_vs_local"]))
    return write({**header("benchmark_annotate", None), **result}, args.output)


if __name__ == "__main__":
    main()
