"""Mention replacement: copies keep the contexts and labels, vary the names, and are what distill reads."""

import random

import spacy
from typer.testing import CliRunner

from spacy_bert_ner.cli import app
from spacy_bert_ner.formats.convert import convert
from spacy_bert_ner.formats.docbin import read_docbin
from spacy_bert_ner.training.augment import augment_docbin, mention_pool, replace_mentions
from spacy_bert_ner.training.distillation import read_unlabelled

from ..util import write_conll

runner = CliRunner()

SENTENCES = [
    (["New", "York", "hired", "Anna", "."], ["B-LOC", "I-LOC", "O", "B-PER", "O"]),
    (["Bob", "left", "Paris"], ["B-PER", "O", "B-LOC"]),
    (["nothing", "here"], ["O", "O"]),
    (["Carla", "Maria", "Diaz", "of", "Acme"], ["B-PER", "I-PER", "I-PER", "O", "B-ORG"]),
]


def corpus(tmp_path):
    convert(write_conll(tmp_path / "a.tsv", SENTENCES), tmp_path / "a.spacy")
    return tmp_path / "a.spacy"


def test_replacement_keeps_context_and_label_and_changes_the_mention():
    sentence = (["New", "York", "hired", "Anna", "."], [(0, 2, "LOC"), (3, 4, "PER")])
    pool = {"LOC": [("New", "York"), ("Paris",)], "PER": [("Anna",), ("Carla", "Maria", "Diaz")]}
    for seed in range(5):
        words, spans = replace_mentions(sentence, pool, random.Random(seed))
        assert words == ["Paris", "hired", "Carla", "Maria", "Diaz", "."]
        assert spans == [(0, 1, "LOC"), (2, 5, "PER")]
    alone = replace_mentions((["Acme", "won"], [(0, 1, "ORG")]), {"ORG": [("Acme",)]}, random.Random(0))
    assert alone == (["Acme", "won"], [(0, 1, "ORG")])


def test_pool_has_each_distinct_mention_once():
    sentences = [(["a", "b", "a"], [(0, 1, "X"), (2, 3, "X")]), (["c", "d"], [(0, 2, "Y")])]
    assert mention_pool(sentences) == {"X": [("a",)], "Y": [("c", "d")]}


def test_spacy_output_has_gold_entities_from_the_pool(tmp_path):
    n, with_entities = augment_docbin(corpus(tmp_path), tmp_path / "aug.spacy", copies=2, seed=3)
    assert (n, with_entities) == (6, 3)
    docs = list(read_docbin(tmp_path / "aug.spacy"))
    assert len(docs) == 6
    pool = {("New York", "LOC"), ("Paris", "LOC"), ("Anna", "PER"), ("Bob", "PER"), ("Carla Maria Diaz", "PER"), ("Acme", "ORG")}
    assert all((e.text, e.label_) in pool for d in docs for e in d.ents)
    # the other LOC each time; PER never the original; the lone ORG stays
    assert docs[0][0].text == "Paris" and docs[1][-3:].text == "left New York" and docs[2][-2:].text == "of Acme"
    assert docs[0].ents[-1].text != "Anna" and docs[1].ents[0].text != "Bob"
    again = augment_docbin(corpus(tmp_path), tmp_path / "again.spacy", copies=2, seed=3)
    assert again == (n, with_entities)
    assert [d.text for d in read_docbin(tmp_path / "again.spacy")] == [d.text for d in docs]


def test_cli_writes_text_that_distill_reads(tmp_path):
    src = corpus(tmp_path)
    result = runner.invoke(app, ["augment", str(src), str(tmp_path / "aug.txt"), "--copies", "3", "--limit", "7"])
    assert result.exit_code == 0, result.output
    assert "7 sentences, from 3 with entities" in " ".join(result.output.split())
    docs = list(read_unlabelled(tmp_path / "aug.txt", spacy.blank("en")))
    assert len(docs) == 7 and all(not d.ents for d in docs)
    assert {d[-1].text for d in docs[0::3]} == {"."}


def test_cli_errors_name_the_file(tmp_path):
    missing = runner.invoke(app, ["augment", str(tmp_path / "no.spacy"), str(tmp_path / "o.txt")])
    assert missing.exit_code == 1 and "no.spacy: file not found" in missing.output
    plain = tmp_path / "p.spacy"
    convert(write_conll(tmp_path / "p.tsv", [(["a", "b"], ["O", "O"])]), plain)
    empty = runner.invoke(app, ["augment", str(plain), str(tmp_path / "o.txt")])
    assert empty.exit_code == 1 and "p.spacy: no sentence has entities" in empty.output
    zero = runner.invoke(app, ["augment", str(plain), str(tmp_path / "o.txt"), "--copies", "0"])
    assert zero.exit_code == 1 and "copies must be at least 1" in zero.output
