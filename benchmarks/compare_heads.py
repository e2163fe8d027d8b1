"""Speed of the two NER heads on the same backbone: spaCy's transition-based
``ner`` against our token-classification ``bert_ner``.

    python benchmarks/compare_heads.py \\
        --model ner=training/exp-gmb-ner/model-best \\
        --model bert_ner=training/exp-gmb-bert-ner/model-best \\
        --output metrics/heads-cpu.json

For each trained pipeline: inference words/s from words to entity spans
(``pipe_by_length``, as ``predict`` and ``evaluate`` run) on the WikiANN-en
and GMB test sentences, at one batch size. For each head's config: training
words/s of optimizer updates on identical batches of WikiANN train sentences.
Every measurement runs alone in its own child process (the helpers are those
of ``benchmark_cpu.py``), with the same number of torch threads. The quality
side of the comparison (test F1 at the same budget) comes from the
``test-metrics.json`` of each head's ``spacy project run all``; pass them with
``--metrics NAME=PATH`` to have them in the same output.
"""

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Dict, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchmark_cpu import infer_ours, train_ours  # noqa: E402
from data import train_sentences, wikiann  # noqa: E402
from record import header, in_child, write  # noqa: E402

CONFIGS = {"ner": "configs/ner-cpu.cfg", "bert_ner": "configs/bert-ner-cpu.cfg"}


def _pairs(values: Sequence[str], what: str) -> Dict[str, str]:
    out = {}
    for value in values:
        if "=" not in value:
            raise SystemExit(f"{what} must look like NAME=PATH, got {value!r}")
        name, path = value.split("=", 1)
        out[name] = path
    return out


def main(argv: Sequence[str] = None) -> Dict:
    from spacy_bert_ner.formats.gmb import read_gmb
    from spacy_bert_ner.pipeline.transformer import EMBEDDED_MINILM, resolve_transformer_name

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", default=[], help="HEAD=PIPELINE, e.g. ner=training/exp-gmb-ner/model-best")
    p.add_argument("--metrics", action="append", default=[], help="RUN=METRICS_JSON, test metrics to copy into the output")
    p.add_argument("--data", default=os.environ.get("SPACY_BERT_NER_DATA", "../shared/data"))
    p.add_argument("--backbone", default=EMBEDDED_MINILM)
    p.add_argument("--sentences", type=int, default=3000, help="Test sentences per dataset for inference")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--train-updates", type=int, default=30)
    p.add_argument("--train-batch", type=int, default=32)
    p.add_argument("--train-max-words", type=int, default=60)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--output", default="metrics/heads-cpu.json")
    args = p.parse_args(argv)

    models = _pairs(args.model, "--model")
    data = Path(args.data)
    backbone = resolve_transformer_name(args.backbone)
    test_sets = {"wikiann-en": wikiann(data, "test", args.sentences)}
    gmb = [(s.words, s.tags) for s in read_gmb(data / "gmb-kaggle" / "ner_dataset.csv.gz")]
    test_sets["gmb"] = gmb[-args.sentences :]  # the file's tail, as any fixed sample: speed does not depend on the split

    inference: Dict[str, Dict] = {}
    for head, model in models.items():
        inference[head] = {}
        for name, sentences in test_sets.items():
            r = in_child(infer_ours, model, sentences, args.batch_size, args.threads, True)
            inference[head][name] = r
            print(f"inference {head:8s} {name:10s}: {r['words_per_s']:7.0f} words/s ({r['peak_rss_mb']:.0f} MB peak)", flush=True)

    train = train_sentences(data, args.train_max_words, args.train_batch, args.train_updates)
    training: Dict[str, Dict] = {}
    for head in models:
        r = in_child(train_ours, CONFIGS[head], backbone, train, args.train_batch, args.train_updates, args.threads)
        training[head] = r
        print(f"training  {head:8s}: {r['words_per_s']:7.0f} words/s ({r['peak_rss_mb']:.0f} MB peak)", flush=True)

    metrics = {}
    for run, path in _pairs(args.metrics, "--metrics").items():
        m = json.loads(Path(path).read_text(encoding="utf8"))
        keep = ("ents_p", "ents_r", "ents_f", "ents_per_type", "config", "steps", "train_seconds", "date", "command")
        metrics[run] = {k: m.get(k) for k in keep}

    result = {
        "inference": inference,
        "training": training,
        "test_metrics": metrics,
        "models": models,
        "configs": {h: CONFIGS[h] for h in models},
        "batch_size": args.batch_size,
        "sentences": {k: len(v) for k, v in test_sets.items()},
        "train_updates": args.train_updates,
        "sentences_per_update": args.train_batch,
        "threads": args.threads,
    }
    return write({**header("compare_heads", argv), **result}, args.output)


if __name__ == "__main__":
    main()
