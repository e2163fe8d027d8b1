"""Error analysis of a trained pipeline on gold data, and training curves.

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

Plots need matplotlib (``pip install 'spacy-bert-ner[report]'``), imported
only when a plot is drawn, and drawn with the Agg backend (no display).
"""
import html
import math
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import srsly
from spacy.language import Language
from spacy.tokens import Doc

from spacy_bert_ner.errors import InputError
from spacy_bert_ner.tools.scoring import Entity, doc_entities, markdown_table, score_docs

ERROR_TYPES = ("missed", "spurious", "wrong_label", "wrong_boundary", "wrong_label_and_boundary")
OUTSIDE = "O"
# Distinct, readable colours for displaCy and the plots, assigned to labels in sorted order.
PALETTE = [
    "#7aecec", "#feca74", "#aa9cfc", "#bfeeb7", "#ff9561", "#e4e7d2",
    "#c887fb", "#9cc9cc", "#ffeb80", "#ff8197", "#f0d0ff", "#bfe1d9",
]


class MissingDependency(ImportError):
    """An optional dependency that a feature needs is not installed."""


def _figure(width: float, height: float):
    """A matplotlib Figure drawn by the Agg backend, without pyplot's global state."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependency(
            "matplotlib is needed for the plots: pip install 'spacy-bert-ner[report]' "
            "(or 'pip install matplotlib')"
        ) from None
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def require_matplotlib() -> None:
    """Raise :class:`MissingDependency` with the install hint when matplotlib is missing."""
    _figure(1, 1)


# --- error analysis ----------------------------------------------------------------------

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
        return {"text": doc[e[0]:e[1]].text, "label": e[2], "start": e[0], "end": e[1]}

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


def report_markdown(analysis: Dict[str, Any], title: str, plots: Sequence[str] = ()) -> str:
    """The whole report as one Markdown page."""
    parts = [
        f"# {title}",
        "",
        markdown_table(analysis["scores"], title="Precision, recall and F1 (exact match, %)"),
        "### Errors per label",
        "",
        "Gold-side errors are counted under the gold label, `spurious` under the predicted label "
        "(see `spacy_bert_ner/report.py` for the categories).",
        "",
        error_table(analysis),
        "### Confusion matrix (entity level, overlapping entities paired, O = no entity)",
        "",
        confusion_table(analysis),
    ]
    if plots:
        parts += ["### Plots", ""] + [f"![{Path(p).stem}]({p})" for p in plots] + [""]
    parts += ["The documents with the most errors, gold and predicted side by side: [errors.html](errors.html)", ""]
    return "\n".join(parts)


# --- HTML with displaCy ------------------------------------------------------------------------

def label_colors(labels: Sequence[str]) -> Dict[str, str]:
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(sorted(labels))}


def _displacy(doc: Doc, colors: Dict[str, str]) -> str:
    from spacy import displacy

    # manual input: no warning for a Doc without entities; displaCy escapes the text, not the labels
    ents = [{"start": e.start_char, "end": e.end_char, "label": html.escape(e.label_)} for e in doc.ents]
    options = {"colors": {html.escape(label): color for label, color in colors.items()}}
    return displacy.render({"text": doc.text, "ents": ents}, style="ent", manual=True, page=False, jupyter=False, options=options)


def _describe(error: Dict[str, Any]) -> str:
    g, p = error["gold"], error["predicted"]

    def ent(e: Dict[str, Any]) -> str:
        return f"“{html.escape(e['text'])}” <b>{html.escape(e['label'])}</b>"

    if g is None:
        return f"predicted {ent(p)}, no gold entity there"
    if p is None:
        return f"gold {ent(g)} not found"
    return f"gold {ent(g)} &rarr; predicted {ent(p)}"


HTML_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em; color: #222; }
.pair { display: flex; gap: 1.5em; }
.pair > div { flex: 1; min-width: 0; border: 1px solid #ddd; border-radius: 6px; padding: 0.3em 1em; }
.pair h4 { margin: 0.4em 0; color: #555; }
.case { margin-bottom: 2.5em; }
.type { font-family: monospace; background: #f3f3f3; padding: 0 0.3em; border-radius: 3px; }
"""


def errors_html(
    analysis: Dict[str, Any],
    gold_docs: Sequence[Doc],
    pred_docs: Sequence[Doc],
    n: int = 30,
    title: str = "NER errors",
) -> str:
    """A standalone HTML page: the ``n`` Docs with the most errors, gold and predicted side by side."""
    labels = set(analysis["errors"])
    colors = label_colors(labels)
    cases = worst_docs(analysis, n)
    totals = analysis["error_totals"]
    summary = ", ".join(f"<span class='type'>{t}</span> {totals[t]}" for t in ERROR_TYPES)
    parts = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{HTML_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{len(analysis['docs'])} of {len(gold_docs)} documents have errors ({summary}). "
        f"The {len(cases)} with the most errors:</p>",
    ]
    for case in cases:
        i = case["doc"]
        items = "".join(f"<li><span class='type'>{e['type']}</span> {_describe(e)}</li>" for e in case["errors"])
        parts += [
            "<div class='case'>",
            f"<h3>Document {i} &middot; {case['n_errors']} error{'s' if case['n_errors'] != 1 else ''}</h3>",
            "<div class='pair'>",
            f"<div><h4>Gold</h4>{_displacy(gold_docs[i], colors)}</div>",
            f"<div><h4>Predicted</h4>{_displacy(pred_docs[i], colors)}</div>",
            "</div>",
            f"<ul>{items}</ul>",
            "</div>",
        ]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# --- plots ---------------------------------------------------------------------------------------

def plot_f1(analysis: Dict[str, Any], path: Union[str, Path]) -> Path:
    """Per-label precision, recall and F1 as grouped horizontal bars, support in the labels."""
    per_type = analysis["scores"]["ents_per_type"]
    labels = sorted(per_type, key=lambda label: per_type[label]["support"])
    fig = _figure(8, 1.2 + 0.6 * max(1, len(labels)))
    ax = fig.add_subplot(1, 1, 1)
    height = 0.26
    for k, (key, name) in enumerate((("p", "precision"), ("r", "recall"), ("f", "F1"))):
        ys = [j + (k - 1) * height for j in range(len(labels))]
        bars = ax.barh(ys, [100 * per_type[label][key] for label in labels], height=height, label=name)
        if key == "f":
            ax.bar_label(bars, fmt="%.1f", padding=2, fontsize=8)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels([f"{label} ({per_type[label]['support']})" for label in labels])
    ax.set_xlim(0, 105)
    ax.set_xlabel("%  (label (gold support))")
    overall = 100 * analysis["scores"]["ents_f"]
    ax.axvline(overall, color="#444", linestyle="--", linewidth=1, label=f"overall F1 {overall:.1f}")
    ax.set_title("Per-label scores (exact entity match)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_confusion(analysis: Dict[str, Any], path: Union[str, Path]) -> Path:
    """The entity-level confusion matrix as a heat map with the counts written in."""
    labels = analysis["confusion"]["labels"]
    matrix = analysis["confusion"]["matrix"]
    size = 2.5 + 0.7 * len(labels)
    fig = _figure(size + 1, size)
    ax = fig.add_subplot(1, 1, 1)
    # colour by the share of each gold row, so rare labels are as readable as frequent ones
    shares = [[v / (sum(row) or 1) for v in row] for row in matrix]
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for r, row in enumerate(matrix):
        for c, value in enumerate(row):
            if value:
                ax.text(c, r, str(value), ha="center", va="center", fontsize=9, color="white" if shares[r][c] > 0.5 else "black")
    ax.set_xticks(range(len(labels)))
    ax.set_xticklabels(labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title("Entity confusion (overlap-paired; O = no entity)")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the gold row")
    fig.tight_layout()
    return _save(fig, path)


def plot_errors(analysis: Dict[str, Any], path: Union[str, Path]) -> Path:
    """Error counts per label, one stacked bar per label."""
    errors = analysis["errors"]
    labels = sorted(errors, key=lambda label: errors[label]["support"])
    fig = _figure(8, 1.2 + 0.5 * max(1, len(labels)))
    ax = fig.add_subplot(1, 1, 1)
    left = [0] * len(labels)
    for k, kind in enumerate(ERROR_TYPES):
        values = [errors[label][kind] for label in labels]
        ax.barh(range(len(labels)), values, left=left, label=kind, color=PALETTE[k])
        left = [a + b for a, b in zip(left, values)]
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels)
    ax.set_xlabel("errors")
    ax.set_title("Errors per label")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: Union[str, Path]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def plot_training(log_path: Union[str, Path], output_path: Union[str, Path]) -> Path:
    """Dev score and the training losses against the step, from a ``train-log.jsonl``.

    The losses are those spaCy reports at each evaluation: summed over the
    steps since the previous evaluation.
    """
    log_path = Path(log_path)
    if not log_path.is_file():
        raise InputError(log_path, None, "file not found")
    records = []
    for line_no, record in enumerate(srsly.read_jsonl(log_path), start=1):
        if not isinstance(record, dict) or "step" not in record:
            raise InputError(log_path, line_no, "not a training-log record (no \"step\")")
        records.append(record)
    if not records:
        raise InputError(log_path, None, "no records: has training evaluated yet?")
    fig = _figure(8, 6)
    ax_score, ax_loss = fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2)
    scored = [r for r in records if isinstance(r.get("score"), (int, float))]
    steps = [r["step"] for r in scored]
    ax_score.plot(steps, [100 * r["score"] for r in scored], marker="o", label="dev score")
    for key in ("ents_p", "ents_r"):
        values = [(r["step"], r.get("scores", {}).get(key)) for r in scored]
        values = [(s, v) for s, v in values if isinstance(v, (int, float))]
        if values:
            ax_score.plot([s for s, _ in values], [100 * v for _, v in values], linestyle=":", label=f"dev {key}")
    if scored:
        best = max(scored, key=lambda r: r["score"])
        ax_score.annotate(
            f"best {100 * best['score']:.1f} @ {best['step']}",
            (best["step"], 100 * best["score"]),
            textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8,
        )
    ax_score.set_ylabel("dev score (%)")
    ax_score.margins(y=0.15)
    ax_score.set_title(f"Training: {log_path.name}")
    ax_score.grid(alpha=0.3)
    ax_score.legend(fontsize=8, loc="lower right")
    components = sorted({k for r in records for k in (r.get("losses") or {})})
    for name in components:
        points = [(r["step"], (r.get("losses") or {}).get(name)) for r in records]
        points = [(s, v) for s, v in points if isinstance(v, (int, float)) and math.isfinite(v)]
        ax_loss.plot([s for s, _ in points], [v for _, v in points], marker=".", label=f"{name} loss")
    if components and all(v > 0 for r in records for v in (r.get("losses") or {}).values() if isinstance(v, (int, float))):
        ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss (per evaluation interval)")
    ax_loss.grid(alpha=0.3)
    if components:
        ax_loss.legend(fontsize=8)
    ax_score.sharex(ax_loss)
    fig.tight_layout()
    return _save(fig, output_path)


# --- the report -------------------------------------------------------------------------------

def write_report(
    nlp: Language,
    data_path: Union[str, Path],
    output_dir: Union[str, Path],
    batch_size: int = 64,
    n_examples: int = 30,
    plots: bool = True,
    title: Optional[str] = None,
) -> Dict[str, Any]:
    """Predict on gold ``data_path`` (gold tokens) and write the report into ``output_dir``:

    ``report.json``, ``report.md``, ``errors.html`` and, with ``plots``,
    ``f1_per_label.png``, ``errors_per_label.png``, ``confusion.png``.
    Returns the analysis, with ``files`` (the paths written).
    """
    from spacy_bert_ner.formats.docbin import read_docbin
    from spacy_bert_ner.tools.evaluate import predict_gold_tokens

    data_path, output_dir = Path(data_path), Path(output_dir)
    if not data_path.is_file():
        raise InputError(data_path, None, "file not found")
    if plots:
        require_matplotlib()  # before the slow part
    gold = list(read_docbin(data_path, nlp.vocab))
    pred = predict_gold_tokens(nlp, gold, batch_size)
    analysis = analyse(gold, pred)
    title = title or f"NER report: {data_path}"
    output_dir.mkdir(parents=True, exist_ok=True)
    files = []
    plot_names: List[str] = []
    if plots:
        for name, draw in (
            ("f1_per_label.png", plot_f1),
            ("errors_per_label.png", plot_errors),
            ("confusion.png", plot_confusion),
        ):
            files.append(draw(analysis, output_dir / name))
            plot_names.append(name)
    (output_dir / "errors.html").write_text(errors_html(analysis, gold, pred, n=n_examples, title=title), encoding="utf8")
    (output_dir / "report.md").write_text(report_markdown(analysis, title, plot_names), encoding="utf8")
    saved = dict(analysis)
    saved["docs"] = worst_docs(analysis, n_examples)
    saved.update({"data": str(data_path), "n_docs": len(gold), "n_docs_with_errors": len(analysis["docs"])})
    srsly.write_json(output_dir / "report.json", saved)
    files += [output_dir / "errors.html", output_dir / "report.md", output_dir / "report.json"]
    analysis["files"] = [str(f) for f in files]
    return analysis
