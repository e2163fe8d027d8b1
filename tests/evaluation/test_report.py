"""`spacy-bert-ner report` and `plot-training`: error categories, confusion matrix, files."""

import builtins
import struct
from pathlib import Path

import pytest
import spacy
import srsly
from spacy.tokens import Doc, Span
from spacy.vocab import Vocab
from typer.testing import CliRunner

from spacy_bert_ner.cli import app
from spacy_bert_ner.errors import InputError, MissingDependency
from spacy_bert_ner.evaluation.errors import ERROR_TYPES, analyse, classify_entities
from spacy_bert_ner.evaluation.plots import plot_training
from spacy_bert_ner.evaluation.report import errors_html, write_report

WORDS = "anna smith visited new york and met acme corp people in paris".split()


def _doc(vocab: Vocab, ents) -> Doc:
    doc = Doc(vocab, words=WORDS)
    doc.ents = [Span(doc, s, e, label=label) for s, e, label in ents]
    return doc


def _png_size(path: Path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def test_each_error_category():
    gold = [(0, 2, "PER"), (3, 5, "LOC"), (7, 9, "ORG"), (11, 12, "LOC")]
    pred = [
        (0, 2, "PER"),  # correct
        (3, 5, "ORG"),  # wrong_label
        (8, 9, "ORG"),  # wrong_boundary
        (9, 10, "PER"),  # spurious
    ]
    correct, errors = classify_entities(gold, pred)
    assert correct == [(0, 2, "PER")]
    assert errors == [
        ("wrong_label", (3, 5, "LOC"), (3, 5, "ORG")),
        ("wrong_boundary", (7, 9, "ORG"), (8, 9, "ORG")),
        ("spurious", None, (9, 10, "PER")),
        ("missed", (11, 12, "LOC"), None),
    ]
    _, errors = classify_entities([(3, 5, "LOC")], [(4, 6, "ORG")])
    assert errors == [("wrong_label_and_boundary", (3, 5, "LOC"), (4, 6, "ORG"))]


def test_pairs_are_one_to_one_best_first():
    # one prediction merging two gold entities pairs with the same-label one; the other is missed
    _, errors = classify_entities([(3, 4, "LOC"), (4, 5, "ORG")], [(3, 5, "ORG")])
    assert sorted(e[0] for e in errors) == ["missed", "wrong_boundary"]
    assert ("wrong_boundary", (4, 5, "ORG"), (3, 5, "ORG")) in errors
    # a gold entity split in two: one pair, one spurious
    _, errors = classify_entities([(3, 5, "LOC")], [(3, 4, "LOC"), (4, 5, "LOC")])
    assert sorted(e[0] for e in errors) == ["spurious", "wrong_boundary"]


def test_analyse_counts_and_confusion_add_up():
    vocab = Vocab()
    gold = [_doc(vocab, [(0, 2, "PER"), (3, 5, "LOC"), (7, 9, "ORG"), (11, 12, "LOC")]), _doc(vocab, [(0, 1, "PER")])]
    pred = [_doc(vocab, [(0, 2, "PER"), (3, 5, "ORG"), (8, 9, "ORG"), (9, 10, "PER")]), _doc(vocab, [(0, 1, "PER")])]
    a = analyse(gold, pred)
    assert a["errors"]["LOC"] == {
        "support": 2,
        "predicted": 0,
        "correct": 0,
        "missed": 1,
        "spurious": 0,
        "wrong_label": 1,
        "wrong_boundary": 0,
        "wrong_label_and_boundary": 0,
    }
    assert a["errors"]["PER"]["spurious"] == 1 and a["errors"]["PER"]["correct"] == 2
    assert a["errors"]["ORG"]["wrong_boundary"] == 1
    totals = a["error_totals"]
    paired = totals["wrong_label"] + totals["wrong_boundary"] + totals["wrong_label_and_boundary"]
    assert totals["support"] == totals["correct"] + totals["missed"] + paired
    assert totals["predicted"] == totals["correct"] + totals["spurious"] + paired
    labels, matrix = a["confusion"]["labels"], a["confusion"]["matrix"]
    assert labels == ["LOC", "ORG", "PER", "O"]
    cell = lambda g, p: matrix[labels.index(g)][labels.index(p)]  # noqa: E731
    assert cell("LOC", "ORG") == 1 and cell("LOC", "O") == 1 and cell("O", "PER") == 1
    assert cell("ORG", "ORG") == 1 and cell("PER", "PER") == 2
    assert sum(map(sum, matrix)) == totals["support"] + totals["spurious"]
    assert [d["doc"] for d in a["docs"]] == [0]
    assert a["scores"]["ents_per_type"]["PER"]["support"] == 2


def test_errors_html_shows_gold_and_predicted_with_displacy():
    vocab = Vocab()
    gold = [_doc(vocab, [(3, 5, "LOC")]), _doc(vocab, [])]
    pred = [_doc(vocab, [(3, 5, "ORG")]), _doc(vocab, [(0, 1, "PER<script>")])]
    page = errors_html(analyse(gold, pred), gold, pred, n=10)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count("<h4>Gold</h4>") == 2 and page.count("<h4>Predicted</h4>") == 2
    assert 'class="entities"' in page and "new york" in page
    assert "wrong_label" in page and "spurious" in page
    assert "<script>" not in page


def test_write_report_and_cli(trained_ner, toy_corpus, tmp_path):
    nlp = spacy.load(trained_ner)
    out = tmp_path / "report"
    a = write_report(nlp, toy_corpus / "test.spacy", out, n_examples=5)
    for name in ("report.json", "report.md", "errors.html", "f1_per_label.png", "errors_per_label.png", "confusion.png"):
        assert (out / name).is_file(), name
    width, height = _png_size(out / "confusion.png")
    assert width > 100 and height > 100
    saved = srsly.read_json(out / "report.json")
    assert set(saved["errors"]) == {"LOC", "ORG", "PER"}
    assert saved["scores"]["ents_f"] == a["scores"]["ents_f"]
    assert set(ERROR_TYPES) <= set(saved["error_totals"])
    md = (out / "report.md").read_text()
    assert "| **overall** |" in md and "wrong_label_and_boundary" in md and "![confusion](confusion.png)" in md

    cli_out = tmp_path / "cli"
    result = CliRunner().invoke(
        app, ["report", str(trained_ner), str(toy_corpus / "test.spacy"), str(cli_out), "--no-plots", "-n", "3"]
    )
    assert result.exit_code == 0, result.output
    assert (cli_out / "errors.html").is_file() and not (cli_out / "confusion.png").exists()
    result = CliRunner().invoke(app, ["report", str(trained_ner), str(tmp_path / "missing.spacy"), str(cli_out)])
    assert result.exit_code == 1 and "file not found" in _text(result)


def test_plot_training(tmp_path):
    log = tmp_path / "train-log.jsonl"
    srsly.write_jsonl(
        log,
        [
            {
                "step": 0,
                "epoch": 0,
                "words": 0,
                "seconds": 1,
                "score": 0.1,
                "losses": {"transformer": 5.0, "ner": 40.0},
                "scores": {"ents_p": 0.1, "ents_r": 0.2},
            },
            {
                "step": 50,
                "epoch": 1,
                "words": 900,
                "seconds": 9,
                "score": 0.6,
                "losses": {"transformer": 2.0, "ner": 10.0},
                "scores": {"ents_p": 0.6, "ents_r": 0.6},
            },
            {
                "step": 100,
                "epoch": 2,
                "words": 1800,
                "seconds": 17,
                "score": 0.7,
                "losses": {"transformer": 1.0, "ner": 0.0},
                "scores": {},
            },
        ],
    )
    png = plot_training(log, tmp_path / "plots" / "training.png")
    assert _png_size(png)[0] > 100
    result = CliRunner().invoke(app, ["plot-training", str(log), str(tmp_path / "t.png")])
    assert result.exit_code == 0, result.output
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(InputError, match="no records"):
        plot_training(empty, tmp_path / "x.png")
    result = CliRunner().invoke(app, ["plot-training", str(tmp_path / "nope.jsonl"), str(tmp_path / "x.png")])
    assert result.exit_code == 1 and "file not found" in _text(result)


def test_missing_matplotlib_gives_install_hint(monkeypatch, tmp_path):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    log = tmp_path / "log.jsonl"
    srsly.write_jsonl(log, [{"step": 0, "score": 0.5, "losses": {}}])
    with pytest.raises(MissingDependency, match=r"spacy-bert-ner\[report\]"):
        plot_training(log, tmp_path / "t.png")
    result = CliRunner().invoke(app, ["plot-training", str(log), str(tmp_path / "t.png")])
    assert result.exit_code == 1 and "spacy-bert-ner[report]" in _text(result)


def _text(result) -> str:
    """CLI output with wasabi's line wrapping undone."""
    return " ".join(result.output.split())
