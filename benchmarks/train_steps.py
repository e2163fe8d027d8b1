"""Seconds per training step of a config under each ``frozen_layers`` setting.

    python benchmarks/train_steps.py --config configs/bert-ner-base-cpu.cfg \\
        --train corpus/gmb/train.spacy --frozen 0 6 9 --output metrics/train-steps.json

Every setting trains on the same batches: the config's own batcher over the
training corpus, in the corpus reader's order, ``--warmup`` batches untimed,
then ``--steps`` timed ``nlp.update`` calls (forward, backward and the
optimizer's step). Each measurement runs in a fresh process with ``--threads``
torch threads; the settings take turns, ``--repeats`` rounds, and the figure
is the median round's seconds per step. Nothing else should run on the
machine meanwhile.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import header, in_child, write  # noqa: E402


def time_steps(config_path: str, train: str, frozen_layers: int, warmup: int, steps: int, threads: int) -> Dict:
    """Build and initialize the pipeline, then time ``steps`` updates after ``warmup``."""
    import torch
    from spacy.training.initialize import init_nlp
    from spacy.util import load_config, registry, resolve_dot_names

    import spacy_bert_ner  # noqa: F401  (registers the architectures)

    torch.set_num_threads(threads)
    overrides = {
        "paths.train": train,
        "paths.dev": train,
        "corpora.dev.limit": 10,
        "components.transformer.model.frozen_layers": frozen_layers,
    }
    config = load_config(config_path, overrides=overrides, interpolate=False)
    nlp = init_nlp(config)
    resolved = nlp.config.interpolate()
    training = registry.resolve(resolved["training"])
    (corpus,) = resolve_dot_names(resolved, ["corpora.train"])
    optimizer = training["optimizer"]
    batches = training["batcher"](corpus(nlp))
    seconds: List[float] = []
    words = 0
    for i, batch in enumerate(batches):
        if i == warmup + steps:
            break
        start = time.perf_counter()
        nlp.update(batch, sgd=optimizer, drop=training["dropout"], losses={})
        if i >= warmup:
            seconds.append(time.perf_counter() - start)
            words += sum(len(eg.reference) for eg in batch)
    trainable = sum(p.numel() for p in nlp.get_pipe("transformer").model.transformer.parameters() if p.requires_grad)
    return {"seconds": sum(seconds), "steps": len(seconds), "words": words, "trainable_encoder_parameters": trainable}


def main(argv: Sequence[str] = None) -> Dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="configs/bert-ner-base-cpu.cfg")
    p.add_argument("--train", default="corpus/gmb/train.spacy")
    p.add_argument("--frozen", type=int, nargs="+", default=[0, 6, 9], help="frozen_layers settings to compare")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--output", default="metrics/train-steps.json")
    args = p.parse_args(argv)
    rounds: Dict[int, List[Dict]] = {n: [] for n in args.frozen}
    for r in range(args.repeats):
        for n in args.frozen:
            run = in_child(time_steps, args.config, args.train, n, args.warmup, args.steps, args.threads)
            rounds[n].append(run)
            print(f"round {r + 1}: frozen_layers {n}: {run['seconds'] / run['steps']:.3f} s/step", flush=True)
    results = []
    for n, runs in rounds.items():
        median = statistics.median(run["seconds"] for run in runs)
        results.append(
            {
                "frozen_layers": n,
                "trainable_encoder_parameters": runs[0]["trainable_encoder_parameters"],
                "seconds_per_step": round(median / runs[0]["steps"], 3),
                "words_per_s": round(runs[0]["words"] / median, 1),
                "rounds_seconds": [round(run["seconds"], 2) for run in runs],
            }
        )
    base = next((row for row in results if row["frozen_layers"] == 0), None)
    for row in results:
        if base:
            row["speedup"] = round(base["seconds_per_step"] / row["seconds_per_step"], 2)
        print(
            f"frozen_layers {row['frozen_layers']:>2}: {row['seconds_per_step']:.3f} s/step, "
            f"{row['words_per_s']:.0f} words/s, {row['trainable_encoder_parameters'] / 1e6:.1f}M trainable"
            + (f", {row['speedup']:.2f}x" if base else "")
        )
    result = {
        **header("train_steps", argv),
        "config": args.config,
        "train": args.train,
        "warmup": args.warmup,
        "steps": args.steps,
        "repeats": args.repeats,
        "threads": args.threads,
        "results": results,
    }
    return write(result, args.output)


if __name__ == "__main__":
    main()
