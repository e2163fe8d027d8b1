"""Soft targets for ``bert_ner``: a teacher's tag probabilities stored on the
reference Docs of a training corpus, and the distillation term of the loss.

A teacher pipeline (``spacy_bert_ner.training.distillation``) writes, for every
token of a training Doc, its probability of each BILUO tag into
``doc.user_data`` (float16, with the teacher's tag names). Training a
``bert_ner`` on that corpus mixes the usual cross-entropy with the gold tags
and the cross-entropy with the teacher's probabilities, both softened by a
temperature ``T`` (Hinton et al. 2015):

    loss = (1 - weight) * CE(gold, p) + weight * T² * KL(q_T || p_T)

where ``p_T = softmax(log p / T)`` is the student's and ``q_T`` the teacher's
tempered distribution. Its gradient with respect to the student's logits is
``T * (p_T - q_T)`` per token. Docs without teacher probabilities (a normal
corpus) give the plain gold loss; Docs without gold tags (unlabelled text)
give the teacher term alone.
"""

from typing import Dict, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc
from spacy.training import Example

PROBS_KEY = "spacy_bert_ner.teacher_probs"
TAGS_KEY = "spacy_bert_ner.teacher_tags"


def set_teacher_probs(doc: Doc, probs: numpy.ndarray, tags: Sequence[str]) -> None:
    """Store a teacher's ``(len(doc), n_tags)`` tag probabilities on ``doc``."""
    probs = numpy.asarray(probs)
    if probs.shape != (len(doc), len(tags)):
        raise ValueError(f"teacher probabilities of shape {probs.shape} for a Doc of {len(doc)} tokens and {len(tags)} tags")
    if not numpy.isfinite(probs).all():
        raise ValueError(f"the teacher gave non-finite tag probabilities for the Doc {doc.text[:60]!r}: is the teacher broken?")
    doc.user_data[PROBS_KEY] = probs.astype("float16")
    doc.user_data[TAGS_KEY] = "|".join(tags)


def teacher_probs(doc: Doc) -> Optional[Tuple[numpy.ndarray, Tuple[str, ...]]]:
    """The teacher's probabilities and tag names stored on ``doc``, or None."""
    probs = doc.user_data.get(PROBS_KEY)
    if probs is None:
        return None
    return numpy.asarray(probs, dtype="float32"), tuple(doc.user_data[TAGS_KEY].split("|"))


def column_order(teacher_tags: Sequence[str], tags: Sequence[str], cache: Dict) -> numpy.ndarray:
    """The teacher's column of each of ``tags``; a tag the teacher lacks is an error."""
    key = (tuple(teacher_tags), tuple(tags))
    if key not in cache:
        index = {tag: i for i, tag in enumerate(teacher_tags)}
        missing = [tag for tag in tags if tag not in index]
        if missing:
            raise ValueError(f"the teacher's probabilities have no column for the tags {missing}: the teacher lacks their labels")
        cache[key] = numpy.asarray([index[tag] for tag in tags], dtype="int64")
    return cache[key]


def aligned_targets(example: Example, tags: Sequence[str], cache: Dict) -> Optional[Tuple[numpy.ndarray, numpy.ndarray]]:
    """``(rows, q)``: the predicted tokens that align one-to-one with a
    reference token, and the teacher's probabilities for them in the order of
    ``tags``; None when the reference carries none."""
    stored = teacher_probs(example.reference)
    if stored is None:
        return None
    probs, teacher_tags = stored
    probs = probs[:, column_order(teacher_tags, tags, cache)]
    probs = probs / numpy.maximum(probs.sum(axis=1, keepdims=True), 1e-12)  # float16 storage and dropped tags
    x2y, y2x = example.alignment.x2y, example.alignment.y2x
    one_to_one = x2y.lengths == 1
    targets = numpy.full(len(example.predicted), -1, dtype="int64")
    targets[one_to_one] = x2y.data.ravel()[numpy.cumsum(x2y.lengths)[one_to_one] - 1]
    rows = numpy.flatnonzero((targets >= 0) & (y2x.lengths[numpy.maximum(targets, 0)] == 1))
    return rows, probs[targets[rows]]


def tempered(probs: numpy.ndarray, temperature: float) -> numpy.ndarray:
    """``softmax(log probs / temperature)`` row by row."""
    if temperature == 1.0:
        return probs
    logits = numpy.log(numpy.maximum(probs, 1e-12)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = numpy.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def distillation_term(
    probs: numpy.ndarray, rows: numpy.ndarray, q: numpy.ndarray, temperature: float
) -> Tuple[float, numpy.ndarray]:
    """The summed ``T² * KL(q_T || p_T)`` over ``rows`` of the student's
    probabilities ``probs``, and its gradient with respect to the student's
    logits (``T * (p_T - q_T)`` on those rows, 0 elsewhere)."""
    grad = numpy.zeros(probs.shape, dtype="float32")
    if not len(rows):
        return 0.0, grad
    p_t = tempered(numpy.asarray(probs[rows], dtype="float64"), temperature)
    q_t = tempered(numpy.asarray(q, dtype="float64"), temperature)
    kl = (q_t * (numpy.log(numpy.maximum(q_t, 1e-12)) - numpy.log(numpy.maximum(p_t, 1e-12)))).sum()
    grad[rows] = temperature * (p_t - q_t)
    return float(temperature**2 * kl), grad
