"""Training speed and memory by batch size, with the batcher `spacy train` uses.

    python benchmarks/train_batch_size.py --sizes 200,400,800,1500 \\
        --output metrics/train-batch-size-cpu.json

The training sentences (WikiANN-en train, shuffled with a fixed seed) go through
``spacy.batch_by_padded.v1`` exactly as in the configs (``buffer`` 256), and each
padded size runs the same number of words of optimizer updates in its own child
process (so its peak memory is its own). Reported per size: words/s, real
words per update, updates per WikiANN epoch and peak RSS. This is what the
CPU recipe's batch size was chosen from: a smaller batch gives more updates per
epoch, and on this CPU it is not slower per word.
"""
import argparse
import os
import random
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_cpu import _load_sentences, _peak_rss_mb, in_child, init_training, write_result  # noqa: E402


def train_padded(config: str, backbone: str, sentences, size: int, words: int, threads: int, seed: int) -> Dict:
    from spacy.util import fix_random_seed, registry

    fix_random_seed(seed)
    nlp, examples, optimizer = init_training(config, backbone, sentences, threads)
    batcher = registry.batchers.get("spacy.batch_by_padded.v1")(size=size, buffer=256, discard_oversize=False, get_length=None)
    batches = iter(batcher(examples))
    for _ in range(2):  # warm-up
        nlp.update(next(batches), sgd=optimizer, drop=0.1)
    n_words = n_updates = 0
    start = time.perf_counter()
    for batch in batches:
        nlp.update(batch, sgd=optimizer, drop=0.1)
        n_words += sum(len(e.reference) for e in batch)
        n_updates += 1
        if n_words >= words:
            break
    seconds = time.perf_counter() - start
    return {
        "padded_size": size,
        "words_per_s": n_words / seconds,
        "seconds": seconds,
        "words": n_words,
        "updates": n_updates,
        "words_per_update": n_words / n_updates,
        "peak_rss_mb": _peak_rss_mb(),
    }


def main(argv: Sequence[str] = None) -> Dict:
    from spacy_bert_ner.architectures import EMBEDDED_MINILM
    from spacy_bert_ner.scoring import machine_description, today

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.environ.get("SPACY_BERT_NER_DATA", "../shared/data"))
    p.add_argument("--config", default="configs/bert-ner-cpu.cfg")
    p.add_argument("--backbone", default=EMBEDDED_MINILM)
    p.add_argument("--sizes", default="200,400,800,1500", help="batch_by_padded sizes to compare")
    p.add_argument("--words", type=int, default=12000, help="Words of timed updates per size")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", default="metrics/train-batch-size-cpu.json")
    args = p.parse_args(argv)

    train = _load_sentences(str(Path(args.data) / "wikiann-en" / "train.tsv"), 0)
    epoch_words = sum(len(ws) for ws, _ in train)
    random.Random(args.seed).shuffle(train)
    rows: List[Dict] = []
    print(f"{'padded size':>11} | {'words/update':>12} | {'updates/epoch':>13} | {'words/s':>7} | {'peak RSS MB':>11}")
    for size in sorted({int(s) for s in args.sizes.split(",")}):
        row = in_child(train_padded, args.config, args.backbone, train, size, args.words, args.threads, args.seed)
        row["updates_per_epoch"] = epoch_words / row["words_per_update"]
        rows.append(row)
        print(f"{size:>11} | {row['words_per_update']:>12.0f} | {row['updates_per_epoch']:>13.0f} | "
              f"{row['words_per_s']:>7.0f} | {row['peak_rss_mb']:>11.0f}", flush=True)
    return write_result(
        {
            "benchmark": "training words/s by batch_by_padded size (WikiANN-en train, shuffled)",
            "config": args.config,
            "transformer": args.backbone,
            "threads": args.threads,
            "epoch_words": epoch_words,
            "rows": rows,
            "machine": machine_description(),
            "date": today(),
            "command": "python benchmarks/train_batch_size.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        },
        args.output,
    )


if __name__ == "__main__":
    main()
