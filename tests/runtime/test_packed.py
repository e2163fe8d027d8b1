"""The packed-token forward pass gives the Hugging Face states at every real
wordpiece, and the torch runtimes of a BERT-family encoder take it."""

import random

import numpy
import pytest
import spacy
import torch

from spacy_bert_ner.runtime import load
from spacy_bert_ner.runtime import packed as packed_module
from spacy_bert_ner.runtime.engines import build_engine, encode
from spacy_bert_ner.runtime.packed import packed_forward, supports_packing

from ..util import CITIES, ORGS, PEOPLE


def _encoding(tokenizer, n: int, seed: int = 0):
    rng = random.Random(seed)
    words = CITIES + ORGS + PEOPLE + ["in", "at", "the", "met", "."]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 40))) for _ in range(n)]
    encoding = tokenizer(texts, return_tensors="np", padding="longest")
    types = numpy.random.default_rng(seed).integers(0, 2, size=encoding["input_ids"].shape)
    return encoding["input_ids"], encoding["attention_mask"], types * encoding["attention_mask"]


@pytest.mark.parametrize("rows", [1, 3, 40])
def test_packed_forward_gives_the_hf_states_at_real_positions(tiny_bert, rows):
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    model = AutoModel.from_pretrained(str(tiny_bert)).eval()
    assert supports_packing(model)
    ids, mask, types = _encoding(tokenizer, rows, seed=rows)
    with torch.inference_mode():
        expected = model(
            input_ids=torch.as_tensor(ids), attention_mask=torch.as_tensor(mask), token_type_ids=torch.as_tensor(types)
        ).last_hidden_state
    got = packed_forward(model, ids, mask, types)
    real = torch.as_tensor(mask).bool()
    assert got.shape == expected.shape
    assert torch.allclose(got[real], expected[real], atol=1e-5)
    assert bool((got[~real] == 0).all())


def test_packed_forward_with_trailing_padding_columns(tiny_bert):
    """A batch padded past its longest row (as a fixed padding length gives) keeps its shape."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    model = AutoModel.from_pretrained(str(tiny_bert)).eval()
    ids, mask, types = _encoding(tokenizer, 5)
    wide = [numpy.pad(a, ((0, 0), (0, 7))) for a in (ids, mask, types)]
    narrow, padded = packed_forward(model, ids, mask, types), packed_forward(model, *wide)
    assert padded.shape[1] == narrow.shape[1] + 7
    assert torch.allclose(padded[:, : narrow.shape[1]], narrow, atol=1e-6)
    assert bool((padded[:, narrow.shape[1] :] == 0).all())


def test_only_bert_family_encoders_with_absolute_positions_are_packed(tiny_bert, tiny_mpnet):
    from transformers import AutoConfig, AutoModel, BertModel

    bert = AutoModel.from_pretrained(str(tiny_bert))
    assert build_engine("fp32", bert).packed and build_engine("int8", bert).packed
    assert not build_engine("fp32", AutoModel.from_pretrained(str(tiny_mpnet))).packed
    relative = AutoConfig.from_pretrained(str(tiny_bert), position_embedding_type="relative_key")
    assert not supports_packing(BertModel(relative))


def test_the_mpnet_engine_runs_in_length_groups(tiny_mpnet, monkeypatch):
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(tiny_mpnet)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_mpnet))
    monkeypatch.setattr(packed_module, "packed_forward", lambda *a: pytest.fail("MPNet must not be packed"))
    ids, mask, _ = _encoding(tokenizer, 6)
    engine = build_engine("fp32", model)
    out = encode(engine, ids, mask, None)
    real = torch.as_tensor(mask).bool()
    assert torch.allclose(out[real], engine(ids, mask, None)[real], atol=1e-5)


@pytest.mark.parametrize("runtime", ["fp32", "int8"])
def test_the_pipelines_torch_runtimes_take_the_packed_path(two_runs, runtime, monkeypatch):
    calls = []
    original = packed_module.packed_forward

    def recording(model, input_ids, attention_mask, token_type_ids=None):
        calls.append(numpy.shape(input_ids))
        return original(model, input_ids, attention_mask, token_type_ids)

    texts = ["Anna works at Acme in Paris .", "We met Boris", "the office of Globex is in paris ."]
    expected = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in spacy.load(two_runs[0]).pipe(texts)]
    monkeypatch.setattr(packed_module, "packed_forward", recording)
    nlp = load(two_runs[0], runtime=runtime)
    docs = list(nlp.pipe(texts, batch_size=8))
    assert calls and calls[-1][0] == len(texts)  # one packed call for the whole batch
    assert [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in docs] == expected


def test_the_fused_projections_follow_weight_updates(tiny_bert):
    """The side-by-side query/key/value weights are rebuilt when training changes the weights in place."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    model = AutoModel.from_pretrained(str(tiny_bert)).eval()
    ids, mask, types = _encoding(tokenizer, 4)
    real = torch.as_tensor(mask).bool()
    before = packed_forward(model, ids, mask, types)
    with torch.no_grad():
        model.encoder.layer[0].attention.self.value.weight.mul_(-1.0)
        expected = model(
            input_ids=torch.as_tensor(ids), attention_mask=torch.as_tensor(mask), token_type_ids=torch.as_tensor(types)
        ).last_hidden_state
    after = packed_forward(model, ids, mask, types)
    assert not torch.allclose(after[real], before[real], atol=1e-3)
    assert torch.allclose(after[real], expected[real], atol=1e-5)
