"""The lean inference path gives what the full path gives: the same entities
and confidences, the same alignment and case ids as spacy-transformers'
Python code, the same hidden states when rows run in wordpiece-length groups,
and, where something reads ``doc._.trf_data``, the full path's data."""

import random

import numpy
import pytest
import spacy
from spacy.tokens import Doc
from spacy_transformers.align import get_alignment_via_offset_mapping
from spacy_transformers.data_classes import FullTransformerBatch
from spacy_transformers.span_getters import configure_strided_spans

from spacy_bert_ner.pipeline.alignment import case_type_ids, offset_alignment
from spacy_bert_ner.pipeline.lean import LazyDocData
from spacy_bert_ner.pipeline.transformer import case_type
from spacy_bert_ner.runtime.engines import encode_in_groups

from ..util import CITIES, ORGS, PEOPLE

WORDS = CITIES + ORGS + PEOPLE + ["in", "at", "the", "met", "and", ".", ",", "U.S.", "Straße", "ÉCOLE", "iPhone", "NATO"]


def _texts(n: int, seed: int = 0):
    rng = random.Random(seed)
    texts = []
    for i in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(1, 30))]
        words = [w.capitalize() if rng.random() < 0.3 else w for w in words]
        texts.append(("  " if i % 7 == 0 else " ").join(words))
    return texts + ["", "anna  " * 150]  # an empty text, and one longer than a 128-token span (overlapping spans)


@pytest.fixture(scope="module")
def nlp(two_runs):
    return spacy.load(two_runs[0])


def _entities(nlp, texts, lean: bool):
    ner = nlp.get_pipe("bert_ner")
    ner.lean = lean
    before = ner.lean_batches
    try:
        docs = list(nlp.pipe(texts, batch_size=16))
    finally:
        ner.lean = True
    return [[(e.start_char, e.end_char, e.label_, e._.confidence) for e in doc.ents] for doc in docs], ner.lean_batches - before


def test_lean_path_gives_the_full_paths_entities_and_confidences(nlp):
    texts = _texts(120)
    full, lean_batches_full = _entities(nlp, texts, lean=False)
    lean, lean_batches = _entities(nlp, texts, lean=True)
    assert lean_batches_full == 0 and lean_batches == 8  # every batch of 16 took the lean path
    assert sum(map(len, full)) > 0
    for a, b in zip(full, lean):
        assert [e[:3] for e in a] == [e[:3] for e in b]
        assert all(abs(x[3] - y[3]) <= 1e-5 for x, y in zip(a, b))


def test_nlp_call_takes_the_lean_path_too(nlp):
    text = "anna works at acme in paris ."
    ner = nlp.get_pipe("bert_ner")
    before = ner.lean_batches
    doc = nlp(text)
    assert ner.lean_batches == before + 1
    (full,), _ = _entities(nlp, [text], lean=False)
    assert [(e.start_char, e.end_char, e.label_) for e in doc.ents] == [e[:3] for e in full]


def test_kept_transformer_data_is_the_full_paths(nlp):
    """With keep_trf_data the lazy views materialise spacy-transformers' own split of the batch."""
    texts = _texts(20, seed=3)
    ner = nlp.get_pipe("bert_ner")
    ner.keep_trf_data = True
    try:
        docs = [nlp.make_doc(t) for t in texts]
        transformer = nlp.get_pipe("transformer")
        batch = transformer.predict(docs)
        reference = FullTransformerBatch.split_by_doc(batch)
        transformer.set_annotations(docs, batch)
        for doc, expected in zip(docs, reference):
            data = doc._.trf_data
            assert isinstance(data, LazyDocData)
            assert numpy.array_equal(data.align.dataXd, expected.align.dataXd)
            assert numpy.array_equal(data.align.lengths, expected.align.lengths)
            assert numpy.array_equal(data.wordpieces.input_ids, expected.wordpieces.input_ids)
            if len(doc):
                assert numpy.array_equal(data.model_output.last_hidden_state, expected.model_output.last_hidden_state)
    finally:
        ner.keep_trf_data = False


def _spans_and_offsets(tiny_bert, texts):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    nlp = spacy.blank("en")
    docs = [nlp.make_doc(t) for t in texts] + [Doc(nlp.vocab, words=["x"] * 200)]
    spans = [span for doc_spans in configure_strided_spans(128, 96)(docs) for span in doc_spans]
    encoding = tokenizer([s.text for s in spans], return_offsets_mapping=True, return_tensors="np", padding="longest")
    return spans, encoding["offset_mapping"]


def test_offset_alignment_equals_spacy_transformers(tiny_bert):
    spans, offsets = _spans_and_offsets(tiny_bert, _texts(80, seed=1))
    expected = get_alignment_via_offset_mapping(spans, offsets)
    got = offset_alignment(spans, offsets)
    assert numpy.array_equal(got.lengths, expected.lengths)
    assert numpy.array_equal(got.dataXd, expected.dataXd)


def test_case_type_ids_on_arrays_equal_case_type_of_each_piece(tiny_bert):
    spans, offsets = _spans_and_offsets(tiny_bert, _texts(80, seed=2) + ["Ünïcödé ÉCOLE école Straße x\u00a0Y"])
    texts = [s.text for s in spans]
    ids = case_type_ids(texts, offsets)
    for i, text in enumerate(texts):
        for j, (start, end) in enumerate(offsets[i].tolist()):
            assert ids[i, j] == (case_type(text[start:end]) if end > start else 0)


@pytest.mark.parametrize("runtime", ["fp32", "onnx"])
def test_rows_in_length_groups_get_the_whole_batchs_hidden_states(tiny_bert, runtime):
    import torch
    from transformers import AutoModel, AutoTokenizer

    from spacy_bert_ner.runtime.engines import build_engine

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    model = AutoModel.from_pretrained(str(tiny_bert)).eval()
    texts = sorted(_texts(60, seed=4), key=len)
    encoding = tokenizer(texts, return_tensors="np", padding="longest")
    engine = build_engine(runtime, model)
    shapes = []

    def recording(input_ids, attention_mask, token_type_ids):
        shapes.append(numpy.shape(input_ids))
        return engine(input_ids, attention_mask, token_type_ids)

    whole = engine(encoding["input_ids"], encoding["attention_mask"], encoding["token_type_ids"])
    grouped = encode_in_groups(recording, encoding["input_ids"], encoding["attention_mask"], encoding["token_type_ids"])
    mask = torch.as_tensor(encoding["attention_mask"]).bool()
    assert len(shapes) > 1 and sum(rows * width for rows, width in shapes) < encoding["input_ids"].size
    assert grouped.shape == whole.shape and grouped.dtype == whole.dtype
    assert torch.allclose(grouped[mask], whole[mask], atol=1e-5)
