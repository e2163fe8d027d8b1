"""The ``bert_ner`` component: decoding, confidences, training, saving, calibration."""

import itertools
import math
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Sequence

import numpy
import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example

from spacy_bert_ner.evaluation.calibrate import (
    EntityProbs,
    calibrate_pipeline,
    calibration_report,
    fit_temperature,
    log_loss,
    reliability_table,
    set_model_temperature,
)
from spacy_bert_ner.pipeline.bert_ner import BertNER
from spacy_bert_ner.pipeline.decoding import BiluoDecoder, make_tags, tags_to_entities, transition_constraints, viterbi

from ..util import CONFIG_DIR, tiny_overrides

BERT_NER_CONFIG = CONFIG_DIR / "bert-ner-cpu.cfg"
TRAIN_STEPS = 20


# --- an independent BILUO checker (not the decoder's own masks) ------------------------


def valid_biluo(tags: Sequence[str], sent_starts: Optional[Sequence[bool]] = None) -> bool:
    """A plain state machine: entities open with B and close with L of the same
    label, U stands alone, and nothing is left open at a sentence end."""
    open_label = None
    for i, tag in enumerate(tags):
        if sent_starts is not None and i > 0 and sent_starts[i] and open_label is not None:
            return False
        prefix, label = (tag.split("-", 1) + [None])[:2] if tag != "O" else ("O", None)
        if open_label is None:
            if prefix == "B":
                open_label = label
            elif prefix not in ("O", "U"):
                return False
        else:
            if prefix not in ("I", "L") or label != open_label:
                return False
            if prefix == "L":
                open_label = None
    return open_label is None


def path_score(log_probs: numpy.ndarray, path: Sequence[int]) -> float:
    return float(sum(log_probs[i, t] for i, t in enumerate(path)))


def random_log_probs(rng: numpy.random.Generator, n: int, n_tags: int) -> numpy.ndarray:
    """Log-softmax of random logits, sometimes very peaked (the argmax alone is often invalid)."""
    logits = rng.normal(scale=rng.choice([0.5, 3.0, 10.0]), size=(n, n_tags))
    return logits - numpy.log(numpy.exp(logits).sum(axis=1, keepdims=True))


# --- decoding -----------------------------------------------------------------------


def test_bert_ner_tag_set_and_transitions():
    tags = make_tags(["PER", "LOC"])
    assert tags == ["O", "B-LOC", "I-LOC", "L-LOC", "U-LOC", "B-PER", "I-PER", "L-PER", "U-PER"]
    allowed, start, end = transition_constraints(tags)
    ix = {t: i for i, t in enumerate(tags)}
    assert allowed[ix["O"], ix["B-PER"]] and allowed[ix["U-LOC"], ix["U-PER"]] and allowed[ix["L-LOC"], ix["O"]]
    assert allowed[ix["B-PER"], ix["I-PER"]] and allowed[ix["I-PER"], ix["L-PER"]]
    assert not allowed[ix["O"], ix["I-PER"]] and not allowed[ix["O"], ix["L-PER"]]
    assert not allowed[ix["B-PER"], ix["L-LOC"]] and not allowed[ix["B-PER"], ix["O"]]
    assert [t for t in tags if start[ix[t]]] == ["O", "B-LOC", "U-LOC", "B-PER", "U-PER"]
    assert [t for t in tags if end[ix[t]]] == ["O", "L-LOC", "U-LOC", "L-PER", "U-PER"]


def test_bert_ner_decoding_never_yields_an_invalid_sequence():
    for seed in range(300):
        rng = numpy.random.default_rng(seed)
        labels = ["PER", "ORG", "LOC"][: 1 + seed % 3]
        decoder = BiluoDecoder(make_tags(labels))
        n = int(rng.integers(1, 15))
        probs = numpy.exp(random_log_probs(rng, n, len(decoder.tags)))
        sent_starts = [i == 0 or bool(rng.random() < 0.2) for i in range(n)]
        for starts in (None, sent_starts):
            path = decoder.decode_probs(probs, starts)
            tags = [decoder.tags[i] for i in path]
            assert len(tags) == n
            assert valid_biluo(tags, starts), (seed, tags)
            tags_to_entities(tags)  # does not raise


def test_bert_ner_decoding_handles_zero_probabilities_and_empty_input():
    decoder = BiluoDecoder(make_tags(["PER"]))
    probs = numpy.zeros((3, 5))
    probs[:, 2] = 1.0  # all mass on I-PER, which can never start a sequence
    tags = [decoder.tags[i] for i in decoder.decode_probs(probs)]
    assert valid_biluo(tags)
    assert decoder.decode_probs(numpy.zeros((0, 5))) == []


def test_bert_ner_viterbi_is_the_best_valid_path():
    tags = make_tags(["A", "B"])
    decoder = BiluoDecoder(tags)
    for seed in range(40):
        rng = numpy.random.default_rng(1000 + seed)
        n = 1 + seed % 4
        log_probs = random_log_probs(rng, n, len(tags))
        best = max(
            path_score(log_probs, p) for p in itertools.product(range(len(tags)), repeat=n) if valid_biluo([tags[i] for i in p])
        )
        path = decoder.decode(log_probs)
        assert valid_biluo([tags[i] for i in path])
        assert math.isclose(path_score(log_probs, path), best, rel_tol=1e-9, abs_tol=1e-9), seed


def test_bert_ner_viterbi_with_general_transition_scores():
    """The generic routine adds transition/start/end scores, not only masks."""
    rng = numpy.random.default_rng(7)
    n_tags, n = 3, 4
    emissions, transitions = rng.normal(size=(n, n_tags)), rng.normal(size=(n_tags, n_tags))
    start, end = rng.normal(size=n_tags), rng.normal(size=n_tags)

    def score(p):
        return (
            start[p[0]]
            + end[p[-1]]
            + sum(emissions[i, t] for i, t in enumerate(p))
            + sum(transitions[a, b] for a, b in zip(p, p[1:]))
        )

    brute = max(itertools.product(range(n_tags), repeat=n), key=score)
    assert tuple(viterbi(emissions, transitions, start, end)) == brute


# --- annotations from hand-made probabilities ----------------------------------------


def make_pipe(labels=("LOC", "PER"), threshold: float = 0.0):
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("bert_ner", config={"threshold": threshold})
    for label in labels:
        pipe.add_label(label)
    return nlp, pipe


def one_hot_probs(tags: Sequence[str], chosen: Sequence[str], confidence: Sequence[float]) -> numpy.ndarray:
    """Each row puts ``confidence`` on the chosen tag and spreads the rest evenly."""
    probs = numpy.zeros((len(chosen), len(tags)), dtype="float32")
    for i, (tag, p) in enumerate(zip(chosen, confidence)):
        probs[i, :] = (1.0 - p) / (len(tags) - 1)
        probs[i, tags.index(tag)] = p
    return probs


def test_bert_ner_sets_ents_confidences_and_span_group():
    nlp, pipe = make_pipe()
    tags = list(pipe.tags)
    doc = Doc(nlp.vocab, words=["anna", "smith", "lives", "in", "rome"])
    probs = one_hot_probs(tags, ["B-PER", "L-PER", "O", "O", "U-LOC"], [0.9, 0.7, 0.99, 0.99, 0.6])
    pipe.set_annotations([doc], [probs])
    assert [(e.text, e.label_) for e in doc.ents] == [("anna smith", "PER"), ("rome", "LOC")]
    assert [round(e._.confidence, 6) for e in doc.ents] == [0.8, 0.6]
    # the extension is stored per span, so a fresh Span object reads it too
    assert Span(doc, 0, 2, label="PER")._.confidence == pytest.approx(0.8)
    group = doc.spans["bert_ner"]
    assert [(s.start, s.end, s.label_) for s in group] == [(0, 2, "PER"), (4, 5, "LOC")]
    assert group.attrs["scores"] == pytest.approx([0.8, 0.6])
    assert all(0.0 <= s <= 1.0 for s in group.attrs["scores"])


def test_bert_ner_threshold_drops_low_confidence_entities():
    nlp, pipe = make_pipe(threshold=0.65)
    tags = list(pipe.tags)
    doc = Doc(nlp.vocab, words=["anna", "smith", "lives", "in", "rome"])
    probs = one_hot_probs(tags, ["B-PER", "L-PER", "O", "O", "U-LOC"], [0.9, 0.7, 0.99, 0.99, 0.6])
    pipe.set_annotations([doc], [probs])
    assert [e.text for e in doc.ents] == ["anna smith"]
    assert doc.spans["bert_ner"].attrs["scores"] == pytest.approx([0.8])
    assert doc[4].ent_iob_ == "O"
    pipe.threshold = 0.0
    pipe.set_annotations([doc], [probs])
    assert [e.text for e in doc.ents] == ["anna smith", "rome"]
    with pytest.raises(ValueError):
        pipe.threshold = 1.5


def test_bert_ner_temperature_changes_confidences_not_entities():
    nlp, pipe = make_pipe()
    tags = list(pipe.tags)
    words = ["anna", "smith", "lives", "in", "rome"]
    probs = one_hot_probs(tags, ["B-PER", "L-PER", "O", "O", "U-LOC"], [0.9, 0.7, 0.99, 0.99, 0.6])
    confidences = {}
    for temperature in (0.5, 1.0, 2.0, 4.0):
        pipe.temperature = temperature
        doc = Doc(nlp.vocab, words=words)
        pipe.set_annotations([doc], [probs])
        assert [(e.start, e.end, e.label_) for e in doc.ents] == [(0, 2, "PER"), (4, 5, "LOC")]
        confidences[temperature] = [e._.confidence for e in doc.ents]
        assert doc.spans["bert_ner"].attrs["scores"] == confidences[temperature]
    assert confidences[1.0] == pytest.approx([0.8, 0.6])
    # by hand: the 0.6 row has 0.4 / 8 on each other tag; at T = 2 its tag gets
    # sqrt(0.6) / (sqrt(0.6) + 8 * sqrt(0.05))
    assert confidences[2.0][1] == pytest.approx(0.6**0.5 / (0.6**0.5 + 8 * 0.05**0.5))
    # a higher temperature softens, a lower one sharpens
    assert confidences[0.5] > confidences[1.0] > confidences[2.0] > confidences[4.0]
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            pipe.temperature = bad
    nlp2 = spacy.blank("en")
    assert nlp2.add_pipe("bert_ner", config={"temperature": 1.7}).temperature == 1.7


def test_bert_ner_entities_do_not_cross_sentence_boundaries():
    nlp, pipe = make_pipe()
    tags = list(pipe.tags)
    words = ["see", "anna", "smith", "now"]
    probs = one_hot_probs(tags, ["O", "B-PER", "L-PER", "O"], [0.9, 0.9, 0.9, 0.9])
    doc = Doc(nlp.vocab, words=words)
    pipe.set_annotations([doc], [probs])
    assert [e.text for e in doc.ents] == ["anna smith"]
    doc = Doc(nlp.vocab, words=words, sent_starts=[True, False, True, False])
    pipe.set_annotations([doc], [probs])
    assert not any(e.start < 2 < e.end for e in doc.ents)
    assert "anna smith" not in [e.text for e in doc.ents]


def test_bert_ner_loss_masks_tokens_without_gold_tags():
    nlp, pipe = make_pipe(labels=("PER",))
    tags = list(pipe.tags)  # O, B-PER, I-PER, L-PER, U-PER
    words = ["anna", "smith", "is", "here"]
    gold = Doc(nlp.vocab, words=words, ents=["B-PER", "I-PER", "O", None])
    example = Example(Doc(nlp.vocab, words=words), gold)
    probs = numpy.full((4, len(tags)), 0.2, dtype="float32")
    loss, d_scores = pipe.get_loss([example], [probs])
    assert loss == pytest.approx(-math.log(0.2))  # mean over the 3 labelled tokens
    grad = d_scores[0]
    assert numpy.allclose(grad[3], 0.0)  # the token without a gold tag
    assert grad[0, tags.index("B-PER")] == pytest.approx((0.2 - 1.0) / 3)
    assert grad[1, tags.index("L-PER")] == pytest.approx((0.2 - 1.0) / 3)
    assert grad[2, tags.index("O")] == pytest.approx((0.2 - 1.0) / 3)
    assert grad[2, tags.index("U-PER")] == pytest.approx(0.2 / 3)


def test_bert_ner_component_bytes_keep_labels():
    nlp, pipe = make_pipe()
    nlp2 = spacy.blank("en")
    pipe2 = nlp2.add_pipe("bert_ner")
    pipe2.from_bytes(pipe.to_bytes(exclude=["model", "vocab"]), exclude=["model", "vocab"])
    assert pipe2.labels == ("LOC", "PER") and pipe2.tags == pipe.tags


def test_bert_ner_trains_with_any_tok2vec():
    """No transformer: hash embeddings of NORM learn the toy names."""
    from thinc.api import Adam

    from ..util import toy_sentences

    nlp = spacy.blank("en")
    tok2vec = {
        "@architectures": "spacy.MultiHashEmbed.v2",
        "width": 32,
        "attrs": ["NORM"],
        "rows": [500],
        "include_static_vectors": False,
    }
    model = {"@architectures": "spacy_bert_ner.TokenClassifier.v1", "tok2vec": tok2vec}
    pipe = nlp.add_pipe("bert_ner", config={"model": model})
    examples = [
        Example(Doc(nlp.vocab, words=words), Doc(nlp.vocab, words=words, ents=tags)) for words, tags in toy_sentences(40, seed=5)
    ]
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.02)
    assert pipe.labels == ("LOC", "ORG", "PER") and len(pipe.tags) == 13
    losses_per_step = []
    for _ in range(25):
        losses = {}
        nlp.update(examples, sgd=optimizer, losses=losses)
        losses_per_step.append(losses["bert_ner"])
    assert losses_per_step[-1] < losses_per_step[0] / 2
    assert nlp.evaluate(examples)["ents_f"] > 0.9


# --- a trained pipeline ---------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_bert_ner(tiny_bert, toy_corpus, tmp_path_factory) -> Path:
    """transformer + bert_ner trained on the toy task with configs/bert-ner-cpu.cfg."""
    from spacy.cli.train import train

    out = tmp_path_factory.mktemp("trained_bert_ner")
    overrides = tiny_overrides(tiny_bert, toy_corpus, steps=TRAIN_STEPS)
    overrides["paths.train_log"] = str(out / "train-log.jsonl")
    train(BERT_NER_CONFIG, out, overrides=overrides)
    return out / "model-last"


@pytest.fixture(scope="module")
def bert_ner_nlp(trained_bert_ner):
    return spacy.load(trained_bert_ner)


def toy_gold(nlp, toy_corpus) -> List[Doc]:
    from spacy_bert_ner.formats.docbin import read_docbin

    return list(read_docbin(toy_corpus / "test.spacy", nlp.vocab))


def test_bert_ner_learns_the_toy_task(bert_ner_nlp, toy_corpus, trained_bert_ner):
    from spacy_bert_ner.evaluation.evaluate import evaluate

    assert bert_ner_nlp.pipe_names == ["transformer", "bert_ner"]
    assert isinstance(bert_ner_nlp.get_pipe("bert_ner"), BertNER)
    result = evaluate(bert_ner_nlp, toy_corpus / "test.spacy", train_log=trained_bert_ner.parent / "train-log.jsonl")
    assert result["ents_f"] > 0.8, result
    assert result["steps"] == TRAIN_STEPS


def test_bert_ner_confidences_lie_in_unit_interval(bert_ner_nlp, toy_corpus):
    from spacy_bert_ner.evaluation.evaluate import predict_gold_tokens

    docs = predict_gold_tokens(bert_ner_nlp, toy_gold(bert_ner_nlp, toy_corpus))
    confidences = [e._.confidence for d in docs for e in d.ents]
    assert confidences and all(0.0 <= c <= 1.0 for c in confidences)
    for doc in docs:
        assert doc.spans["bert_ner"].attrs["scores"] == [e._.confidence for e in doc.ents]
    report = calibration_report(docs, toy_gold(bert_ner_nlp, toy_corpus), n_bins=5)
    assert report.n_entities == len(confidences) and report.skipped == 0
    assert 0.0 <= report.ece <= 1.0
    from_path = calibrate_pipeline(bert_ner_nlp, toy_corpus / "test.spacy", n_bins=5)
    assert from_path.to_dict()["ece"] == pytest.approx(report.ece) and from_path.extra["docs"] == len(docs)


def test_tag_log_probs_decode_to_the_pipelines_entities(bert_ner_nlp, toy_corpus):
    """The probes' tag log-probabilities are the pipe's own: decoded, they give its entities."""
    from spacy_bert_ner.evaluation.evaluate import predict_gold_tokens, tag_log_probs
    from spacy_bert_ner.pipeline.decoding import tags_to_entities

    gold = toy_gold(bert_ner_nlp, toy_corpus)
    pipe = bert_ner_nlp.get_pipe("bert_ner")
    log_probs = tag_log_probs(bert_ner_nlp, gold, batch_size=7)
    assert [lp.shape for lp in log_probs] == [(len(doc), len(pipe.tags)) for doc in gold]
    for lp in log_probs:
        numpy.testing.assert_allclose(numpy.exp(lp).sum(axis=1), 1.0, rtol=1e-4)
    predicted = predict_gold_tokens(bert_ner_nlp, gold)
    for lp, doc in zip(log_probs, predicted):
        ents = tags_to_entities([pipe.tags[i] for i in pipe.decoder.decode(lp)])
        assert ents == [(e.start, e.end, e.label_) for e in doc.ents]


def test_bert_ner_calibrate_cli_writes_reliability_table(trained_bert_ner, toy_corpus, tmp_path):
    import json

    from typer.testing import CliRunner

    from spacy_bert_ner.cli import app

    out, md = tmp_path / "calibration.json", tmp_path / "calibration.md"
    result = CliRunner().invoke(
        app,
        [
            "calibrate",
            str(trained_bert_ner),
            str(toy_corpus / "test.spacy"),
            "-o",
            str(out),
            "--markdown",
            str(md),
            "--bins",
            "5",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert len(data["bins"]) == 5 and sum(b["count"] for b in data["bins"]) == data["n_entities"] > 0
    assert 0.0 <= data["ece"] <= data["mce"] <= 1.0
    assert "ECE" in md.read_text()


def test_bert_ner_calibrate_cli_refuses_a_pipeline_without_bert_ner(trained_ner, toy_corpus):
    from typer.testing import CliRunner

    from spacy_bert_ner.cli import app

    result = CliRunner().invoke(app, ["calibrate", str(trained_ner), str(toy_corpus / "test.spacy")])
    assert result.exit_code == 1
    assert "no bert_ner component" in " ".join(result.output.split())


def test_bert_ner_calibrate_cli_can_skip_a_pipeline_without_bert_ner(trained_ner, toy_corpus, tmp_path):
    import json

    from typer.testing import CliRunner

    from spacy_bert_ner.cli import app

    out = tmp_path / "calibration.json"
    args = ["calibrate", str(trained_ner), str(toy_corpus / "test.spacy"), "-o", str(out), "--skip-without-bert-ner"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "no bert_ner component" in json.loads(out.read_text())["skipped"]


def test_bert_ner_save_and_load_give_identical_predictions(bert_ner_nlp, tmp_path):
    texts = ["anna works at acme .", "", "we met boris and carla yesterday", "the office of globex is in rome"]

    def predictions(nlp):
        return [[(e.start, e.end, e.label_, e._.confidence) for e in doc.ents] for doc in nlp.pipe(texts)]

    before = predictions(bert_ner_nlp)
    assert any(before)
    bert_ner_nlp.to_disk(tmp_path / "saved")
    assert predictions(spacy.load(tmp_path / "saved")) == before
    reloaded = spacy.blank("en").from_config(bert_ner_nlp.config)
    reloaded.from_bytes(bert_ner_nlp.to_bytes())
    assert predictions(reloaded) == before


def test_bert_ner_loads_through_entry_points(trained_bert_ner):
    """A fresh interpreter finds the factory without importing the package (no --code)."""
    code = (
        "import sys, spacy; nlp = spacy.load(sys.argv[1]); doc = nlp('anna works at acme .');"
        "assert 'spacy_bert_ner.pipeline.bert_ner' in sys.modules; print([e._.confidence is not None for e in doc.ents])"
    )
    out = subprocess.run([sys.executable, "-c", code, str(trained_bert_ner)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


def test_bert_ner_threshold_on_a_trained_pipeline(bert_ner_nlp, toy_corpus):
    from spacy_bert_ner.evaluation.evaluate import predict_gold_tokens

    gold = toy_gold(bert_ner_nlp, toy_corpus)
    pipe = bert_ner_nlp.get_pipe("bert_ner")
    all_ents = {
        (i, e.start, e.end, e.label_, e._.confidence)
        for i, d in enumerate(predict_gold_tokens(bert_ner_nlp, gold))
        for e in d.ents
    }
    confidences = sorted({c for *_, c in all_ents})
    assert len(confidences) > 1
    threshold = (confidences[len(confidences) // 2 - 1] + confidences[len(confidences) // 2]) / 2
    pipe.threshold = threshold
    try:
        kept = {
            (i, e.start, e.end, e.label_, e._.confidence)
            for i, d in enumerate(predict_gold_tokens(bert_ner_nlp, gold))
            for e in d.ents
        }
    finally:
        pipe.threshold = 0.0
    assert kept and kept < all_ents
    assert kept == {e for e in all_ents if e[-1] >= threshold}


def test_bert_ner_nlp_evaluate_returns_ents_scores(bert_ner_nlp, toy_corpus):
    from spacy_bert_ner.evaluation.evaluate import blank_copy

    examples = [Example(blank_copy(g, bert_ner_nlp.vocab), g) for g in toy_gold(bert_ner_nlp, toy_corpus)]
    scores = bert_ner_nlp.evaluate(examples)
    assert {"ents_f", "ents_p", "ents_r", "ents_per_type"} <= set(scores)
    assert scores["ents_f"] > 0.8


# --- calibration ----------------------------------------------------------------------


def test_bert_ner_calibration_reliability_table_by_hand():
    confidences = [0.05, 0.15, 0.15, 0.95, 0.95, 0.95, 0.95, 1.0]
    correct = [False, True, False, True, True, True, False, True]
    report = reliability_table(confidences, correct, n_bins=10)
    counts = [b.count for b in report.bins]
    assert counts == [1, 2, 0, 0, 0, 0, 0, 0, 0, 5]
    assert report.bins[1].accuracy == pytest.approx(0.5) and report.bins[1].mean_confidence == pytest.approx(0.15)
    assert report.bins[9].accuracy == pytest.approx(0.8) and report.bins[9].mean_confidence == pytest.approx(0.96)
    assert report.bins[2].accuracy is None and report.bins[2].gap is None
    # ECE = (1 * 0.05 + 2 * 0.35 + 5 * 0.16) / 8
    assert report.ece == pytest.approx(0.19375)
    assert report.mce == pytest.approx(0.35)
    assert report.n_correct == 5 and report.accuracy == pytest.approx(5 / 8)
    assert "MCE 35.00" in report.markdown()
    assert report.to_dict()["bins"][9]["gap"] == pytest.approx(0.16)
    with pytest.raises(ValueError):
        reliability_table([1.2], [True])


def test_bert_ner_calibration_from_docs():
    nlp = spacy.blank("en")
    words = ["anna", "met", "boris", "in", "rome"]
    gold = Doc(nlp.vocab, words=words, ents=["B-PER", "O", "B-PER", "O", "B-LOC"])
    pred = Doc(nlp.vocab, words=words)
    pred.ents = [Span(pred, 0, 1, "PER"), Span(pred, 2, 3, "ORG"), Span(pred, 3, 5, "LOC")]
    for ent, confidence in zip(pred.ents, [0.9, 0.3, None]):
        ent._.confidence = confidence
    report = calibration_report([pred], [gold], n_bins=2)
    assert report.n_entities == 2 and report.skipped == 1 and report.n_correct == 1
    assert [b.count for b in report.bins] == [1, 1]
    # bin 0: confidence 0.3, wrong; bin 1: confidence 0.9, right
    assert report.ece == pytest.approx((0.3 + 0.1) / 2)


def test_bert_ner_fit_temperature_recovers_an_overconfident_model():
    # one-token entities whose softmax was sharpened: true accuracy 0.7 for
    # every entity, but the model says 0.7 ** (1 / 0.4) normalised, i.e. far more
    rng = numpy.random.default_rng(0)
    n, true_t = 4000, 2.5
    raw = numpy.array([0.7, 0.2, 0.1])
    sharpened = raw**true_t / (raw**true_t).sum()
    entities = EntityProbs(
        rows=numpy.tile(sharpened, (n, 1)),
        ids=numpy.zeros(n, dtype="int64"),
        entity=numpy.arange(n),
        correct=rng.random(n) < 0.7,
    )
    assert entities.confidences(1.0)[0] == pytest.approx(sharpened[0])
    temperature, before, after = fit_temperature(entities)
    assert temperature == pytest.approx(true_t, rel=0.05)
    assert after < before
    assert entities.confidences(temperature).mean() == pytest.approx(entities.correct.mean(), abs=0.01)
    # multi-token entities average their tokens' tempered probabilities
    two = EntityProbs(
        rows=numpy.array([[0.9, 0.1], [0.5, 0.5]]),
        ids=numpy.array([0, 1]),
        entity=numpy.array([0, 0]),
        correct=numpy.array([True]),
    )
    assert two.confidences(1.0) == pytest.approx([0.7])
    # a calibrated model keeps temperature 1 rather than a worse fit
    calibrated = EntityProbs(
        rows=numpy.tile(raw, (n, 1)), ids=numpy.zeros(n, dtype="int64"), entity=numpy.arange(n), correct=numpy.arange(n) < 0.7 * n
    )
    t, _, _ = fit_temperature(calibrated)
    assert t == pytest.approx(1.0, rel=0.05)
    assert log_loss(numpy.array([1.0, 0.0]), numpy.array([True, False])) < 1e-5
    with pytest.raises(ValueError):
        fit_temperature(EntityProbs(numpy.zeros((0, 3)), numpy.zeros(0, "int64"), numpy.zeros(0, "int64"), numpy.zeros(0, bool)))


def test_bert_ner_calibrate_cli_fits_and_saves_the_temperature(trained_bert_ner, toy_corpus, tmp_path):
    import json
    import shutil

    from typer.testing import CliRunner

    from spacy_bert_ner.cli import app

    model = tmp_path / "model"
    shutil.copytree(trained_bert_ner, model)
    before = spacy.load(model)
    gold_path = str(toy_corpus / "test.spacy")
    out, md = tmp_path / "calibration.json", tmp_path / "calibration.md"
    args = [
        "calibrate",
        str(model),
        gold_path,
        "-o",
        str(out),
        "--markdown",
        str(md),
        "--bins",
        "5",
        "--fit-temperature",
        "--update-model",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["temperature"] > 0 and data["model_updated"] is True
    assert data["log_loss"] <= data["before"]["log_loss"]
    assert data["n_entities"] == data["before"]["n_entities"] > 0
    assert "Before: temperature 1.0" in md.read_text()
    after = spacy.load(model)
    assert after.get_pipe("bert_ner").temperature == pytest.approx(data["temperature"])
    # same entities, confidences from the fitted temperature
    from spacy_bert_ner.evaluation.evaluate import predict_gold_tokens

    gold = toy_gold(before, toy_corpus)
    docs_before, docs_after = predict_gold_tokens(before, gold), predict_gold_tokens(after, gold)
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in docs_before] == [
        [(e.start, e.end, e.label_) for e in d.ents] for d in docs_after
    ]
    from spacy_bert_ner.evaluation.calibrate import calibration_report

    assert calibration_report(docs_after, gold, n_bins=5).ece == pytest.approx(data["ece"], abs=1e-4)
    assert calibration_report(docs_before, gold, n_bins=5).ece == pytest.approx(data["before"]["ece"], abs=1e-4)
    # --update-model needs --fit-temperature and a directory
    result = CliRunner().invoke(app, ["calibrate", str(model), gold_path, "--update-model"])
    assert result.exit_code == 1 and "--fit-temperature" in result.output
    with pytest.raises(ValueError, match="config.cfg"):
        set_model_temperature(tmp_path / "nowhere", 2.0)
    with pytest.raises(ValueError, match="positive"):
        set_model_temperature(model, 0.0)


def test_predicted_docs_carry_no_hidden_states_unless_asked(trained_bert_ner, tmp_path):
    from spacy.tokens import DocBin

    text = "anna works at acme in paris ."
    nlp = spacy.load(trained_bert_ner)
    doc = nlp(text)
    assert len(doc._.trf_data.tensors) == 0 and doc.ents
    small = len(DocBin(docs=[doc], store_user_data=True).to_bytes())
    nlp.get_pipe("bert_ner").keep_trf_data = True
    kept = nlp(text)
    assert kept._.trf_data.model_output.last_hidden_state.shape[-1] > 0
    assert [(e.text, e.label_) for e in kept.ents] == [(e.text, e.label_) for e in doc.ents]
    assert len(DocBin(docs=[kept], store_user_data=True).to_bytes()) > 3 * small
    kept_by_config = spacy.load(trained_bert_ner, config={"components": {"bert_ner": {"keep_trf_data": True}}})
    assert len(kept_by_config(text)._.trf_data.tensors)


def test_decoding_skips_viterbi_only_where_the_argmax_is_the_viterbi_path():
    from spacy_bert_ner.pipeline.decoding import BiluoDecoder, make_tags, viterbi

    decoder = BiluoDecoder(make_tags(["LOC", "PER"]))
    rng = numpy.random.default_rng(0)
    n_tags = len(decoder.tags)
    for trial in range(400):
        n = int(rng.integers(1, 12))
        logits = rng.normal(size=(n, n_tags)) * (8.0 if trial % 2 else 1.0)  # peaked (argmax often valid) or flat
        log_probs = logits - numpy.log(numpy.exp(logits).sum(axis=1, keepdims=True))
        assert decoder.decode(log_probs) == viterbi(log_probs, decoder.transitions, decoder.start, decoder.end)
    tied = numpy.log(numpy.full((3, n_tags), 1.0 / n_tags))  # all ties: Viterbi decides
    assert decoder.decode(tied) == viterbi(tied, decoder.transitions, decoder.start, decoder.end)
