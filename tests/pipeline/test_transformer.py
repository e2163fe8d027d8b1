import numpy
import pytest
import spacy
from spacy.training import Corpus
from thinc.api import Adam, Config

from spacy_bert_ner.pipeline.transformer import N_CASE_TYPES, case_type, transformer_model_v1

from ..util import CONFIG_DIR


def _transformer(tiny_bert, case_types: bool = False):
    from spacy_transformers.span_getters import configure_strided_spans

    return transformer_model_v1(str(tiny_bert), configure_strided_spans(128, 96), {"use_fast": True}, case_types=case_types)


def _reference_hidden_states(model, batch):
    """The tiny BERT's hidden states on the same wordpieces, straight from transformers."""
    import torch

    wps = batch.wordpieces
    model.transformer.eval()  # no dropout, as in predict
    with torch.no_grad():
        out = model.transformer(
            input_ids=torch.as_tensor(wps.input_ids),
            attention_mask=torch.as_tensor(wps.attention_mask),
            token_type_ids=torch.as_tensor(wps.token_type_ids),
            output_hidden_states=True,
        )
    return [h.numpy() for h in out.hidden_states]


def test_output_is_the_last_hidden_layer(tiny_bert):
    nlp = spacy.blank("en")
    docs = [nlp("Anna Smith flew to Paris ."), nlp("Acme Corp hired Bob .")]
    model = _transformer(tiny_bert)
    model.initialize(X=docs)
    batch = model.predict(docs)
    hidden = _reference_hidden_states(model, batch)
    assert len(hidden) == 3  # embeddings + 2 layers
    numpy.testing.assert_allclose(batch.model_output.last_hidden_state, hidden[-1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "piece,expected",
    [("paris", 0), ("12", 0), (".", 0), ("Paris", 1), ("A", 1), ("McDonald", 1), ("NATO", 2), ("U.S.", 2), ("iPhone", 3)],
)
def test_case_type(piece, expected):
    assert case_type(piece) == expected


def test_case_types_start_from_the_pretrained_model(tiny_bert):
    from spacy_transformers.span_getters import configure_strided_spans

    nlp = spacy.blank("en")
    docs = [nlp("Anna works at ACME in Paris . iLive"), nlp("anna works at acme .")]
    plain = _transformer(tiny_bert, 1)
    cased = transformer_model_v1(str(tiny_bert), configure_strided_spans(128, 96), {"use_fast": True}, case_types=True)
    plain.initialize(X=docs)
    cased.initialize(X=docs)
    assert cased.transformer.embeddings.token_type_embeddings.num_embeddings == N_CASE_TYPES
    assert cased.transformer.config.type_vocab_size == N_CASE_TYPES
    batch = cased.predict(docs)
    # every case row is a copy of the pretrained row 0: same vectors as the plain model
    numpy.testing.assert_allclose(
        batch.model_output.last_hidden_state, plain.predict(docs).model_output.last_hidden_state, rtol=1e-5, atol=1e-6
    )
    # one type per wordpiece, from the original text although the tokenizer lower-cases
    wps = batch.wordpieces
    n = wps.lengths[0]
    assert wps.strings[0][:n] == [
        "[CLS]",
        "anna",
        "works",
        "at",
        "acme",
        "in",
        "paris",
        ".",
        "i",
        "##l",
        "##i",
        "##v",
        "##e",
        "[SEP]",
    ]
    # each piece's own characters: "iLive" is split, and only "##l" is capitalised
    assert wps.token_type_ids[0][:n].tolist() == [0, 1, 0, 0, 2, 0, 1, 0, 0, 1, 0, 0, 0, 0]
    # lower case and padding get type 0
    assert wps.lengths[1] < n and not wps.token_type_ids[1].any()


def test_case_types_need_token_type_embeddings(tiny_bert, tmp_path):
    from spacy_transformers.span_getters import configure_strided_spans
    from transformers import BertTokenizerFast, DistilBertConfig, DistilBertModel

    tokenizer = BertTokenizerFast.from_pretrained(str(tiny_bert))
    config = DistilBertConfig(vocab_size=tokenizer.vocab_size, dim=32, n_layers=1, n_heads=2, hidden_dim=64)
    DistilBertModel(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model = transformer_model_v1(str(tmp_path), configure_strided_spans(128, 96), {"use_fast": True}, case_types=True)
    with pytest.raises(ValueError, match="case_types needs a transformer with token type embeddings"):
        model.initialize(X=[spacy.blank("en")("Anna flew .")])


def test_bert_ner_trains_and_round_trips_with_case_types(tiny_bert, toy_corpus, tmp_path):
    config = Config().from_disk(CONFIG_DIR / "bert-ner-cpu.cfg", overrides={"paths.transformer": str(tiny_bert)})
    config["components"]["transformer"]["model"]["@architectures"] = "spacy_bert_ner.TransformerModel.v1"
    config["components"]["transformer"]["model"]["case_types"] = True
    config["components"]["bert_ner"]["keep_trf_data"] = True
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    examples = list(Corpus(str(toy_corpus / "train.spacy"))(nlp))[:8]
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.01)
    shim = nlp.get_pipe("transformer").model.layers[0].shims[0]
    for _ in range(4):
        nlp.update(examples, sgd=optimizer, losses={})
    rows = shim._model.embeddings.token_type_embeddings.weight.detach().numpy()
    assert rows.shape[0] == N_CASE_TYPES
    assert not numpy.allclose(rows[0], rows[1])  # the capitalised row has learnt something of its own
    texts = [eg.reference.text for eg in examples]
    before = [numpy.array(doc._.trf_data.model_output.last_hidden_state) for doc in nlp.pipe(texts)]
    ents_before = [[(e.text, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert loaded.config["components"]["transformer"]["model"]["case_types"] is True
    after = [numpy.array(doc._.trf_data.model_output.last_hidden_state) for doc in loaded.pipe(texts)]
    for a, b in zip(before, after):
        numpy.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert [[(e.text, e.label_) for e in doc.ents] for doc in loaded.pipe(texts)] == ents_before


class _Payload:
    """Unpickling this would run code: it creates the file named by ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_loading_a_pipeline_never_unpickles_code(two_runs, tmp_path):
    """A transformer weights file that carries a pickled payload is refused, and the payload never runs."""
    import io
    import pickle
    import shutil

    import srsly
    import torch

    model_dir = tmp_path / "model"
    shutil.copytree(two_runs[0], model_dir)
    weights = model_dir / "transformer" / "model"
    msg = srsly.msgpack_loads(weights.read_bytes())
    marker = tmp_path / "payload-ran"
    evil = io.BytesIO()
    torch.save({"embeddings.word_embeddings.weight": _Payload(marker)}, evil)
    replaced = 0
    for shims in msg["shims"]:
        for i, shim_bytes in enumerate(shims):
            shim = srsly.msgpack_loads(shim_bytes)
            shim["state"] = evil.getvalue()
            shims[i] = srsly.msgpack_dumps(shim)
            replaced += 1
    assert replaced == 1
    weights.write_bytes(srsly.msgpack_dumps(msg))
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        spacy.load(model_dir)
    assert not marker.exists()


def _hf_model(nlp):
    return nlp.get_pipe("transformer").model.layers[0].shims[0]._model


def _changed_by_updates(nlp, examples, steps: int = 3) -> set:
    """The names of the encoder's parameters that ``steps`` updates change."""
    import torch

    before = {name: p.detach().clone() for name, p in _hf_model(nlp).named_parameters()}
    optimizer = Adam(0.01)
    for _ in range(steps):
        nlp.update(examples, sgd=optimizer, losses={})
    return {name for name, p in _hf_model(nlp).named_parameters() if not torch.equal(p.detach(), before[name])}


@pytest.mark.parametrize("encoder,config_name", [("tiny_bert", "bert-ner-cpu.cfg"), ("tiny_mpnet", "bert-ner-base-cpu.cfg")])
def test_frozen_layers_keep_their_pretrained_weights(encoder, config_name, toy_corpus, tmp_path, request):
    """frozen_layers = 1: the embeddings and the first layer never change in
    training, the layer above does; also in a pipeline trained on after loading."""
    path = request.getfixturevalue(encoder)
    config = Config().from_disk(CONFIG_DIR / config_name, overrides={"paths.transformer": str(path)})
    config["components"]["transformer"]["model"].update({"case_types": False, "frozen_layers": 1})
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    examples = list(Corpus(str(toy_corpus / "train.spacy"))(nlp))[:8]
    nlp.initialize(lambda: examples)
    names = [name for name, _ in _hf_model(nlp).named_parameters()]
    frozen = {name for name in names if name.startswith(("embeddings.", "encoder.layer.0."))}
    trained = {name for name in names if name.startswith("encoder.layer.1.")}
    assert frozen and trained
    changed = _changed_by_updates(nlp, examples)
    assert trained <= changed and not frozen & changed
    assert all(p.grad is None for name, p in _hf_model(nlp).named_parameters() if name in frozen)
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert loaded.config["components"]["transformer"]["model"]["frozen_layers"] == 1
    changed = _changed_by_updates(loaded, examples, steps=2)
    assert trained <= changed and not frozen & changed


def test_frozen_layers_refusals(tiny_bert):
    from spacy_transformers.span_getters import configure_strided_spans

    spans = configure_strided_spans(128, 96)
    with pytest.raises(ValueError, match="frozen_layers freezes the embeddings, where case_types"):
        transformer_model_v1(str(tiny_bert), spans, {"use_fast": True}, case_types=True, frozen_layers=1)
    with pytest.raises(ValueError, match="frozen_layers must be 0"):
        transformer_model_v1(str(tiny_bert), spans, {"use_fast": True}, frozen_layers=-1)
    model = transformer_model_v1(str(tiny_bert), spans, {"use_fast": True}, frozen_layers=3)
    with pytest.raises(ValueError, match="frozen_layers = 3, but BertModel has 2 layers"):
        model.initialize(X=[spacy.blank("en")("Anna flew .")])
