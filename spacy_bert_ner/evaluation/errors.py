"""Error analysis: predicted entities against gold ones, by error type and label.

Every predicted entity that is not exactly right, and every gold entity that
was not found exactly, falls in one of five categories:

* ``wrong_label``: same start and end as a gold entity, another label;
* ``wrong_boundary``: overlaps a gold entity of the same label, other boundaries;
* ``wrong_label_and_boundary``: overlaps a gold entity, other label and boundaries;
* ``missed``: a gold entity that no prediction overlaps;
* ``spurious``: a prediction that overlaps no gold entity.

The first three pair one gold entity with one prediction. Pairs are made
one-to-one, best first (same boundaries, then same label, then the largest
overlap), so a prediction that merges two gold entities pairs with one of
them and the other one counts as ``missed``; likewise a gold entity split in
two predictions leaves one of them ``spurious``. Gold-side categories are
counted under the gold label, ``spurious`` under the predicted label.

The entity-level confusion matrix counts every gold entity once (row: its
label) and every prediction once (column: its label), ``O`` standing for
"no entity": exact matches and the three paired categories are a (gold,
predicted) cell, so boundary errors of the right label lie on the diagonal
there; the exact scores are in the precision/recall/F1 table.

"""

from collections import Counter
from typing import Any, Dict, List, Optional, Sequence, Tuple

from spacy.tokens import Doc

from spacy_bert_ner.evaluation.scoring import Entity, doc_entities, score_docs

ERROR_TYPES = ("missed", "spurious", "wrong_label", "wrong_boundary", "wrong_label_and_boundary")
OUTSIDE = "O"


def _overlap(a: Entity, b: Entity) -> int:
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


def classify_entities(
    gold: Sequence[Entity], pred: Sequence[Entity]
) -> Tuple[List[Entity], List[Tuple[str, Optional[Entity], Optional[Entity]]]]:
    """Compare one Doc's entities. Returns ``(correct, errors)``, each error a
    ``(category, gold_entity or None, predicted_entity or None)``."""
    gold_set, pred_set = set(gold), set(pred)
    correct = sorted(gold_set & pred_set)
    gold_left = sorted(gold_set - pred_set)
    pred_left = sorted(pred_set - gold_set)
    candidates = []
    for g in gold_left:
        for p in pred_left:
            overlap = _overlap(g, p)
            if overlap:
                same_span = (g[0], g[1]) == (p[0], p[1])
                same_label = g[2] == p[2]
                # best first: same boundaries, then same label, then more overlap
                candidates.append(((not same_span, not same_label, -overlap, g, p), g, p))
    candidates.sort(key=lambda c: c[0])
    paired_gold: Dict[Entity, Entity] = {}
    paired_pred = set()
    for _, g, p in candidates:
        if g in paired_gold or p in paired_pred:
            continue
        paired_gold[g] = p
        paired_pred.add(p)
    errors: List[Tuple[str, Optional[Entity], Optional[Entity]]] = []
    for g in gold_left:
        p = paired_gold.get(g)
        if p is None:
            errors.append(("missed", g, None))
        elif (g[0], g[1]) == (p[0], p[1]):
            errors.append(("wrong_label", g, p))
        elif g[2] == p[2]:
            errors.append(("wrong_boundary", g, p))
        else:
            errors.append(("wrong_label_and_boundary", g, p))
    errors.extend(("spurious", None, p) for p in pred_left if p not in paired_pred)
    errors.sort(key=lambda e: (e[1] or e[2])[0])
    return correct, errors


def analyse(gold_docs: Sequence[Doc], pred_docs: Sequence[Doc]) -> Dict[str, Any]:
    """Scores, error counts per label, the confusion matrix and each Doc's errors.

    Returns a JSON-ready dict with ``scores`` (as :func:`score_docs`),
    ``errors`` ({label: {support, predicted, correct, <error types>}}),
    ``error_totals``, ``confusion`` ({labels, matrix}: rows gold, columns
    predicted, ``O`` last) and ``docs`` (the errors of every Doc that has
    some: index, error count, errors).
    """
    scores = score_docs(gold_docs, pred_docs)
    per_label: Dict[str, Counter] = {}
    confusion: Counter = Counter()
    docs = []

    def count(label: str, key: str) -> None:
        per_label.setdefault(label, Counter())[key] += 1

    for i, (g_doc, p_doc) in enumerate(zip(gold_docs, pred_docs)):
        gold, pred = doc_entities(g_doc), doc_entities(p_doc)
        for e in gold:
            count(e[2], "support")
        for e in pred:
            count(e[2], "predicted")
        correct, errors = classify_entities(gold, pred)
        for e in correct:
            count(e[2], "correct")
            confusion[e[2], e[2]] += 1
        for category, g, p in errors:
            count(g[2] if g else p[2], category)
            confusion[g[2] if g else OUTSIDE, p[2] if p else OUTSIDE] += 1
        if errors:
            docs.append(
                {
                    "doc": i,
                    "n_errors": len(errors),
                    "errors": [_error_json(g_doc, category, g, p) for category, g, p in errors],
                }
            )
    labels = sorted(per_label)
    keys = ("support", "predicted", "correct") + ERROR_TYPES
    errors_json = {label: {k: per_label[label][k] for k in keys} for label in labels}
    totals = {k: sum(c[k] for c in per_label.values()) for k in keys}
    axis = labels + [OUTSIDE]
    matrix = [[confusion[g, p] for p in axis] for g in axis]
    return {
        "scores": scores,
        "errors": errors_json,
        "error_totals": totals,
        "confusion": {"labels": axis, "matrix": matrix, "rows": "gold", "columns": "predicted"},
        "docs": docs,
    }


def _error_json(doc: Doc, category: str, gold: Optional[Entity], pred: Optional[Entity]) -> Dict[str, Any]:
    def ent(e: Optional[Entity]) -> Optional[Dict[str, Any]]:
        if e is None:
            return None
        return {"text": doc[e[0] : e[1]].text, "label": e[2], "start": e[0], "end": e[1]}

    return {"type": category, "gold": ent(gold), "predicted": ent(pred)}


def worst_docs(analysis: Dict[str, Any], n: int) -> List[Dict[str, Any]]:
    """The ``n`` Docs with the most errors (ties: the earlier Doc first)."""
    return sorted(analysis["docs"], key=lambda d: (-d["n_errors"], d["doc"]))[:n]


# --- tables ----------------------------------------------------------------------------------


def error_table(analysis: Dict[str, Any]) -> str:
    """The per-label error counts as a Markdown table."""
    header = ["label", "support", "predicted", "correct"] + list(ERROR_TYPES)
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    rows = sorted(analysis["errors"].items(), key=lambda kv: (-kv[1]["support"], kv[0]))
    rows.append(("**total**", analysis["error_totals"]))
    for label, counts in rows:
        lines.append("| " + " | ".join([label] + [str(counts[k]) for k in header[1:]]) + " |")
    return "\n".join(lines) + "\n"


def confusion_table(analysis: Dict[str, Any]) -> str:
    """The entity-level confusion matrix as a Markdown table (rows gold, columns predicted)."""
    labels = analysis["confusion"]["labels"]
    lines = ["| gold \\ predicted | " + " | ".join(labels) + " |", "| --- |" + " ---: |" * len(labels)]
    for label, row in zip(labels, analysis["confusion"]["matrix"]):
        lines.append(f"| {label} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"
