"""Prediction-time ensembles of trained bert_ner pipelines."""

import zipfile

import numpy
import pytest
import spacy
import srsly
from typer.testing import CliRunner

from spacy_bert_ner.cli import app
from spacy_bert_ner.evaluation.calibrate import set_model_temperature
from spacy_bert_ner.evaluation.evaluate import evaluate, predict_gold_tokens, tag_log_probs
from spacy_bert_ner.formats.docbin import read_docbin
from spacy_bert_ner.packaging.modelcard import render_model_card
from spacy_bert_ner.packaging.package import package
from spacy_bert_ner.pipeline.bert_ner import bert_ner_name
from spacy_bert_ner.pipeline.decoding import clamped_log
from spacy_bert_ner.pipeline.ensemble import ENSEMBLE_FACTORY, BertNEREnsemble
from spacy_bert_ner.project.members import train_members
from spacy_bert_ner.training.combine import build_ensemble, ensemble_pipelines

from ..util import CONFIG_DIR, tiny_overrides

TEXTS = ["anna works at acme .", "we met boris and emma yesterday", "the office of globex is in paris", ""]


@pytest.fixture(scope="module")
def ensemble_dir(two_runs, tmp_path_factory):
    return ensemble_pipelines(two_runs, tmp_path_factory.mktemp("ensemble") / "model")


def _ents(nlp, texts=TEXTS):
    return [[(e.start, e.end, e.label_, round(e._.confidence, 6)) for e in doc.ents] for doc in nlp.pipe(texts)]


def test_the_ensemble_is_one_bert_ner_over_disabled_members(ensemble_dir):
    nlp = spacy.load(ensemble_dir)
    assert nlp.pipe_names == ["bert_ner"]
    assert nlp.get_pipe_meta("bert_ner").factory == ENSEMBLE_FACTORY
    assert set(nlp.disabled) == {"member0_transformer", "member0_bert_ner", "member1_transformer", "member1_bert_ner"}
    pipe = nlp.get_pipe("bert_ner")
    assert isinstance(pipe, BertNEREnsemble) and not pipe.is_trainable
    assert pipe.members == [["member0_transformer", "member0_bert_ner"], ["member1_transformer", "member1_bert_ner"]]
    assert bert_ner_name(nlp) == "bert_ner"
    assert pipe.labels == nlp.get_pipe("member0_bert_ner").labels == ("LOC", "ORG", "PER")


def test_the_ensemble_decodes_the_mean_of_its_members_probabilities(two_runs, ensemble_dir, toy_corpus):
    members = [spacy.load(path) for path in two_runs]
    nlp = spacy.load(ensemble_dir)
    gold = list(read_docbin(toy_corpus / "test.spacy", nlp.vocab))
    member_probs = [[numpy.exp(lp) for lp in tag_log_probs(m, gold)] for m in members]
    assert any(not numpy.allclose(a, b, atol=1e-3) for a, b in zip(*member_probs))  # the members differ
    ensemble_log_probs = tag_log_probs(nlp, gold)
    pipe = nlp.get_pipe("bert_ner")
    for a, b, got in zip(*member_probs, ensemble_log_probs):
        numpy.testing.assert_allclose(numpy.exp(got), (a + b) / 2, rtol=1e-5, atol=1e-6)
    predicted = predict_gold_tokens(nlp, gold)
    for doc, a, b in zip(predicted, *member_probs):
        mean = (a + b) / 2
        ids = pipe.decoder.decode(clamped_log(mean))
        expected = [(s, e, label) for s, e, label, _ in pipe.decode(doc, mean)]
        assert [(ent.start, ent.end, ent.label_) for ent in doc.ents] == expected
        assert len(ids) == len(doc)
    result = evaluate(nlp, toy_corpus / "test.spacy")
    assert result["ensemble_members"] == 2 and result["pipeline"] == ["bert_ner"]
    assert evaluate(members[0], toy_corpus / "test.spacy")["ensemble_members"] == 1


def test_an_ensemble_of_a_pipeline_with_itself_is_that_pipeline(two_runs):
    alone = spacy.load(two_runs[0])
    twice = build_ensemble([spacy.load(two_runs[0]), spacy.load(two_runs[0])])
    assert _ents(twice) == _ents(alone)
    doc = twice("anna works at acme .")
    assert doc.spans["bert_ner"].attrs["scores"] == [ent._.confidence for ent in doc.ents]


def test_the_saved_ensemble_predicts_like_the_built_one(two_runs, ensemble_dir):
    built = build_ensemble([spacy.load(path) for path in two_runs])
    assert _ents(spacy.load(ensemble_dir)) == _ents(built)


def test_temperature_and_threshold_go_to_the_ensemble_not_a_member(ensemble_dir, tmp_path):
    import shutil

    model = shutil.copytree(ensemble_dir, tmp_path / "model")
    assert set_model_temperature(model, 2.0) == "bert_ner"
    nlp = spacy.load(model)
    assert nlp.get_pipe("bert_ner").temperature == 2.0
    assert nlp.get_pipe("member0_bert_ner").temperature == 1.0
    nlp.get_pipe("bert_ner").threshold = 1.0
    assert all(not doc.ents for doc in nlp.pipe(TEXTS[:3]))


def test_build_ensemble_refuses_what_it_cannot_join(two_runs, trained_ner):
    with pytest.raises(ValueError, match="at least two"):
        build_ensemble([spacy.load(two_runs[0])])
    with pytest.raises(ValueError, match="must end with its only bert_ner"):
        build_ensemble([spacy.load(two_runs[0]), spacy.load(trained_ner)], ["a", "spacy-ner"])
    other = spacy.load(two_runs[1])
    other.get_pipe("bert_ner").cfg["labels"] = ["LOC", "PER", "XYZ"]
    with pytest.raises(ValueError, match=r"run-b.*labels \['LOC', 'PER', 'XYZ'\] differ"):
        build_ensemble([spacy.load(two_runs[0]), other], ["run-a", "run-b"])


def test_the_ensemble_is_not_trained(ensemble_dir):
    pipe = spacy.load(ensemble_dir).get_pipe("bert_ner")
    with pytest.raises(NotImplementedError, match="train its members"):
        pipe.update([])
    with pytest.raises(NotImplementedError, match="labels from its members"):
        pipe.add_label("MISC")


def test_a_missing_member_is_named(ensemble_dir):
    nlp = spacy.load(ensemble_dir)
    nlp.remove_pipe("member1_transformer")
    with pytest.raises(ValueError, match=r"\['member1_transformer'\] are not in the pipeline"):
        nlp("anna works at acme .")


def test_ensemble_cli(two_runs, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["ensemble", *map(str, two_runs), str(tmp_path / "new" / "out")])
    assert result.exit_code == 0, result.output
    assert spacy.load(tmp_path / "new" / "out").pipe_names == ["bert_ner"]
    result = runner.invoke(app, ["ensemble", str(two_runs[0]), str(tmp_path / "one")])
    assert result.exit_code == 1 and "at least two" in result.output


def test_model_card_names_the_ensemble(ensemble_dir):
    nlp = spacy.load(ensemble_dir)
    card = render_model_card(
        {"lang": "en", "name": "x", "pipeline": nlp.pipe_names, "labels": {"bert_ner": list(nlp.get_pipe("bert_ner").labels)}},
        {"ents_f": 0.5},
        nlp.config,
    )
    assert "| **Ensemble** | 2 fine-tuned members" in card


@pytest.mark.slow
def test_the_packaged_ensemble_ships_its_members(ensemble_dir, tmp_path):
    metrics = tmp_path / "metrics.json"
    srsly.write_json(metrics, {"ents_p": 0.9, "ents_r": 0.8, "ents_f": 0.85, "ents_per_type": {}})
    wheel = package(ensemble_dir, tmp_path / "packages", "toy_ensemble", "0.0.1", metrics_path=metrics)[0]
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tmp_path / "unzipped")
    data = tmp_path / "unzipped" / "en_toy_ensemble" / "en_toy_ensemble-0.0.1"
    assert (data / "member1_transformer").is_dir()
    assert _ents(spacy.load(data)) == _ents(spacy.load(ensemble_dir))


@pytest.mark.slow
def test_train_members_can_combine_the_members_into_an_ensemble(tiny_bert, toy_corpus, tmp_path):
    overrides = tiny_overrides(tiny_bert, toy_corpus, steps=6)
    del overrides["paths.train_log"]
    args = [part for key, value in overrides.items() for part in (f"--{key}", str(value))]
    best = train_members(CONFIG_DIR / "bert-ner-cpu.cfg", tmp_path, 2, args, combine="ensemble")
    assert srsly.read_json(tmp_path / "members.json")["combine"] == "ensemble"
    nlp = spacy.load(best)
    assert nlp.get_pipe_meta("bert_ner").factory == ENSEMBLE_FACTORY
    members = [spacy.load(tmp_path / f"member-{k}" / "model-best") for k in range(2)]
    assert _ents(nlp) == _ents(build_ensemble(members))
    with pytest.raises(ValueError, match="combine must be one of average, ensemble"):
        train_members(CONFIG_DIR / "bert-ner-cpu.cfg", tmp_path / "x", 2, args, combine="vote")
