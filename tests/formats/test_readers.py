"""Readers: every format on tiny hand-written files, and every bad-input case."""

import gzip
import json

import pytest

from spacy_bert_ner.errors import InputError
from spacy_bert_ner.formats.read import detect_format, read_sentences


def test_conll_tab_separated_with_docstart(tmp_path):
    p = tmp_path / "a.conll"
    p.write_text(
        "-DOCSTART- -X- -X- O\n\nEU\tNNP\tB-NP\tB-ORG\nrejects\tVBZ\tB-VP\tO\n\nPeter\tNNP\tB-NP\tB-PER\n\n-DOCSTART- -X- -X- O\n\nBonn\tNNP\tB-NP\tB-LOC\n",
        encoding="utf8",
    )
    sents = list(read_sentences(p))
    assert [s.words for s in sents] == [["EU", "rejects"], ["Peter"], ["Bonn"]]
    assert [s.tags for s in sents] == [["B-ORG", "O"], ["B-PER"], ["B-LOC"]]
    assert [s.doc_id for s in sents] == ["doc0", "doc0", "doc1"]
    assert sents[0].lines == [3, 4]


def test_conll_space_separated_and_crlf(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(b"New  B-LOC\r\nYork I-LOC\r\n\r\n\r\nis O\r\n")
    sents = list(read_sentences(p))
    assert [s.words for s in sents] == [["New", "York"], ["is"]]


def test_conll_tab_file_keeps_spaces_inside_tokens(tmp_path):
    p = tmp_path / "a.tsv"
    p.write_text("New York\tB-LOC\nis\tO\n", encoding="utf8")
    assert list(read_sentences(p))[0].words == ["New York", "is"]


def test_conll_gz(tmp_path):
    p = tmp_path / "a.tsv.gz"
    p.write_bytes(gzip.compress("a\tO\nb\tB-PER\n".encode("utf8")))
    assert list(read_sentences(p))[0].tags == ["O", "B-PER"]


@pytest.mark.parametrize(
    "text,line,fragment",
    [
        ("a\tO\nb\n", 2, "expected at least 2 columns"),
        ("a\tX\tO\nb\tO\n", 2, "found 2 columns, but line 1 has 3"),
        ("", None, "no tokens found"),
        ("\n\n", None, "no tokens found"),
    ],
)
def test_conll_bad_input(tmp_path, text, line, fragment):
    p = tmp_path / "bad.tsv"
    p.write_text(text, encoding="utf8")
    with pytest.raises(InputError) as e:
        list(read_sentences(p))
    assert e.value.line == line
    assert fragment in str(e.value)
    assert str(p) in str(e.value)


def test_conll_undecodable_bytes_name_the_line(tmp_path):
    p = tmp_path / "bad.tsv"
    p.write_bytes(b"a\tO\n\nb\tO\nd\xe9j\xe0\tO\n")
    with pytest.raises(InputError) as e:
        list(read_sentences(p))
    assert e.value.line == 4
    assert "utf-8" in str(e.value)
    # the right encoding reads it
    assert list(read_sentences(p, encoding="latin-1"))[1].words == ["b", "déjà"]


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        detect_format(tmp_path / "nope.tsv")


def test_hf_jsonl_integer_tags_wikiann(tmp_path):
    p = tmp_path / "wikiann.jsonl"
    recs = [
        {"tokens": ["R.H.", "Saunders"], "ner_tags": [3, 4], "langs": ["en", "en"], "spans": ["ORG: R.H. Saunders"]},
        {"tokens": ["Paris"], "ner_tags": [5], "langs": ["en"], "spans": ["LOC: Paris"]},
    ]
    p.write_text("\n".join(json.dumps(r) for r in recs) + "\n", encoding="utf8")
    sents = list(read_sentences(p))
    assert [s.tags for s in sents] == [["B-ORG", "I-ORG"], ["B-LOC"]]
    assert sents[1].lines == [2]


def test_hf_json_array_string_tags_and_labels_option(tmp_path):
    p = tmp_path / "d.json"
    p.write_text(
        json.dumps([{"tokens": ["a", "b"], "ner_tags": ["B-X", "I-X"]}, {"tokens": ["c"], "ner_tags": [1]}], indent=2),
        encoding="utf8",
    )
    sents = list(read_sentences(p, label_names=["O", "B-Y"]))
    assert [s.tags for s in sents] == [["B-X", "I-X"], ["B-Y"]]


def test_hf_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    p = tmp_path / "d.parquet"
    table = pa.table({"tokens": [["Anna", "ran"], ["Bonn"]], "ner_tags": [[1, 0], [5]], "langs": [["en", "en"], ["en"]]})
    pq.write_table(table, p)
    assert [s.tags for s in read_sentences(p)] == [["B-PER", "O"], ["B-LOC"]]


@pytest.mark.parametrize(
    "line,fragment",
    [
        ('{"tokens": ["a"], "ner_tags": [0, 1]}', "1 tokens but 2 tags"),
        ('{"tokens": ["a"]}', "no 'ner_tags'"),
        ('{"tokens": ["a"], "ner_tags": [3]}', "integer tags need label names"),
        ('{"tokens": [""], "ner_tags": ["O"]}', "non-empty string"),
        ('{"tokens": ["a"], "ner_tags": ["O"]', "invalid JSON"),
        ('["a", "O"]', "expected an object"),
    ],
)
def test_hf_bad_records(tmp_path, line, fragment):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"tokens": ["ok"], "ner_tags": ["O"]}\n' + line + "\n", encoding="utf8")
    with pytest.raises(InputError) as e:
        list(read_sentences(p))
    assert e.value.line == 2
    assert fragment in str(e.value)


def test_hf_tag_id_out_of_range(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"tokens": ["a"], "ner_tags": [9], "langs": ["en"]}\n', encoding="utf8")
    with pytest.raises(InputError, match="out of range"):
        list(read_sentences(p))


GMB_TEXT = (
    "Sentence #,Word,POS,Tag\r\n"
    "Sentence: 1,Thousands,NNS,O\r\n"
    ",of,IN,O\r\n"
    ",London,NNP,B-geo\r\n"
    'Sentence: 2,"5,000",CD,O\r\n'
    ',"""",``,O\r\n'
    ",Pr\xe9val\x85,NNP,B-per\r\n"
)


def test_gmb_csv_cp1252_quoting_and_forward_fill(tmp_path):
    p = tmp_path / "ner_dataset.csv"
    p.write_bytes(GMB_TEXT.encode("latin-1"))
    sents = list(read_sentences(p))
    assert [s.words for s in sents] == [["Thousands", "of", "London"], ["5,000", '"', "Préval…"]]
    assert [s.tags for s in sents] == [["O", "O", "B-geo"], ["O", "O", "B-per"]]
    assert sents[1].doc_id == "Sentence: 2"
    assert sents[1].lines == [5, 6, 7]


def test_gmb_gz(tmp_path):
    p = tmp_path / "ner_dataset.csv.gz"
    p.write_bytes(gzip.compress(GMB_TEXT.encode("latin-1")))
    assert len(list(read_sentences(p))) == 2


@pytest.mark.parametrize(
    "text,line,fragment",
    [
        ("Word,Tag\r\nx,O\r\n", 1, "expected the header"),
        ("Sentence #,Word,POS,Tag\r\n,a,DT,O\r\n", 2, "no 'Sentence #' value"),
        ("Sentence #,Word,POS,Tag\r\nSentence: 1,a,DT\r\n", 2, "expected 4 fields"),
        ("Sentence #,Word,POS,Tag\r\nSentence: 1,a,DT,O\r\n,,DT,O\r\n", 3, "empty word"),
        ("", None, "empty file"),
        ("Sentence #,Word,POS,Tag\r\n", None, "no data rows"),
    ],
)
def test_gmb_bad_input(tmp_path, text, line, fragment):
    p = tmp_path / "bad.csv"
    p.write_text(text, encoding="latin-1")
    with pytest.raises(InputError) as e:
        list(read_sentences(p))
    assert e.value.line == line
    assert fragment in str(e.value)


def test_gmb_undefined_cp1252_byte(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_bytes(b"Sentence #,Word,POS,Tag\r\nSentence: 1,a\x81,DT,O\r\n")
    with pytest.raises(InputError, match="cp1252"):
        list(read_sentences(p))


def test_gmb_zip_with_one_member(tmp_path):
    import zipfile

    p = tmp_path / "ner_dataset.csv.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("ner_dataset.csv", GMB_TEXT.encode("latin-1"))
    assert detect_format(p) == "gmb"
    assert len(list(read_sentences(p))) == 2
    bad = tmp_path / "two.csv.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("a.csv", "x")
        zf.writestr("b.csv", "y")
    with pytest.raises(InputError, match="one file"):
        list(read_sentences(bad))
