"""Resident memory of training over time: our `spacy train` with and without
the memory-releasing callback, and a plain PyTorch fine-tune of the same
backbone, started together, each with one torch thread, sampled every
``--interval`` seconds from /proc.

    python benchmarks/train_memory.py --data ../shared/data --steps 600 --eval-frequency 200 \\
        --output metrics/train-memory.json

``ours-release`` is the default config (``spacy_bert_ner.release_memory.v1``
every 50 steps); ``ours-no-release`` sets its interval beyond the run;
``plain-pytorch`` is ``AutoModelForTokenClassification`` with AdamW on WikiANN
training sentences of at most 60 words, 40 per update (about the words of one
padded batch of 400), the same number of updates, no evaluation.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import header, write  # noqa: E402

PLAIN_LOOP = """
import sys
sys.path.insert(0, {bench!r})
from benchmark_cpu import train_hf
from data import train_sentences
from pathlib import Path
sentences = train_sentences(Path({data!r}), 60, 40, {steps})
print(train_hf({backbone!r}, sentences, 40, {steps}, 1))
"""


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (kB in /proc → MB)."""
    total = 0
    pids = [pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024.0


def main() -> Dict:
    from spacy_bert_ner.pipeline.transformer import EMBEDDED_MINILM, resolve_transformer_name

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.environ.get("SPACY_BERT_NER_DATA", "../shared/data"))
    p.add_argument(
        "--corpus", default=None, help="Folder with train.spacy and dev.spacy (default: converted from --data into a temp folder)"
    )
    p.add_argument("--config", default=str(REPO / "configs" / "bert-ner-cpu.cfg"))
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--eval-frequency", type=int, default=200)
    p.add_argument("--interval", type=float, default=2.0)
    p.add_argument("--output", default="metrics/train-memory.json")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="train-memory-"))
    corpus = Path(args.corpus) if args.corpus else work / "corpus"
    if not args.corpus:
        from spacy_bert_ner.formats.convert import convert

        convert(Path(args.data) / "wikiann-en" / "train.tsv", corpus / "train.spacy")
        convert(Path(args.data) / "wikiann-en" / "validation.tsv", corpus / "dev.spacy")
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    common = [
        "--paths.train",
        str(corpus / "train.spacy"),
        "--paths.dev",
        str(corpus / "dev.spacy"),
        "--training.optimizer.learn_rate.total_steps",
        str(args.steps),
        "--training.eval_frequency",
        str(args.eval_frequency),
    ]
    commands = {
        "ours-release": [
            sys.executable,
            "-m",
            "spacy",
            "train",
            args.config,
            "--output",
            str(work / "a"),
            *common,
            "--paths.train_log",
            str(work / "a.jsonl"),
        ],
        "ours-no-release": [
            sys.executable,
            "-m",
            "spacy",
            "train",
            args.config,
            "--output",
            str(work / "b"),
            *common,
            "--paths.train_log",
            str(work / "b.jsonl"),
            "--training.before_update.every",
            str(10 * args.steps),
        ],
        "plain-pytorch": [
            sys.executable,
            "-c",
            PLAIN_LOOP.format(
                bench=str(REPO / "benchmarks"),
                data=args.data,
                backbone=resolve_transformer_name(EMBEDDED_MINILM),
                steps=args.steps,
            ),
        ],
    }
    procs = {
        name: subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(work / f"{name}.log", "w"))
        for name, cmd in commands.items()
    }
    start = time.time()
    series: Dict[str, List] = {name: [] for name in procs}
    while any(proc.poll() is None for proc in procs.values()):
        now = round(time.time() - start, 1)
        for name, proc in procs.items():
            if proc.poll() is None:
                series[name].append([now, round(rss_mb(proc.pid), 1)])
        time.sleep(args.interval)
    results = {}
    for name, proc in procs.items():
        if proc.returncode != 0:
            raise RuntimeError(f"{name} failed: {(work / f'{name}.log').read_text()[-3000:]}")
        values = [v for _, v in series[name]]
        results[name] = {
            "peak_rss_mb": max(values),
            "last_rss_mb": values[-1],
            "seconds": series[name][-1][0],
            "series": series[name],
        }
        print(f"{name:16s} peak {max(values):7.0f} MB, at the end {values[-1]:7.0f} MB, {series[name][-1][0]:.0f} s", flush=True)
    plain = results["plain-pytorch"]["peak_rss_mb"]
    result = {
        "runs": results,
        "peak_vs_plain_pytorch": {name: results[name]["peak_rss_mb"] / plain for name in ("ours-release", "ours-no-release")},
        "steps": args.steps,
        "eval_frequency": args.eval_frequency,
        "threads_per_process": 1,
        "config": args.config,
    }
    print(json.dumps(result["peak_vs_plain_pytorch"]))
    return write({**header("train_memory", None), **result}, args.output)


if __name__ == "__main__":
    main()
