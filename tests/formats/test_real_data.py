"""The converters on the full real datasets (``$SPACY_BERT_NER_DATA``, ``../shared/data``).

These run in CI; a missing data folder fails there (see ``shared_data`` in conftest).
"""

import csv
import gzip
import io

import pytest
from typer.testing import CliRunner

from spacy_bert_ner.cli import app
from spacy_bert_ner.formats.convert import convert
from spacy_bert_ner.formats.docbin import read_docbin, write_conll

runner = CliRunner()


def test_wikiann_validation_counts_via_cli(shared_data, tmp_path):
    out = tmp_path / "out.spacy"
    result = runner.invoke(
        app, ["convert", str(shared_data / "wikiann-en" / "validation.tsv"), str(out), "--report", str(tmp_path / "r.json")]
    )
    assert result.exit_code == 0, result.output
    import srsly

    report = srsly.read_json(tmp_path / "r.json")
    assert report["sentences"] == 10000
    assert report["tokens"] == 80536
    assert sum(report["entities"].values()) == 14146
    assert report["entities"] == {"LOC": 4834, "ORG": 4677, "PER": 4635}
    assert report["repairs"] == 0


@pytest.mark.parametrize("split,n_sents,n_ents", [("train", 20000, 27931), ("validation", 10000, 14146), ("test", 10000, 13958)])
def test_wikiann_export_gives_back_the_file(shared_data, tmp_path, split, n_sents, n_ents):
    src = shared_data / "wikiann-en" / f"{split}.tsv"
    report = convert(src, tmp_path / "x.spacy", n_sents=10)
    assert (report.sentences, sum(report.entities.values())) == (n_sents, n_ents)
    buf = io.StringIO()
    write_conll(read_docbin(tmp_path / "x.spacy"), buf)
    assert buf.getvalue().encode("utf8") == src.read_bytes()


def test_gmb_split_counts(shared_data, tmp_path):
    src = shared_data / "gmb-kaggle" / "ner_dataset.csv.gz"
    result = runner.invoke(
        app,
        [
            "convert",
            str(src),
            str(tmp_path / "gmb"),
            "--split",
            "0.8,0.1,0.1",
            "--seed",
            "0",
            "--report",
            str(tmp_path / "r.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    import srsly

    report = srsly.read_json(tmp_path / "r.json")
    assert report["sentences"] == 47959
    assert report["tokens"] == 1048575
    assert sum(report["entities"].values()) == 111891
    assert report["entities"]["geo"] == 37644 and report["entities"]["nat"] == 201
    assert [o["sentences"] for o in report["outputs"]] == [38367, 4796, 4796]
    for name in ("train", "dev", "test"):
        assert (tmp_path / "gmb" / f"{name}.spacy").exists()


def test_gmb_round_trip_every_token_and_tag(shared_data, tmp_path):
    src = shared_data / "gmb-kaggle" / "ner_dataset.csv.gz"
    convert(src, tmp_path / "gmb.spacy")
    exported = [(w, t) for doc in read_docbin(tmp_path / "gmb.spacy") for sent in [doc] for w, t in zip(*_sent(doc))]
    with gzip.open(src, "rt", encoding="cp1252", newline="") as f:
        rows = [(r[1], r[3]) for r in list(csv.reader(f))[1:]]
    assert len(exported) == len(rows) == 1048575
    assert exported == rows


def _sent(doc):
    from spacy_bert_ner.formats.docbin import doc_sentences

    words, tags = [], []
    for w, t in doc_sentences(doc):
        words += w
        tags += t
    return words, tags
