"""Predictions as annotation-tool tasks, ranked for annotation by uncertainty."""

import json

import numpy
import pytest
import spacy
import srsly
from spacy.tokens import Doc
from typer.testing import CliRunner

from spacy_bert_ner.cli import app
from spacy_bert_ner.errors import InputError
from spacy_bert_ner.evaluation.evaluate import tag_log_probs
from spacy_bert_ner.formats.docbin import read_docbin
from spacy_bert_ner.inference.predict import predict_file
from spacy_bert_ner.inference.ranking import doc_uncertainty, rank_records
from spacy_bert_ner.pipeline.bert_ner import LEAST_ATTR
from spacy_bert_ner.pipeline.ensemble import disagreement
from spacy_bert_ner.training.combine import ensemble_pipelines

TEXTS = ["anna works at acme .", "we met boris and emma yesterday", "the office of globex is in paris", "", "rome"]


@pytest.fixture(scope="module")
def nlp(two_runs):
    return spacy.load(two_runs[0])


def _input(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(TEXTS)), encoding="utf8")
    return path


def _probs(pipe, rows):
    """Tag probabilities with the given (tag, probability) per token, the rest spread evenly."""
    out = numpy.zeros((len(rows), len(pipe.tags)), dtype="float32")
    for i, (tag, p) in enumerate(rows):
        out[i] = (1.0 - p) / (len(pipe.tags) - 1)
        out[i, pipe.tags.index(tag)] = p
    return out


def test_a_doc_with_a_doubtful_entity_ranks_before_a_confident_one(nlp):
    pipe = nlp.get_pipe("bert_ner")
    doubtful, sure = Doc(nlp.vocab, words=["anna", "works"]), Doc(nlp.vocab, words=["boris", "works"])
    pipe.set_annotations(
        [doubtful, sure], [_probs(pipe, [("U-PER", 0.55), ("O", 0.99)]), _probs(pipe, [("U-PER", 0.99), ("O", 0.98)])]
    )
    assert [e.label_ for e in doubtful.ents] == [e.label_ for e in sure.ents] == ["PER"]
    assert doubtful.spans["bert_ner"].attrs[LEAST_ATTR] == pytest.approx(0.55, abs=1e-6)
    records = [{"id": "sure", **doc_uncertainty(sure, "bert_ner")}, {"id": "doubtful", **doc_uncertainty(doubtful, "bert_ner")}]
    assert records[1]["uncertainty"] == pytest.approx(0.45, abs=1e-6) and records[0]["uncertainty"] == pytest.approx(
        0.02, abs=1e-6
    )
    ranked = rank_records(records)
    assert [(r["id"], r["rank"]) for r in ranked] == [("doubtful", 1), ("sure", 2)]


def test_a_doubtful_outside_token_counts_too(nlp):
    pipe = nlp.get_pipe("bert_ner")
    doc = Doc(nlp.vocab, words=["near", "miss"])
    pipe.set_annotations([doc], [_probs(pipe, [("O", 0.51), ("O", 0.99)])])
    assert not doc.ents and doc_uncertainty(doc, "bert_ner")["uncertainty"] == pytest.approx(0.49, abs=1e-6)


def test_ties_keep_the_input_order_and_disagreement_comes_first():
    records = [
        {"id": "a", "uncertainty": 0.2},
        {"id": "b", "uncertainty": 0.2},
        {"id": "c", "uncertainty": 0.1, "disagreement": 0.5},
    ]
    assert [r["id"] for r in rank_records(records)] == ["c", "a", "b"]
    assert disagreement(numpy.array([0, 1, 2]), [numpy.array([0, 1, 2]), numpy.array([0, 3, 2])]) == 0.5
    assert disagreement(numpy.array([0, 1]), [numpy.array([0, 1])] * 3) == 0.0


def test_predict_ranks_label_studio_tasks_by_uncertainty(nlp, tmp_path):
    out = tmp_path / "tasks.json"
    predict_file(nlp, _input(tmp_path), out, rank="uncertainty", model_version="toy-1")
    tasks = json.loads(out.read_text(encoding="utf8"))
    assert sorted(t["data"]["id"] for t in tasks) == [f"d{i}" for i in range(len(TEXTS))]
    assert [t["meta"]["rank"] for t in tasks] == list(range(1, len(TEXTS) + 1))
    uncertainty = [t["meta"]["uncertainty"] for t in tasks]
    assert uncertainty == sorted(uncertainty, reverse=True)
    # each document's uncertainty is 1 - its least confident token's probability of the tag chosen for it
    pipe = nlp.get_pipe("bert_ner")
    for task in tasks:
        text = task["data"]["text"]
        if not text:
            assert task["meta"]["uncertainty"] == 0.0
            continue
        doc = nlp.make_doc(text)
        probs = numpy.exp(tag_log_probs(nlp, [doc])[0])
        _, ids = pipe.decode_ids(doc, probs)
        least = probs[numpy.arange(len(doc)), ids].min()
        assert task["meta"]["uncertainty"] == pytest.approx(1.0 - least, abs=1e-5)
        prediction = task["predictions"][0]
        assert prediction["model_version"] == "toy-1" and prediction["score"] == pytest.approx(least, abs=1e-5)
        for region in prediction["result"]:
            value = region["value"]
            assert text[value["start"] : value["end"]] == value["text"] and region["type"] == "labels"
            assert 0.0 <= region["score"] <= 1.0
    assert not (tmp_path / "tasks.json.partial").exists()


@pytest.mark.parametrize("format", ["prodigy", "doccano"])
def test_predict_writes_prodigy_and_doccano_tasks(nlp, tmp_path, format):
    out = tmp_path / f"{format}.jsonl"
    predict_file(nlp, _input(tmp_path), out, format=format)
    tasks = list(srsly.read_jsonl(out))
    assert [t["id"] for t in tasks] == [f"d{i}" for i in range(len(TEXTS))]  # unranked: input order
    predict_file(nlp, _input(tmp_path), tmp_path / "plain.jsonl")
    plain = list(srsly.read_jsonl(tmp_path / "plain.jsonl"))
    for task, record in zip(tasks, plain):
        expected = [(e["start_char"], e["end_char"], e["label"]) for e in record["entities"]]
        if format == "prodigy":
            assert [(s["start"], s["end"], s["label"]) for s in task["spans"]] == expected
            assert task["meta"]["model_version"].endswith(nlp.meta["version"]) and "score" in task["meta"]
        else:
            assert [tuple(x) for x in task["label"]] == expected and "uncertainty" in task


def test_an_ensemble_ranks_by_its_members_disagreement(two_runs, tmp_path):
    nlp = spacy.load(ensemble_pipelines(two_runs, tmp_path / "ensemble"))
    out = tmp_path / "ranked.jsonl"
    predict_file(nlp, _input(tmp_path), out, rank="uncertainty")
    records = list(srsly.read_jsonl(out))
    assert all("disagreement" in r and 0.0 <= r["disagreement"] <= 1.0 for r in records)
    keys = [(-r["disagreement"], -r["uncertainty"]) for r in records]
    assert keys == sorted(keys) and [r["rank"] for r in records] == list(range(1, len(TEXTS) + 1))


def test_formats_that_do_not_fit_are_refused_before_anything(nlp, tmp_path):
    src = _input(tmp_path)
    with pytest.raises(InputError, match="label-studio output goes to a .json file"):
        predict_file(nlp, src, tmp_path / "out.jsonl", format="label-studio")
    with pytest.raises(ValueError, match="--rank orders JSON output"):
        predict_file(nlp, src, tmp_path / "out.spacy", rank="uncertainty")
    with pytest.raises(ValueError, match="unknown ranking"):
        predict_file(nlp, src, tmp_path / "out.jsonl", rank="random")
    result = CliRunner().invoke(app, ["predict", "nowhere", str(src), str(tmp_path / "o.jsonl"), "--format", "label-studio"])
    assert result.exit_code == 1 and "goes to a .json file" in result.output


def test_predict_cli_writes_ranked_tasks(two_runs, tmp_path):
    out = tmp_path / "tasks.jsonl"
    result = CliRunner().invoke(
        app, ["predict", str(two_runs[0]), str(_input(tmp_path)), str(out), "--format", "prodigy", "--rank", "uncertainty"]
    )
    assert result.exit_code == 0, result.output
    assert [t["meta"]["rank"] for t in srsly.read_jsonl(out)] == list(range(1, len(TEXTS) + 1))


def test_gold_docs_export_and_reimport(tmp_path, toy_corpus):
    """A DocBin's gold entities become tasks and come back the same (doccano)."""
    from spacy_bert_ner.formats.spans import read_span_docs, spans_of
    from spacy_bert_ner.formats.tasks import write_tasks
    from spacy_bert_ner.inference.entities import entity_record

    docs = list(read_docbin(toy_corpus / "dev.spacy"))
    with (tmp_path / "gold.jsonl").open("w", encoding="utf8") as out:
        write_tasks([{"text": d.text, "entities": [entity_record(e) for e in d.ents]} for d in docs], out, "doccano", "gold")
    again = list(read_span_docs(spacy.blank("en"), tmp_path / "gold.jsonl"))
    assert [spans_of(d) for d in again] == [spans_of(d) for d in docs]


def test_ranking_needs_a_bert_ner_pipeline(trained_ner, tmp_path):
    with pytest.raises(ValueError, match="need a pipeline with a bert_ner component"):
        predict_file(spacy.load(trained_ner), _input(tmp_path), tmp_path / "out.jsonl", rank="uncertainty")


def test_ranking_without_a_span_group_uses_the_entities_confidences(two_runs, tmp_path):
    nlp = spacy.load(two_runs[0], config={"components": {"bert_ner": {"spans_key": None}}})
    out = tmp_path / "ranked.jsonl"
    predict_file(nlp, _input(tmp_path), out, rank="uncertainty")
    for record in srsly.read_jsonl(out):
        least = min((e["confidence"] for e in record["entities"]), default=1.0)
        assert record["uncertainty"] == pytest.approx(1.0 - least, abs=1e-6)
