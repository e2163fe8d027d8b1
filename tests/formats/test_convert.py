"""Converting to DocBin and exporting back: counts, grouping, splits, errors, CLI."""

import json

import pytest
import spacy
from typer.testing import CliRunner

from spacy_bert_ner.cli import app
from spacy_bert_ner.errors import InputError
from spacy_bert_ner.formats.convert import convert
from spacy_bert_ner.formats.docbin import read_docbin

from ..util import toy_sentences, write_conll

runner = CliRunner()


def test_convert_keeps_words_ents_and_sentences(tmp_path):
    src = write_conll(
        tmp_path / "a.tsv", [(["New", "York", "is", "big"], ["B-LOC", "I-LOC", "O", "O"]), (["Anna", "!"], ["B-PER", "O"])]
    )
    report = convert(src, tmp_path / "a.spacy")
    assert (report.sentences, report.tokens, report.entities, report.scheme) == (2, 6, {"LOC": 1, "PER": 1}, "IOB2")
    docs = list(read_docbin(tmp_path / "a.spacy"))
    assert [[t.text for t in d] for d in docs] == [["New", "York", "is", "big"], ["Anna", "!"]]
    assert [(e.text, e.label_) for e in docs[0].ents] == [("New York", "LOC")]
    assert len(list(docs[0].sents)) == 1


def test_output_files_get_the_usual_permissions(tmp_path):
    """Atomic writes go through mkstemp (owner-only); the result must not stay 0600."""
    import os
    import stat

    src = write_conll(tmp_path / "a.tsv", [(["Anna", "!"], ["B-PER", "O"])])
    old = os.umask(0o022)
    try:
        convert(src, tmp_path / "a.spacy")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.spacy").stat().st_mode) == 0o644
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_grouping_sentences_into_docs(tmp_path):
    src = write_conll(tmp_path / "a.tsv", toy_sentences(7))
    report = convert(src, tmp_path / "a.spacy", n_sents=3)
    assert report.parts[0].docs == 3
    docs = list(read_docbin(tmp_path / "a.spacy"))
    assert [len(list(d.sents)) for d in docs] == [3, 3, 1]


def test_grouping_by_document(tmp_path):
    src = tmp_path / "a.conll"
    src.write_text("-DOCSTART- O\n\na O\n\nb B-PER\n\n-DOCSTART- O\n\nc O\n", encoding="utf8")
    report = convert(src, tmp_path / "a.spacy", n_sents=0, by_document=True)
    docs = list(read_docbin(tmp_path / "a.spacy"))
    assert report.parts[0].docs == 2
    assert [d.text for d in docs] == ["a b", "c"]
    assert [len(list(d.sents)) for d in docs] == [2, 1]


def test_iob1_and_bilou_inputs_are_normalised(tmp_path):
    iob1 = write_conll(tmp_path / "iob1.tsv", [(["a", "b", "c", "d"], ["I-PER", "I-PER", "B-PER", "O"])])
    bilou = write_conll(tmp_path / "bilou.tsv", [(["a", "b", "c", "d"], ["B-PER", "L-PER", "U-PER", "O"])])
    for src in (iob1, bilou):
        convert(src, tmp_path / "x.spacy")
        doc = next(read_docbin(tmp_path / "x.spacy"))
        assert [(e.start, e.end, e.label_) for e in doc.ents] == [(0, 2, "PER"), (2, 3, "PER")]


def test_repairs_are_counted_and_strict_fails_with_line(tmp_path):
    src = write_conll(tmp_path / "a.tsv", [(["x", "y"], ["B-PER", "O"]), (["a", "b"], ["O", "I-LOC"])])
    report = convert(src, tmp_path / "a.spacy")
    assert len(report.repairs) == 1
    assert str(report.repairs[0]).startswith(f"{src}:5:")
    assert report.entities == {"LOC": 1, "PER": 1}
    with pytest.raises(InputError) as e:
        convert(src, tmp_path / "b.spacy", strict=True)
    assert e.value.line == 5
    assert not (tmp_path / "b.spacy").exists()


def test_unknown_tag_names_file_and_line_and_writes_nothing(tmp_path):
    src = tmp_path / "a.tsv"
    src.write_text("a\tO\nb\tB-PER\n\nc\tPERSON\n", encoding="utf8")
    with pytest.raises(InputError) as e:
        convert(src, tmp_path / "a.spacy")
    assert (e.value.path, e.value.line) == (str(src), 4)
    assert "unknown tag 'PERSON'" in str(e.value)
    assert not (tmp_path / "a.spacy").exists()


def test_split_is_deterministic_and_complete(tmp_path):
    src = write_conll(tmp_path / "a.tsv", toy_sentences(50))
    r1 = convert(src, tmp_path / "s1", split=(0.8, 0.1, 0.1), seed=3)
    convert(src, tmp_path / "s2", split=(0.8, 0.1, 0.1), seed=3)
    assert [p.sentences for p in r1.parts] == [40, 5, 5]
    for name in ("train", "dev", "test"):
        assert (tmp_path / "s1" / f"{name}.spacy").read_bytes() == (tmp_path / "s2" / f"{name}.spacy").read_bytes()
    texts = sorted(d.text for name in ("train", "dev", "test") for d in read_docbin(tmp_path / "s1" / f"{name}.spacy"))
    assert texts == sorted(" ".join(w) for w, _ in toy_sentences(50))
    convert(src, tmp_path / "s3", split=(0.8, 0.1, 0.1), seed=4)
    assert (tmp_path / "s3" / "dev.spacy").read_bytes() != (tmp_path / "s1" / "dev.spacy").read_bytes()


def test_export_round_trip_is_exact(tmp_path):
    sents = toy_sentences(20) + [(["Hello", "\u00a0", "wörld", "a b"], ["O", "O", "B-LOC", "I-LOC"])]
    src = write_conll(tmp_path / "a.tsv", sents)
    assert runner.invoke(app, ["convert", str(src), str(tmp_path / "a.spacy"), "-n", "4"]).exit_code == 0
    result = runner.invoke(app, ["export", str(tmp_path / "a.spacy"), str(tmp_path / "back.tsv")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "back.tsv").read_bytes() == src.read_bytes()


def test_export_text_is_what_distill_reads_as_unlabelled(tmp_path):
    import spacy

    from spacy_bert_ner.training.distillation import read_unlabelled

    sents = toy_sentences(12)
    src = write_conll(tmp_path / "a.tsv", sents)
    assert runner.invoke(app, ["convert", str(src), str(tmp_path / "a.spacy"), "-n", "4"]).exit_code == 0
    result = runner.invoke(app, ["export", str(tmp_path / "a.spacy"), str(tmp_path / "a.txt"), "--format", "text"])
    assert result.exit_code == 0, result.output
    assert "12 sentences" in result.output
    docs = list(read_unlabelled(tmp_path / "a.txt", spacy.blank("en")))
    assert [[t.text for t in d] for d in docs] == [words for words, _ in sents]
    assert all(not d.ents for d in docs)
    bad = runner.invoke(app, ["export", str(tmp_path / "a.spacy"), str(tmp_path / "b.txt"), "--format", "json"])
    assert bad.exit_code == 1 and "--format json: use conll or text" in bad.output


def test_cli_convert_reports_counts(tmp_path):
    src = write_conll(tmp_path / "a.tsv", toy_sentences(10))
    result = runner.invoke(app, ["convert", str(src), str(tmp_path / "a.spacy"), "--report", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert "10 sentences" in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["sentences"] == 10 and report["scheme"] == "IOB2"


def test_cli_bad_input_exits_non_zero_with_location(tmp_path):
    src = tmp_path / "bad.tsv"
    src.write_text("a\tO\nb\n", encoding="utf8")
    result = runner.invoke(app, ["convert", str(src), str(tmp_path / "a.spacy")])
    assert result.exit_code == 1
    assert f"{src}:2:" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "a.spacy").exists()


def test_cli_bad_split_argument(tmp_path):
    src = write_conll(tmp_path / "a.tsv", toy_sentences(10))
    result = runner.invoke(app, ["convert", str(src), str(tmp_path / "out"), "--split", "0.8,0.3"])
    assert result.exit_code == 1
    assert "sum to 1" in result.output


def test_hf_jsonl_cli_with_labels(tmp_path):
    src = tmp_path / "d.jsonl"
    src.write_text(json.dumps({"tokens": ["Anna", "sang"], "ner_tags": [1, 0]}) + "\n", encoding="utf8")
    result = runner.invoke(app, ["convert", str(src), str(tmp_path / "d.spacy"), "--labels", "O,B-PER,I-PER"])
    assert result.exit_code == 0, result.output
    doc = next(read_docbin(tmp_path / "d.spacy"))
    assert [(e.text, e.label_) for e in doc.ents] == [("Anna", "PER")]


def test_docbin_loads_in_spacy_corpus(tmp_path):
    from spacy.training import Corpus

    src = write_conll(tmp_path / "a.tsv", toy_sentences(5))
    convert(src, tmp_path / "a.spacy")
    examples = list(Corpus(tmp_path / "a.spacy")(spacy.blank("en")))
    assert len(examples) == 5
    assert all(len(ex.reference.ents) >= 1 for ex in examples)


@pytest.mark.parametrize(
    "text",
    ["-DOCSTART-\tO\n\n-DOCSTART-\tO\n\n", "\n-DOCSTART- -X- O O\n\n\n", "\n\n\n"],
    ids=["separators", "separators-and-blank-lines", "blank-lines"],
)
def test_a_file_without_sentences_is_an_error(tmp_path, text):
    src = tmp_path / "empty.conll"
    src.write_text(text, encoding="utf8")
    with pytest.raises(InputError) as e:
        convert(src, tmp_path / "out.spacy")
    assert e.value.path == str(src) and e.value.line is None
    assert not (tmp_path / "out.spacy").exists()
    result = runner.invoke(app, ["convert", str(src), str(tmp_path / "out.spacy")])
    assert result.exit_code == 1 and str(src) in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out.spacy").exists()


@pytest.mark.parametrize(
    "token,code,line",
    [("Ac\x00me", "U+0000", 3), ("Ac\x07me", "U+0007", 3), ("Acme\x1b", "U+001B", 3), ("Ac\x7fme", "U+007F", 3)],
)
def test_control_characters_in_a_token_name_file_line_and_character(tmp_path, token, code, line):
    src = tmp_path / "ctrl.tsv"
    src.write_text(f"Anna\tB-PER\nworks\tO\n{token}\tB-ORG\n\nBob\tB-PER\n", encoding="utf8")
    with pytest.raises(InputError) as e:
        convert(src, tmp_path / "out.spacy")
    assert (e.value.path, e.value.line) == (str(src), line)
    assert f"control character {code}" in e.value.message and "--strip-control" in e.value.message
    assert not (tmp_path / "out.spacy").exists()
    result = runner.invoke(app, ["convert", str(src), str(tmp_path / "out.spacy")])
    assert result.exit_code == 1 and f"{src}:{line}:" in result.output and code in result.output
    # with the option, they are removed and the rest is kept
    result = runner.invoke(app, ["convert", str(src), str(tmp_path / "out.spacy"), "--strip-control"])
    assert result.exit_code == 0, result.output
    docs = list(read_docbin(tmp_path / "out.spacy"))
    assert [t.text for t in docs[0]] == ["Anna", "works", "Acme"] and [(e.text, e.label_) for e in docs[0].ents][-1] == (
        "Acme",
        "ORG",
    )


def test_a_lone_surrogate_in_a_json_record_names_its_line(tmp_path):
    src = tmp_path / "d.jsonl"
    records = [{"tokens": ["Anna", "sang"], "ner_tags": ["B-PER", "O"]}, {"tokens": ["Bo\ud800b"], "ner_tags": ["B-PER"]}]
    src.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf8")  # json escapes the surrogate as \\ud800
    with pytest.raises(InputError) as e:
        convert(src, tmp_path / "d.spacy")
    assert (e.value.path, e.value.line) == (str(src), 2) and "U+D800" in e.value.message


def test_a_token_that_is_only_control_characters_stays_an_error_when_stripping(tmp_path):
    src = tmp_path / "ctrl.tsv"
    src.write_text("Anna\tB-PER\n\x00\x01\tO\n", encoding="utf8")
    with pytest.raises(InputError) as e:
        convert(src, tmp_path / "out.spacy", strip_control=True)
    assert e.value.line == 2 and "empty once its control characters are removed" in e.value.message
