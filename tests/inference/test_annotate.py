"""Batch annotation with the local engine: records in, one row per entity (or per document) out, resumable."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import spacy
from typer.testing import CliRunner

from spacy_bert_ner.cli import app
from spacy_bert_ner.formats.records import expand_inputs, iter_records
from spacy_bert_ner.inference.annotate import annotate_local, annotate_records, read_output

TEXTS = ["anna works at acme .", "boris went to paris .", "", "the weather is nice", "emma visited berlin and globex ."]


def write_corpus(folder, texts=TEXTS):
    """A JSON Lines file with ids, bad lines and an empty text, and a Parquet file without ids."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"id": f"a{k}", "text": t}) for k, t in enumerate(texts)]
    lines += ["{not json", json.dumps({"id": "no-text"}), json.dumps({"id": "number", "text": 7}), ""]
    (folder / "a.jsonl").write_bytes(("\n".join(lines) + "\n").encode("utf8") + b'{"id": "bytes", "text": "caf\xff"}\n')
    pq.write_table(pa.table({"text": ["anna met boris .", "nothing here"]}), folder / "b.parquet")
    return folder


def expected_ids(texts=TEXTS):
    return [f"a{k}" for k in range(len(texts))] + ["a.jsonl:6", "no-text", "number", "a.jsonl:10", "b.parquet:1", "b.parquet:2"]


@pytest.fixture(scope="module")
def bert_ner_model(two_runs):
    return two_runs[0]


def test_records_ids_and_errors(tmp_path):
    files = expand_inputs(write_corpus(tmp_path / "in"))
    assert [p.name for p in files] == ["a.jsonl", "b.parquet"]
    records = list(iter_records(files))
    assert [r["id"] for r in records] == expected_ids()
    errors = {r["id"]: r["error"] for r in records if r["error"]}
    assert errors["a.jsonl:6"].startswith("invalid JSON") and errors["no-text"] == 'no "text"'
    assert errors["number"] == '"text" must be a string, got int' and "UTF-8" in errors["a.jsonl:10"]
    assert [p.name for p in expand_inputs(str(tmp_path / "in" / "*.parquet"))] == ["b.parquet"]
    with pytest.raises(ValueError, match="no such file or folder"):
        expand_inputs(tmp_path / "missing")


def test_rows_account_for_every_record_and_match_the_pipeline(bert_ner_model, tmp_path):
    nlp = spacy.load(bert_ner_model)
    records = list(iter_records(expand_inputs(write_corpus(tmp_path / "in"))))
    rows = annotate_records(nlp, records, batch_size=2)
    assert list(dict.fromkeys(r["id"] for r in rows)) == expected_ids()
    by_id = {}
    for row in rows:
        by_id.setdefault(row["id"], []).append(row)
    for k, text in enumerate(TEXTS):
        got = [(r["start_char"], r["end_char"], r["label"], r["text"]) for r in by_id[f"a{k}"] if r["status"] == "entity"]
        assert got == [(e.start_char, e.end_char, e.label_, e.text) for e in nlp(text).ents]
    assert by_id["a2"] == [
        {
            "id": "a2",
            "status": "no_entities",
            "start_char": None,
            "end_char": None,
            "label": None,
            "text": None,
            "confidence": None,
            "words": 0,
            "error": None,
        }
    ]
    assert all(r["status"] == "error" for r in by_id["no-text"] + by_id["number"] + by_id["a.jsonl:6"])
    assert any(r["confidence"] is not None for r in rows if r["status"] == "entity")


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_local_engine_writes_parts_and_resumes(bert_ner_model, tmp_path, fmt):
    nlp = spacy.load(bert_ner_model)
    texts = [f"anna works at acme number {k} ." for k in range(23)]
    files = expand_inputs(write_corpus(tmp_path / "in", texts))
    whole = tmp_path / "whole"
    stats = annotate_local(nlp, files, whole, fmt, chunk_records=10)
    assert stats.documents == len(expected_ids(texts)) and stats.errors == 4
    assert sorted(p.name for p in whole.iterdir() if p.name.startswith("part-")) == [f"part-0000{k}.{fmt}" for k in range(3)]
    out = tmp_path / "out"
    annotate_local(nlp, files, out, fmt, chunk_records=10)
    (out / f"part-00001.{fmt}").unlink()  # as if the run had died while annotating the second chunk
    (out / "_SUCCESS").unlink()
    resumed = annotate_local(nlp, files, out, fmt, chunk_records=10)
    assert resumed.resumed_documents == 10 + 9  # parts 0 and 2 (29 records in chunks of 10) were kept
    assert list(read_output(out)) == list(read_output(whole))
    for k in range(3):
        assert (out / f"part-0000{k}.{fmt}").read_bytes() == (whole / f"part-0000{k}.{fmt}").read_bytes()


def test_a_folder_of_something_else_is_refused(bert_ner_model, tmp_path):
    files = expand_inputs(write_corpus(tmp_path / "in"))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty and holds no resumable run"):
        annotate_local(spacy.load(bert_ner_model), files, tmp_path / "out")


def test_cli_local_and_a_missing_ray(bert_ner_model, tmp_path, monkeypatch):
    corpus = write_corpus(tmp_path / "in")
    result = CliRunner().invoke(app, ["annotate", str(bert_ner_model), str(corpus), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "11 documents" in output and "4 errors" in output
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    result = CliRunner().invoke(app, ["annotate", str(bert_ner_model), str(corpus), str(tmp_path / "out2"), "--engine", "ray"])
    assert result.exit_code == 1 and "pip install 'spacy-bert-ner[ray]'" in " ".join(result.output.split())


@pytest.mark.parametrize("option", [["--chunk", "5"], ["--no-resume"], ["--resume"]])
def test_ray_engine_refuses_the_local_only_options(bert_ner_model, tmp_path, option):
    corpus = write_corpus(tmp_path / "in")
    result = CliRunner().invoke(
        app, ["annotate", str(bert_ner_model), str(corpus), str(tmp_path / "out"), "--engine", "ray", *option]
    )
    assert result.exit_code == 1
    assert "--chunk and --resume/--no-resume are for --engine local" in result.output
    assert not (tmp_path / "out").exists()
