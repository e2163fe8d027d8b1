"""The error report of a trained pipeline on gold data: ``report.json``,
``report.md`` (scores, errors per label, confusion matrix, plots) and
``errors.html`` (the documents with the most errors, gold and predicted side
by side in displaCy). The error categories are defined in
:mod:`spacy_bert_ner.evaluation.errors`, the plots in
:mod:`spacy_bert_ner.evaluation.plots`."""

import html
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import srsly
from spacy.language import Language
from spacy.tokens import Doc

from spacy_bert_ner.errors import InputError
from spacy_bert_ner.evaluation.errors import ERROR_TYPES, analyse, confusion_table, error_table, worst_docs
from spacy_bert_ner.evaluation.plots import label_colors, plot_confusion, plot_errors, plot_f1, require_matplotlib
from spacy_bert_ner.evaluation.scoring import markdown_table


def report_markdown(analysis: Dict[str, Any], title: str, plots: Sequence[str] = ()) -> str:
    """The whole report as one Markdown page."""
    parts = [
        f"# {title}",
        "",
        markdown_table(analysis["scores"], title="Precision, recall and F1 (exact match, %)"),
        "### Errors per label",
        "",
        "Gold-side errors are counted under the gold label, `spurious` under the predicted label "
        "(see `spacy_bert_ner/evaluation/errors.py` for the categories).",
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
    from spacy_bert_ner.evaluation.evaluate import predict_gold_tokens
    from spacy_bert_ner.formats.docbin import read_docbin

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
