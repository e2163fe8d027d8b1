"""Entity-level precision, recall and F1, overall (micro) and per label.

An entity counts as correct only if its start, end and label all match, which
is what seqeval's default mode and conlleval compute for well-formed IOB2
sequences. Predictions and gold must share the same tokens.
"""

import datetime
import platform
from collections import Counter
from typing import Dict, Iterable, List, Sequence, Set, Tuple

from spacy.tokens import Doc

Entity = Tuple[int, int, str]


def _prf(tp: int, fp: int, fn: int) -> Dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"p": p, "r": r, "f": f}


def score_entities(pairs: Iterable[Tuple[Sequence[Entity], Sequence[Entity]]]) -> Dict:
    """Score ``(gold_entities, predicted_entities)`` pairs, one pair per sentence or Doc.

    Returns spaCy-style keys: ``ents_p``, ``ents_r``, ``ents_f`` (0–1) and
    ``ents_per_type`` ({label: {p, r, f, support, predicted}}), plus counts.
    """
    tp: Counter = Counter()
    fp: Counter = Counter()
    fn: Counter = Counter()
    for gold, pred in pairs:
        g: Set[Entity] = set(gold)
        p: Set[Entity] = set(pred)
        for e in p & g:
            tp[e[2]] += 1
        for e in p - g:
            fp[e[2]] += 1
        for e in g - p:
            fn[e[2]] += 1
    labels = sorted(set(tp) | set(fp) | set(fn))
    overall = _prf(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    per_type = {}
    for label in labels:
        scores = _prf(tp[label], fp[label], fn[label])
        scores["support"] = tp[label] + fn[label]
        scores["predicted"] = tp[label] + fp[label]
        per_type[label] = scores
    return {
        "ents_p": overall["p"],
        "ents_r": overall["r"],
        "ents_f": overall["f"],
        "ents_per_type": per_type,
        "n_gold": sum(tp.values()) + sum(fn.values()),
        "n_pred": sum(tp.values()) + sum(fp.values()),
        "n_correct": sum(tp.values()),
    }


def doc_entities(doc: Doc) -> List[Entity]:
    return [(e.start, e.end, e.label_) for e in doc.ents]


def score_docs(gold_docs: Sequence[Doc], pred_docs: Sequence[Doc]) -> Dict:
    if len(gold_docs) != len(pred_docs):
        raise ValueError(f"{len(gold_docs)} gold docs but {len(pred_docs)} predicted docs")
    pairs = []
    for i, (g, p) in enumerate(zip(gold_docs, pred_docs)):
        if [t.text for t in g] != [t.text for t in p]:
            raise ValueError(f"doc {i}: predicted tokens differ from the gold tokens")
        pairs.append((doc_entities(g), doc_entities(p)))
    return score_entities(pairs)


def markdown_table(scores: Dict, title: str = "") -> str:
    """A Markdown table: one row per label and a micro-average row, in percent."""
    lines = []
    if title:
        lines += [f"### {title}", ""]
    lines += ["| label | precision | recall | F1 | support |", "| --- | ---: | ---: | ---: | ---: |"]
    for label, s in sorted(scores["ents_per_type"].items(), key=lambda kv: -kv[1]["support"]):
        lines.append(f"| {label} | {100 * s['p']:.2f} | {100 * s['r']:.2f} | {100 * s['f']:.2f} | {s['support']} |")
    lines.append(
        f"| **overall** | **{100 * scores['ents_p']:.2f}** | **{100 * scores['ents_r']:.2f}** | "
        f"**{100 * scores['ents_f']:.2f}** | {scores['n_gold']} |"
    )
    return "\n".join(lines) + "\n"


def machine_description() -> str:
    import os

    import torch

    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
        + (f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU")
    )


def today() -> str:
    return datetime.date.today().isoformat()
