"""Entity scores equal seqeval's (default mode) on the same predictions."""

import random

import pytest
import spacy
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

from spacy_bert_ner.evaluation.scoring import markdown_table, score_docs, score_entities
from spacy_bert_ner.formats.docbin import make_doc
from spacy_bert_ner.formats.schemes import spans_to_tags


def _random_spans(rng, n, labels):
    spans, i = [], 0
    while i < n:
        if rng.random() < 0.35:
            length = rng.randint(1, min(3, n - i))
            spans.append((i, i + length, rng.choice(labels)))
            i += length
        else:
            i += 1
    return spans


def _perturb(rng, spans, n, labels):
    """Predictions: most gold spans kept, some relabelled, some stretched, some dropped, a few spurious."""
    candidates = []
    for s, e, label in spans:
        r = rng.random()
        if r < 0.6:
            candidates.append((s, e, label))
        elif r < 0.75:
            candidates.append((s, e, rng.choice(labels)))
        elif r < 0.9 and e < n:
            candidates.append((s, e + 1, label))
    candidates += [sp for sp in _random_spans(rng, n, labels) if rng.random() < 0.1]
    out, end = [], 0
    for s, e, label in sorted(candidates):
        if s >= end:
            out.append((s, e, label))
            end = e
    return out


@pytest.mark.parametrize("seed", range(5))
def test_scores_equal_seqeval(seed):
    rng = random.Random(seed)
    labels = ["PER", "LOC", "ORG", "geo"]
    nlp = spacy.blank("en")
    gold_docs, pred_docs, y_true, y_pred = [], [], [], []
    for _ in range(200):
        n = rng.randint(1, 15)
        words = [f"w{i}" for i in range(n)]
        gold = _random_spans(rng, n, labels)
        pred = sorted(_perturb(rng, gold, n, labels))
        gold_docs.append(make_doc(nlp.vocab, [(words, gold)]))
        pred_docs.append(make_doc(nlp.vocab, [(words, pred)]))
        y_true.append(spans_to_tags(gold, n))
        y_pred.append(spans_to_tags(pred, n))
    ours = score_docs(gold_docs, pred_docs)
    assert ours["ents_p"] == pytest.approx(precision_score(y_true, y_pred))
    assert ours["ents_r"] == pytest.approx(recall_score(y_true, y_pred))
    assert ours["ents_f"] == pytest.approx(f1_score(y_true, y_pred))
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    for label, s in ours["ents_per_type"].items():
        assert s["p"] == pytest.approx(report[label]["precision"])
        assert s["r"] == pytest.approx(report[label]["recall"])
        assert s["f"] == pytest.approx(report[label]["f1-score"])
        assert s["support"] == report[label]["support"]


def test_scores_match_spacy_scorer():
    from spacy.scorer import get_ner_prf
    from spacy.training import Example

    nlp = spacy.blank("en")
    words = ["a", "b", "c", "d"]
    gold = make_doc(nlp.vocab, [(words, [(0, 2, "PER"), (3, 4, "LOC")])])
    pred = make_doc(nlp.vocab, [(words, [(0, 2, "PER"), (2, 3, "LOC")])])
    spacy_scores = get_ner_prf([Example(pred, gold)])
    ours = score_docs([gold], [pred])
    for key in ("ents_p", "ents_r", "ents_f"):
        assert ours[key] == pytest.approx(spacy_scores[key])


def test_no_predictions_and_table():
    scores = score_entities([([(0, 1, "PER")], [])])
    assert (scores["ents_p"], scores["ents_r"], scores["ents_f"]) == (0.0, 0.0, 0.0)
    table = markdown_table(scores)
    assert "| PER | 0.00 | 0.00 | 0.00 | 1 |" in table


def test_mismatched_tokens_are_rejected():
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="differ"):
        score_docs([make_doc(nlp.vocab, [(["a"], [])])], [make_doc(nlp.vocab, [(["b"], [])])])
