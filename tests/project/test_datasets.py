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
