"""Helpers for the tests: toy data and config overrides (fixtures are in conftest.py)."""

import random
from pathlib import Path
from typing import List, Tuple

REPO = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO / "configs"


# --- a toy NER task that a tiny model can learn ---------------------------------

CITIES = ["paris", "london", "berlin", "madrid", "rome", "vienna"]
PEOPLE = ["anna", "boris", "carla", "david", "emma", "felix"]
ORGS = ["acme", "globex", "initech", "umbrella"]
TEMPLATES = [
    (["i", "live", "in", "{LOC}", "."], None),
    (["{PER}", "works", "at", "{ORG}", "."], None),
    (["{PER}", "visited", "{LOC}", "today"], None),
    (["the", "office", "of", "{ORG}", "is", "in", "{LOC}"], None),
    (["we", "met", "{PER}", "and", "{PER}", "yesterday"], None),
]


def toy_sentences(n: int, seed: int = 0) -> List[Tuple[List[str], List[str]]]:
    """Sentences with IOB2 tags: names from fixed lists in fixed templates."""
    rng = random.Random(seed)
    pools = {"LOC": CITIES, "PER": PEOPLE, "ORG": ORGS}
    out = []
    for i in range(n):
        template, _ = TEMPLATES[i % len(TEMPLATES)]
        words, tags = [], []
        for w in template:
            if w.startswith("{"):
                label = w[1:-1]
                words.append(rng.choice(pools[label]))
                tags.append(f"B-{label}")
            else:
                words.append(w)
                tags.append("O")
        out.append((words, tags))
    return out


def write_conll(path: Path, sentences, sep: str = "\t") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "\n\n".join("\n".join(f"{w}{sep}{t}" for w, t in zip(ws, ts)) for ws, ts in sentences) + "\n", encoding="utf8"
    )
    return path


def tiny_overrides(tiny_bert: Path, corpus: Path, steps: int = 30) -> dict:
    """Config overrides that make ``configs/ner-cpu.cfg`` train in seconds on the toy data."""
    return {
        "paths.train": str(corpus / "train.spacy"),
        "paths.dev": str(corpus / "dev.spacy"),
        "paths.transformer": str(tiny_bert),
        "paths.train_log": str(corpus.parent / f"log-{corpus.name}.jsonl"),
        "training.optimizer.learn_rate.total_steps": steps,
        "training.optimizer.learn_rate.warmup_steps": 0,
        "training.optimizer.learn_rate.initial_rate": 0.003,
        "training.eval_frequency": max(1, steps // 2),
        "training.batcher.size": 200,
        "nlp.batch_size": 16,
    }


def train_bert_ner(tiny_bert: Path, corpus: Path, out: Path, steps: int = 20, **extra) -> Path:
    """Train transformer + bert_ner (``configs/bert-ner-cpu.cfg``) on the toy task; returns ``model-last``."""
    from spacy.cli.train import train

    overrides = tiny_overrides(tiny_bert, corpus, steps=steps)
    overrides["paths.train_log"] = str(out / "train-log.jsonl")
    overrides.update(extra)
    train(CONFIG_DIR / "bert-ner-cpu.cfg", out, overrides=overrides)
    return out / "model-last"
