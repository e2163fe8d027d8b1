"""Span exports of Prodigy, doccano and Label Studio: reading, aligning to tokens, writing back."""

import io
import json
import re

import pytest
import spacy
import srsly
from typer.testing import CliRunner

from spacy_bert_ner.cli import app
from spacy_bert_ner.errors import InputError
from spacy_bert_ner.formats.convert import convert
from spacy_bert_ner.formats.docbin import read_docbin
from spacy_bert_ner.formats.spans import SpanReport, detect_span_format, read_span_docs, spans_of
from spacy_bert_ner.formats.tasks import write_tasks
from spacy_bert_ner.inference.entities import entity_record

TEXT = "Anna Smith flew to New York with Acme Corp today."
SPANS = [(0, 10, "PER"), (19, 27, "LOC"), (33, 42, "ORG")]


def _jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf8")
    return path


def _prodigy(tmp_path, extra=()):
    records = [
        {"text": TEXT, "spans": [{"start": s, "end": e, "label": label} for s, e, label in SPANS], "answer": "accept"},
        {"text": "Berlin is big.", "spans": [{"start": 0, "end": 6, "label": "LOC"}], "answer": "reject"},
        {"text": "Skip me.", "spans": [], "answer": "ignore"},
        {"text": "Rome.", "spans": [{"start": 0, "end": 4, "label": "LOC", "token_start": 0, "token_end": 0}], "_input_hash": 1},
        *extra,
    ]
    return _jsonl(tmp_path / "prodigy.jsonl", records)


def _doccano(tmp_path, extra=()):
    records = [
        {"id": 1, "text": TEXT, "label": [list(s) for s in SPANS]},
        {"id": 2, "text": "Rome.", "entities": [{"id": 7, "start_offset": 0, "end_offset": 4, "label": "LOC"}], "relations": []},
        {"id": 3, "text": "Nothing here.", "labels": []},
        *extra,
    ]
    return _jsonl(tmp_path / "doccano.jsonl", records)


def _result(start, end, label, text=TEXT):
    return {
        "value": {"start": start, "end": end, "text": text[start:end], "labels": [label]},
        "id": f"r{start}",
        "from_name": "label",
        "to_name": "text",
        "type": "labels",
        "origin": "manual",
    }


def _label_studio(tmp_path, extra=()):
    tasks = [
        {
            "id": 11,
            "data": {"text": TEXT},
            "annotations": [
                {
                    "id": 1,
                    "completed_by": 1,
                    "result": [_result(0, 10, "ORG")],
                    "was_cancelled": False,
                    "updated_at": "2026-01-01T10:00:00Z",
                },
                {
                    "id": 2,
                    "completed_by": 2,
                    "result": [_result(s, e, label) for s, e, label in SPANS],
                    "was_cancelled": False,
                    "updated_at": "2026-01-02T10:00:00Z",
                },
                {"id": 3, "completed_by": 3, "result": [], "was_cancelled": True, "updated_at": "2026-01-03T10:00:00Z"},
            ],
            "predictions": [],
        },
        {
            "id": 12,
            "data": {"text": "Rome."},
            "annotations": [{"id": 4, "completed_by": 1, "result": [_result(0, 4, "LOC", "Rome.")]}],
        },
        {"id": 13, "data": {"text": "Not annotated."}, "annotations": []},
        *extra,
    ]
    path = tmp_path / "label-studio.json"
    path.write_text(json.dumps(tasks, indent=2), encoding="utf8")
    return path


MAKERS = {"prodigy": _prodigy, "doccano": _doccano, "label-studio": _label_studio}


def _docs(path, format=None, **kwargs):
    report = SpanReport("")
    docs = list(read_span_docs(spacy.blank("en"), path, format, report=report, **kwargs))
    return docs, report


@pytest.mark.parametrize("format", list(MAKERS))
def test_each_tools_format_is_detected_and_read(format, tmp_path):
    path = MAKERS[format](tmp_path)
    assert detect_span_format(path) == format
    docs, report = _docs(path)
    assert spans_of(docs[0]) == SPANS and [e.text for e in docs[0].ents] == ["Anna Smith", "New York", "Acme Corp"]
    assert spans_of(docs[1]) == [(0, 4, "LOC")]
    assert report.format == format and report.kept == {"PER": 1, "LOC": 2, "ORG": 1}


def test_prodigy_keeps_accepted_answers_and_counts_the_rest(tmp_path):
    docs, report = _docs(_prodigy(tmp_path))
    assert [d.text for d in docs] == [TEXT, "Rome."]
    assert report.left_out == {"answer reject": 1, "answer ignore": 1}


def test_prodigy_tokens_are_the_tokenization(tmp_path):
    tokens = [
        {"text": "Hi", "start": 0, "end": 2, "id": 0, "ws": True},
        {"text": "there-you", "start": 3, "end": 12, "id": 1, "ws": False},
    ]
    path = _jsonl(
        tmp_path / "p.jsonl", [{"text": "Hi there-you", "tokens": tokens, "spans": [{"start": 3, "end": 12, "label": "X"}]}]
    )
    (doc,), _ = _docs(path, "prodigy")
    assert [t.text for t in doc] == ["Hi", "there-you"] and spans_of(doc) == [(3, 12, "X")]


def test_label_studio_takes_the_latest_annotation_or_the_annotators(tmp_path):
    path = _label_studio(tmp_path)
    docs, report = _docs(path)
    assert spans_of(docs[0]) == SPANS  # annotation 2 is the latest not cancelled
    assert report.left_out == {"cancelled annotation": 1, "older annotation of a task": 1, "task without an annotation": 1}
    docs, report = _docs(path, annotator="1")
    assert spans_of(docs[0]) == [(0, 10, "ORG")] and len(docs) == 2
    with pytest.raises(ValueError, match="--annotator chooses among Label Studio"):
        _docs(_doccano(tmp_path), annotator="1")


MISALIGNED_TEXT = "Visit NewYorkCity today."


def _misaligned(tmp_path):
    return _jsonl(
        tmp_path / "m.jsonl", [{"text": MISALIGNED_TEXT, "label": [[9, 13, "LOC"]]}, {"text": TEXT, "label": [[1, 10, "PER"]]}]
    )


def test_a_misaligned_span_is_an_error_naming_the_record_the_span_and_the_nearest(tmp_path):
    with pytest.raises(InputError) as error:
        _docs(_misaligned(tmp_path))
    message = str(error.value)
    assert "m.jsonl:1" in message and "[9, 13) LOC 'York'" in message
    assert "nearest token-aligned span is [6, 17) 'NewYorkCity'" in message and "--misaligned snap" in message


def test_misaligned_spans_snap_to_the_nearest_or_are_skipped_and_counted(tmp_path):
    docs, report = _docs(_misaligned(tmp_path), misaligned="snap")
    assert spans_of(docs[0]) == [(6, 17, "LOC")] and spans_of(docs[1]) == [(0, 10, "PER")]
    assert report.misaligned == {"snapped": 2}
    assert report.details[1] == {
        "record": f"{tmp_path / 'm.jsonl'}:2",
        "text": "nna Smith",
        "start": 1,
        "end": 10,
        "label": "PER",
        "nearest": {"start": 0, "end": 10, "text": "Anna Smith"},
        "action": "snapped",
    }
    docs, report = _docs(_misaligned(tmp_path), misaligned="skip")
    assert [spans_of(d) for d in docs] == [[], []] and report.misaligned == {"skipped": 2}


@pytest.mark.parametrize(
    "record, message",
    [
        ({"text": TEXT, "label": [[0, 10, "PER"], [5, 15, "ORG"]]}, "overlaps [0, 10) PER 'Anna Smith'"),
        ({"text": TEXT, "label": [[30, 99, "ORG"]]}, "out of range for a text of 49 characters"),
        ({"text": TEXT, "label": [[5, 5, "ORG"]]}, "out of range"),
        ({"text": TEXT, "label": [[0, 4, " "]]}, "has an empty label"),
        ({"text": TEXT, "label": [[0, "4", "PER"]]}, "offsets must be integers"),
        ({"label": [[0, 4, "PER"]]}, "no text"),
        ({"text": 7, "label": []}, "text is a int"),
        ({"text": TEXT, "label": [[0, 4]]}, r"expected \[start, end, label\]"),
    ],
)
def test_bad_spans_and_records_are_clear_errors(record, message, tmp_path):
    path = _jsonl(tmp_path / "bad.jsonl", [{"text": "Fine.", "label": []}, record])
    with pytest.raises(InputError, match=re.escape(message) if "[" in message and "\\" not in message else message) as error:
        _docs(path, "doccano")
    assert "bad.jsonl:2" in str(error.value)


def test_label_studio_errors_name_the_task(tmp_path):
    path = _label_studio(
        tmp_path, [{"id": 99, "data": {"text": "Bad."}, "annotations": [{"result": [_result(0, 9, "LOC", "Bad.")]}]}]
    )
    with pytest.raises(InputError, match="task 99: span \\[0, 9\\) LOC is out of range"):
        _docs(path)
    path.write_text(json.dumps({"not": "a list"}), encoding="utf8")
    with pytest.raises(InputError, match="expected a list of tasks"):
        _docs(path, "label-studio")


# --- the way back ------------------------------------------------------------------


def _items(docs):
    return [{"text": d.text, "entities": [entity_record(e) for e in d.ents]} for d in docs]


@pytest.mark.parametrize("format", list(MAKERS))
def test_import_then_export_gives_the_same_spans(format, tmp_path):
    report = convert(MAKERS[format](tmp_path), tmp_path / "gold.spacy")
    assert report.format == format and report.alignment["records"] == {"doccano": 3}.get(format, 2)
    docs = list(read_docbin(tmp_path / "gold.spacy"))
    out = io.StringIO()
    assert write_tasks(_items(docs), out, format, "gold") == len(docs)
    suffix = ".json" if format == "label-studio" else ".jsonl"
    exported = tmp_path / f"back{suffix}"
    exported.write_text(out.getvalue(), encoding="utf8")
    if format == "label-studio":  # tasks with predictions: turn them into annotations as a reviewer would
        tasks = json.loads(out.getvalue())
        for task in tasks:
            task["annotations"] = [{"result": task.pop("predictions")[0]["result"]}]
        exported.write_text(json.dumps(tasks), encoding="utf8")
    again, _ = _docs(exported, format)
    assert [spans_of(d) for d in again] == [spans_of(d) for d in docs]
    assert [d.text for d in again] == [d.text for d in docs]


def test_convert_cli_reports_the_alignment(tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "convert",
            str(_misaligned(tmp_path)),
            str(tmp_path / "out.spacy"),
            "--misaligned",
            "snap",
            "--report",
            str(tmp_path / "r.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "2 spans off the token boundaries snapped" in result.output
    report = srsly.read_json(tmp_path / "r.json")
    assert report["alignment"]["misaligned"] == {"snapped": 2} and report["format"] == "doccano"
    result = runner.invoke(app, ["convert", str(_misaligned(tmp_path)), str(tmp_path / "out2.spacy")])
    assert result.exit_code == 1 and "does not fall on token boundaries" in result.output
    assert not (tmp_path / "out2.spacy").exists()


def test_hugging_face_exports_are_not_taken_for_span_exports(tmp_path):
    path = _jsonl(tmp_path / "hf.jsonl", [{"tokens": ["Rome"], "ner_tags": ["B-LOC"], "spans": ["LOC: Rome"], "langs": ["en"]}])
    assert detect_span_format(path) is None
    assert convert(path, tmp_path / "hf.spacy").format == "hf"


def test_label_studio_offsets_that_do_not_match_their_text_are_errors(tmp_path):
    shifted = _result(0, 10, "PER")
    shifted["value"]["text"] = "nna Smith "
    path = _label_studio(tmp_path, [{"id": 50, "data": {"text": TEXT}, "annotations": [{"result": [shifted]}]}])
    with pytest.raises(InputError, match="task 50: result 0 \\[0, 10\\) says 'nna Smith ' but the text there is 'Anna Smith'"):
        _docs(path)


def test_label_studio_results_that_are_not_entities_are_counted_or_refused(tmp_path):
    choice = {"type": "choices", "value": {"choices": ["news"]}, "from_name": "topic", "to_name": "text"}
    path = _label_studio(tmp_path, [{"id": 51, "data": {"text": "Rome."}, "annotations": [{"result": [choice]}]}])
    _, report = _docs(path)
    assert report.left_out["choices result"] == 1
    html = {"type": "hypertextlabels", "value": {"start": 0, "end": 4, "hypertextlabels": ["LOC"]}}
    path = _label_studio(tmp_path, [{"id": 52, "data": {"text": "Rome."}, "annotations": [{"result": [html]}]}])
    with pytest.raises(InputError, match="task 52: result 0 is a 'hypertextlabels' span"):
        _docs(path)


def test_exported_tasks_replace_the_annotations_a_record_brought():
    item = {
        "text": "Rome.",
        "entities": [{"start_char": 0, "end_char": 4, "label": "LOC", "confidence": 0.9}],
        "spans": [{"start": 0, "end": 5, "label": "OLD"}],
        "label": [[0, 5, "OLD"]],
        "_input_hash": 1,
        "_task_hash": 2,
        "answer": "accept",
        "source": "news",
    }
    for format in ("prodigy", "doccano"):
        out = io.StringIO()
        write_tasks([item], out, format, "v1")
        task = json.loads(out.getvalue())
        assert task["source"] == "news" and not {"_input_hash", "_task_hash", "answer"} & set(task)
        if format == "prodigy":
            assert task["spans"] == [{"start": 0, "end": 4, "label": "LOC", "score": 0.9}] and "label" not in task
        else:
            assert task["label"] == [[0, 4, "LOC"]] and "spans" not in task
