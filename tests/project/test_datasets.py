"""Datasets of the user's own files: checked and recorded for the convert step."""

import pytest
import srsly

from spacy_bert_ner.project.datasets import record_own_files, sha256_of


def _files(tmp_path):
    files = {}
    for part in ("train", "dev", "test"):
        files[part] = tmp_path / f"{part}.conll"
        files[part].write_text(f"{part.title()} B-LOC\n\n", encoding="utf8")
    return files


def test_own_files_are_recorded_with_their_checksums(tmp_path):
    files = _files(tmp_path)
    manifest = record_own_files("conll", tmp_path / "assets", files)
    assert manifest == tmp_path / "assets" / "conll" / "files.json"
    recorded = srsly.read_json(manifest)
    assert recorded["dev"] == {"path": str(files["dev"]), "bytes": files["dev"].stat().st_size, "sha256": sha256_of(files["dev"])}
    before = manifest.read_text(encoding="utf8")
    files["train"].write_text("Paris B-LOC\n\n", encoding="utf8")
    record_own_files("conll", tmp_path / "assets", files)
    assert manifest.read_text(encoding="utf8") != before  # a changed file changes what convert depends on


def test_a_missing_own_file_is_named(tmp_path):
    files = _files(tmp_path)
    files["dev"] = tmp_path / "nowhere.conll"
    with pytest.raises(FileNotFoundError, match="dev file .*nowhere.conll"):
        record_own_files("conll", tmp_path / "assets", files)
    with pytest.raises(ValueError, match="needs --test"):
        record_own_files("conll", tmp_path / "assets", {**files, "test": None})


def test_the_spans_dataset_prepares_annotation_tool_exports(tmp_path):
    import json

    from spacy_bert_ner.errors import InputError
    from spacy_bert_ner.formats.docbin import read_docbin
    from spacy_bert_ner.project.prepare import prepare

    files = {}
    for part in ("train", "dev"):
        files[part] = tmp_path / f"{part}.jsonl"
        files[part].write_text(json.dumps({"text": f"{part} in Rome", "label": [[len(part) + 4, len(part) + 8, "LOC"]]}) + "\n")
    files["test"] = tmp_path / "test.json"
    task = {
        "id": 1,
        "data": {"text": "Paris"},
        "annotations": [{"result": [{"type": "labels", "value": {"start": 0, "end": 5, "labels": ["LOC"]}}]}],
    }
    files["test"].write_text(json.dumps([task]))
    reports = prepare("spans", tmp_path / "assets", tmp_path / "corpus", **files)
    assert [r.format for r in reports] == ["doccano", "doccano", "label-studio"]
    assert [[e.text for e in d.ents] for d in read_docbin(tmp_path / "corpus" / "test.spacy")] == [["Paris"]]
    (tmp_path / "plain.txt").write_text("not an export\n")
    with pytest.raises(InputError, match="reads annotation-tool exports"):
        prepare("spans", tmp_path / "assets", tmp_path / "corpus", **{**files, "dev": tmp_path / "plain.txt"})
