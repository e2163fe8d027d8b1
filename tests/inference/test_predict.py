"""`spacy-bert-ner predict`: .txt/.jsonl/.spacy in, .jsonl/.spacy out, bad lines, partial output."""

import json
import os
import sys
from pathlib import Path

import pytest
import spacy
import srsly
from spacy.tokens import DocBin, Span
from typer.testing import CliRunner

from spacy_bert_ner.cli import app
from spacy_bert_ner.errors import InputError
from spacy_bert_ner.inference.entities import entity_record
from spacy_bert_ner.inference.predict import annotate, predict_file


@pytest.fixture(scope="module")
def nlp(trained_ner):
    return spacy.load(trained_ner)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf8")
    return path


def test_txt_keeps_every_line_including_empty_ones(nlp, tmp_path):
    src = _write(tmp_path / "in.txt", "anna works at acme .\n\n   \ni live in paris .\r\n")
    out = tmp_path / "out.jsonl"
    stats = predict_file(nlp, src, out, batch_size=2, progress=False)
    records = list(srsly.read_jsonl(out))
    assert [r["text"] for r in records] == ["anna works at acme .", "", "   ", "i live in paris ."]
    assert records[1]["entities"] == [] and records[2]["entities"] == []
    assert {(e["text"], e["label"]) for e in records[0]["entities"]} == {("anna", "PER"), ("acme", "ORG")}
    paris = records[3]["entities"][0]
    assert records[3]["text"][paris["start_char"] : paris["end_char"]] == "paris"
    assert set(paris) == {"text", "label", "start_char", "end_char"}
    assert stats.records == 4 and stats.skipped == 0 and stats.entities == 3
    assert not (tmp_path / "out.jsonl.partial").exists()


def test_jsonl_keeps_fields_and_spacy_output(nlp, tmp_path):
    src = _write(
        tmp_path / "in.jsonl",
        '{"id": 7, "text": "boris visited rome today", "meta": {"source": "x"}}\n\n{"text": "we met emma and felix yesterday", "entities": "old"}\n',
    )
    out = tmp_path / "out.jsonl"
    predict_file(nlp, src, out, progress=False)
    first, second = srsly.read_jsonl(out)
    assert first["id"] == 7 and first["meta"] == {"source": "x"}
    assert [(e["text"], e["label"]) for e in first["entities"]] == [("boris", "PER"), ("rome", "LOC")]
    assert [e["text"] for e in second["entities"]] == ["emma", "felix"]  # an input "entities" is replaced

    out_spacy = tmp_path / "out.spacy"
    stats = predict_file(nlp, src, out_spacy, progress=False)
    docs = list(DocBin().from_disk(out_spacy).get_docs(nlp.vocab))
    assert stats.records == len(docs) == 2
    assert [e.text for e in docs[0].ents] == ["boris", "rome"]


def test_spacy_input_keeps_tokens_and_drops_gold(nlp, toy_corpus, tmp_path):
    out = tmp_path / "pred.jsonl"
    stats = predict_file(nlp, toy_corpus / "test.spacy", out, batch_size=8, progress=False)
    gold = list(DocBin().from_disk(toy_corpus / "test.spacy").get_docs(nlp.vocab))
    records = list(srsly.read_jsonl(out))
    assert stats.records == len(records) == len(gold)
    assert [r["text"] for r in records] == [d.text for d in gold]
    found = sum(len(r["entities"]) for r in records)
    assert found == stats.entities > 0


@pytest.mark.parametrize(
    "line,message",
    [
        ("{not json", "invalid JSON"),
        ('{"id": 1}', 'no "text" field'),
        ('{"text": 3}', '"text" must be a string'),
        ('["text"]', "expected a JSON object"),
    ],
)
def test_bad_line_names_file_and_line_and_keeps_the_records_before(nlp, tmp_path, line, message):
    good = '{"text": "anna works at acme ."}\n'
    src = _write(tmp_path / "in.jsonl", good + good + line + "\n" + good)
    out = tmp_path / "out.jsonl"
    with pytest.raises(InputError) as info:
        predict_file(nlp, src, out, batch_size=64, progress=False)
    assert str(info.value).startswith(f"{src}:3: ") and message in str(info.value)
    assert not out.exists()
    done = list(srsly.read_jsonl(tmp_path / "out.jsonl.partial"))
    assert len(done) == 2 and all(r["entities"] for r in done)


def test_skip_errors_counts_and_goes_on(nlp, tmp_path):
    src = _write(tmp_path / "in.jsonl", '{"text": "anna works at acme ."}\n{oops\n{"text": null}\n{"text": "i live in rome ."}\n')
    out = tmp_path / "out.jsonl"
    stats = predict_file(nlp, src, out, skip_errors=True, progress=False)
    assert stats.skipped == 2 and stats.records == 2
    assert stats.errors[0].startswith(f"{src}:2: ") and stats.errors[1].startswith(f"{src}:3: ")
    assert [r["text"] for r in srsly.read_jsonl(out)] == ["anna works at acme .", "i live in rome ."]


def test_bad_utf8_line_in_txt(nlp, tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"anna works\n\xff\xfe bad\ni live in rome .\n")
    with pytest.raises(InputError, match=r"in\.txt:2: not valid UTF-8"):
        predict_file(nlp, src, tmp_path / "out.jsonl", progress=False)
    stats = predict_file(nlp, src, tmp_path / "out.jsonl", skip_errors=True, progress=False)
    assert stats.skipped == 1 and stats.records == 2


def test_unknown_formats_fail_before_anything(nlp, tmp_path):
    src = _write(tmp_path / "in.csv", "a,b\n")
    with pytest.raises(InputError, match="unknown input format"):
        predict_file(nlp, src, tmp_path / "out.jsonl")
    src = _write(tmp_path / "in.txt", "a\n")
    with pytest.raises(InputError, match="unknown output format"):
        predict_file(nlp, src, tmp_path / "out.csv")
    with pytest.raises(InputError, match="file not found"):
        predict_file(nlp, tmp_path / "missing.txt", tmp_path / "out.jsonl")


def test_confidence_is_written_when_the_extension_has_a_value(nlp):
    previous = Span.get_extension("confidence")
    Span.set_extension("confidence", default=None, force=True)
    try:
        doc = nlp("anna works at acme .")
        doc.ents[0]._.confidence = 0.25
        entities = [entity_record(e) for e in doc.ents]
        assert entities[0]["confidence"] == 0.25
        assert "confidence" not in entities[1]  # no value: no key
    finally:
        Span.remove_extension("confidence")
        if previous is not None:
            default, method, getter, setter = previous
            Span.set_extension("confidence", default=default, method=method, getter=getter, setter=setter)


def test_annotate_is_lazy_and_in_order(nlp):
    """annotate() pulls one buffer at a time, so a stream is never read in full."""
    pulled = []

    def stream():
        for i in range(1000):
            pulled.append(i)
            yield nlp.make_doc("" if i % 3 == 0 else "anna works at acme ."), i

    results = annotate(nlp, stream(), batch_size=4, buffer=8)
    first = [next(results) for _ in range(6)]
    assert [ctx for _, ctx in first] == list(range(6))
    assert len(pulled) <= 8


def test_cli(trained_ner, tmp_path):
    src = _write(tmp_path / "in.jsonl", '{"text": "anna works at acme ."}\n{"text": 1}\n')
    runner = CliRunner()
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["predict", str(trained_ner), str(src), str(out), "--batch-size", "8"])
    assert result.exit_code == 1
    assert "in.jsonl:2" in _text(result) and "out.jsonl.partial" in _text(result)
    result = runner.invoke(app, ["predict", str(trained_ner), str(src), str(out), "--skip-errors", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "1 records" in _text(result) and "Skipped 1 bad records" in _text(result)
    assert json.loads(out.read_text().splitlines()[0])["entities"]


def _text(result) -> str:
    """CLI output with wasabi's line wrapping undone."""
    return " ".join(result.output.split())


def _predict_command(model, src, out, *extra):
    return [
        sys.executable,
        "-m",
        "spacy_bert_ner",
        "predict",
        str(model),
        str(src),
        str(out),
        "--batch-size",
        "8",
        "--buffer",
        "32",
        "--no-progress",
        *extra,
    ]


@pytest.mark.parametrize("suffix", [".txt", ".jsonl"])
def test_a_killed_run_resumes_to_the_same_bytes(two_runs, tmp_path, suffix):
    """Kill predict mid-run, cut its last line short, run the same command again:
    the output (entities with their float confidences) equals an uninterrupted
    run's, byte for byte."""
    trained_ner = two_runs[0]  # a bert_ner pipeline: confidences are floats
    import signal
    import subprocess
    import time

    from ..util import toy_sentences

    texts = [" ".join(words) for words, _ in toy_sentences(3000, seed=7)]
    src = tmp_path / f"in{suffix}"
    if suffix == ".txt":
        src.write_text("\n".join(texts) + "\n", encoding="utf8")
    else:
        src.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)), encoding="utf8")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    whole = tmp_path / "whole.jsonl"
    subprocess.run(_predict_command(trained_ner, src, whole), check=True, env=env, capture_output=True)

    out = tmp_path / "out.jsonl"
    partial = tmp_path / "out.jsonl.partial"
    process = subprocess.Popen(
        _predict_command(trained_ner, src, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while time.time() < deadline and (not partial.exists() or partial.read_bytes().count(b"\n") < 100):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists()
    done = partial.read_bytes().count(b"\n")
    assert 100 <= done < len(texts), done
    with partial.open("ab") as f:
        f.write(b'{"id": 999999, "text": "cut sh')  # a record cut in the middle of its line
    result = subprocess.run(_predict_command(trained_ner, src, out), env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Resumed" in result.stdout and "records kept" in result.stdout
    assert out.read_bytes() == whole.read_bytes()
    assert b'"confidence"' in whole.read_bytes()
    assert not partial.exists() and not (tmp_path / "out.jsonl.partial.json").exists()


def test_a_partial_output_of_another_input_is_started_afresh(trained_ner, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("anna works at acme .\nboris went to paris .\n", encoding="utf8")
    out = tmp_path / "out.jsonl"
    (tmp_path / "out.jsonl.partial").write_text('{"text": "something else", "entities": []}\n', encoding="utf8")
    stats = predict_file(spacy.load(trained_ner), src, out)
    assert stats.resumed == 0 and stats.records == 2
    assert [json.loads(line)["text"] for line in out.read_text().splitlines()] == [
        "anna works at acme .",
        "boris went to paris .",
    ]


def test_several_processes_give_the_single_process_output(two_runs, tmp_path):
    from spacy_bert_ner.inference.predict import load_tokenizer

    model = two_runs[0]
    from ..util import toy_sentences

    src = tmp_path / "in.txt"
    src.write_text("\n".join(" ".join(words) for words, _ in toy_sentences(150, seed=3)) + "\n", encoding="utf8")
    one = predict_file(spacy.load(model), src, tmp_path / "one.jsonl", batch_size=8, buffer=32)
    tokenizer = load_tokenizer(str(model))
    assert tokenizer.pipe_names == []
    two = predict_file(tokenizer, src, tmp_path / "two.jsonl", batch_size=8, buffer=32, processes=2, model=str(model))
    assert (one.records, one.words, one.entities) == (two.records, two.words, two.entities) == (150, one.words, one.entities)
    a = [json.loads(line) for line in (tmp_path / "one.jsonl").read_text().splitlines()]
    b = [json.loads(line) for line in (tmp_path / "two.jsonl").read_text().splitlines()]
    assert [r["text"] for r in a] == [r["text"] for r in b]
    strip = lambda r: [(e["start_char"], e["end_char"], e["label"]) for e in r["entities"]]  # noqa: E731
    assert [strip(r) for r in a] == [strip(r) for r in b]
    assert any(strip(r) for r in a)
    confidences = [(x["confidence"], y["confidence"]) for r, s in zip(a, b) for x, y in zip(r["entities"], s["entities"])]
    assert all(abs(x - y) < 1e-4 for x, y in confidences)
    # a .spacy output from the workers keeps the entities and their confidences
    predict_file(tokenizer, src, tmp_path / "two.spacy", batch_size=8, buffer=32, processes=2, model=str(model))
    docs = list(DocBin().from_disk(tmp_path / "two.spacy").get_docs(tokenizer.vocab))
    assert [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in docs] == [strip(r) for r in a]
    assert all(e._.confidence is not None for d in docs for e in d.ents)
