"""The distillation term of bert_ner's loss: a teacher's probabilities on the reference Docs."""

import numpy
import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example

from spacy_bert_ner.formats.docbin import read_docbin, write_docbin
from spacy_bert_ner.pipeline.bert_ner import check_distillation
from spacy_bert_ner.pipeline.soft_targets import aligned_targets, distillation_term, set_teacher_probs, teacher_probs


def _softmax(z):
    e = numpy.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 0.5])
def test_the_gradient_is_the_derivative_of_the_term_by_the_logits(temperature):
    rng = numpy.random.default_rng(0)
    z = rng.normal(size=(4, 5))
    q = _softmax(rng.normal(size=(3, 5)))
    rows = numpy.array([0, 2, 3])
    _, grad = distillation_term(_softmax(z), rows, q, temperature)
    numeric = numpy.zeros_like(z)
    eps = 1e-5
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            up, down = z.copy(), z.copy()
            up[i, j] += eps
            down[i, j] -= eps
            numeric[i, j] = (
                distillation_term(_softmax(up), rows, q, temperature)[0]
                - distillation_term(_softmax(down), rows, q, temperature)[0]
            ) / (2 * eps)
    numpy.testing.assert_allclose(grad, numeric, atol=1e-4)
    assert not grad[1].any()  # a row without a teacher target gets no gradient


def test_teacher_probabilities_survive_a_docbin(tmp_path):
    nlp = spacy.blank("en")
    doc = Doc(nlp.vocab, words=["Anna", "lives", "in", "Paris"])
    doc.ents = [Span(doc, 3, 4, label="LOC")]
    probs = _softmax(numpy.random.default_rng(1).normal(size=(4, 9)))
    set_teacher_probs(doc, probs, ["O"] + [f"{p}-{label}" for label in ("LOC", "PER") for p in "BILU"])
    write_docbin([doc], tmp_path / "taught.spacy", store_user_data=True)
    (back,) = read_docbin(tmp_path / "taught.spacy", nlp.vocab)
    got, tags = teacher_probs(back)
    numpy.testing.assert_allclose(got, probs, atol=1e-3)  # stored as float16
    assert tags[0] == "O" and tags[-1] == "U-PER" and [e.label_ for e in back.ents] == ["LOC"]
    with pytest.raises(ValueError, match="shape"):
        set_teacher_probs(doc, probs[:3], tags)
    with pytest.raises(ValueError, match="non-finite tag probabilities"):
        set_teacher_probs(doc, probs * numpy.nan, tags)


def test_only_tokens_aligned_one_to_one_get_a_teacher_target():
    nlp = spacy.blank("en")
    reference = Doc(nlp.vocab, words=["New", "York-based", "firm"])
    predicted = Doc(nlp.vocab, words=["New", "York", "-", "based", "firm"], spaces=[True, False, False, True, False])
    tags = ["O", "B-ORG", "I-ORG", "L-ORG", "U-ORG"]
    probs = _softmax(numpy.random.default_rng(2).normal(size=(3, 5)))
    set_teacher_probs(reference, probs, tags[::-1])  # the teacher's own column order
    rows, q = aligned_targets(Example(predicted, reference), tags, {})
    assert rows.tolist() == [0, 4]
    numpy.testing.assert_allclose(q, probs[[0, 2]][:, ::-1], atol=2e-3)
    assert aligned_targets(Example(predicted, Doc(nlp.vocab, words=["New", "York-based", "firm"])), tags, {}) is None
    with pytest.raises(ValueError, match="no column for the tags"):
        aligned_targets(Example(predicted, reference), tags + ["U-LOC"], {})


# --- the loss of a bert_ner component -------------------------------------------


@pytest.fixture()
def pipe():
    nlp = spacy.blank("en")
    component = nlp.add_pipe("bert_ner")
    component.cfg["labels"] = ["LOC", "PER"]
    return component


def _examples(pipe, teacher=None, labelled=True):
    """Two Docs with gold entities (or none: unlabelled), and student probabilities for them."""
    rng = numpy.random.default_rng(3)
    examples, scores = [], []
    for words, ents in ((["Anna", "lives", "in", "Paris"], [(0, 1, "PER"), (3, 4, "LOC")]), (["Hello", "Rome"], [(1, 2, "LOC")])):
        reference = Doc(pipe.vocab, words=words)
        if labelled:
            reference.ents = [Span(reference, s, e, label=label) for s, e, label in ents]
        if teacher is not None:
            set_teacher_probs(reference, teacher(reference), pipe.tags)
        examples.append(Example(Doc(pipe.vocab, words=words), reference))
        scores.append(_softmax(rng.normal(size=(len(words), len(pipe.tags)))).astype("float32"))
    return examples, scores


def _one_hot_gold(pipe):
    def teacher(doc):
        gold = Example(doc, doc).get_aligned_ner()
        out = numpy.zeros((len(doc), len(pipe.tags)))
        out[numpy.arange(len(doc)), [pipe.tags.index(t) for t in gold]] = 1.0
        return out

    return teacher


def _uniform(pipe):
    return lambda doc: numpy.full((len(doc), len(pipe.tags)), 1.0 / len(pipe.tags))


def test_a_teacher_that_agrees_with_gold_at_temperature_1_changes_nothing(pipe):
    gold_loss, gold_grad = pipe.get_loss(*_examples(pipe))
    pipe.distillation = check_distillation({"weight": 0.7, "temperature": 1.0})
    loss, grad = pipe.get_loss(*_examples(pipe, _one_hot_gold(pipe)))
    assert loss == pytest.approx(gold_loss, rel=1e-5)  # KL(one-hot || p) is the cross-entropy
    for a, b in zip(grad, gold_grad):
        numpy.testing.assert_allclose(a, b, atol=1e-6)


def test_the_loss_mixes_the_teacher_term_by_its_weight(pipe):
    uniform = _uniform(pipe)
    examples, scores = _examples(pipe, uniform)
    gold_loss, gold_grad = pipe.get_loss(examples, scores)  # the default weight is 0.5
    pipe.distillation = check_distillation({"weight": 0.0, "temperature": 2.0})
    plain_loss, plain_grad = pipe.get_loss(examples, scores)
    assert gold_loss != pytest.approx(plain_loss)  # the teacher term is in the loss
    n = sum(len(eg.predicted) for eg in examples)
    expected_loss = 0.5 * plain_loss
    for probs, plain, mixed in zip(scores, plain_grad, gold_grad):
        term, grad = distillation_term(probs, numpy.arange(len(probs)), uniform(probs), 2.0)
        expected_loss += 0.5 * term / n
        numpy.testing.assert_allclose(mixed, 0.5 * plain + 0.5 * grad / n, atol=1e-6)
    assert gold_loss == pytest.approx(expected_loss, rel=1e-5)


def test_unlabelled_docs_learn_from_the_teacher_alone(pipe):
    pipe.distillation = check_distillation({"weight": 0.5, "temperature": 1.0})
    examples, scores = _examples(pipe, _uniform(pipe), labelled=False)
    assert pipe.get_loss(examples, scores)[0] > 0  # without gold, the teacher's term is the loss
    examples, _ = _examples(pipe, None, labelled=False)
    loss, grad = pipe.get_loss(examples, scores)
    assert loss == 0 and not any(g.any() for g in grad)  # neither gold nor teacher: nothing to learn


def test_distillation_settings_are_checked():
    with pytest.raises(ValueError, match="weight must be in"):
        check_distillation({"weight": 1.5, "temperature": 2.0})
    with pytest.raises(ValueError, match="temperature must be a positive"):
        check_distillation({"weight": 0.5, "temperature": 0})
    with pytest.raises(ValueError, match="unknown distillation settings"):
        check_distillation({"weight": 0.5, "temperature": 2.0, "alpha": 1})
