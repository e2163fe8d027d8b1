import numpy
import pytest
import spacy
from spacy.training import Corpus
from thinc.api import Adam, Config

from spacy_bert_ner.architectures import transformer_model_v1

from .util import CONFIG_DIR


def _transformer(tiny_bert, top_layers: int):
    from spacy_transformers.span_getters import configure_strided_spans

    return transformer_model_v1(str(tiny_bert), configure_strided_spans(128, 96), {"use_fast": True}, top_layers=top_layers)


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


@pytest.mark.parametrize("top_layers", [1, 2])
def test_output_is_the_mean_of_the_top_layers(tiny_bert, top_layers):
    nlp = spacy.blank("en")
    docs = [nlp("Anna Smith flew to Paris ."), nlp("Acme Corp hired Bob .")]
    model = _transformer(tiny_bert, top_layers)
    model.initialize(X=docs)
    batch = model.predict(docs)
    hidden = _reference_hidden_states(model, batch)
    assert len(hidden) == 3  # embeddings + 2 layers
    expected = numpy.mean(hidden[-top_layers:], axis=0)
    numpy.testing.assert_allclose(batch.model_output.last_hidden_state, expected, rtol=1e-4, atol=1e-5)
    # only the mean is kept, not every layer
    assert "hidden_states" not in batch.model_output


def test_top_layers_must_fit_the_transformer(tiny_bert):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="top_layers"):
        _transformer(tiny_bert, 0)
    model = _transformer(tiny_bert, 3)
    with pytest.raises(ValueError, match="top_layers is 3, but the transformer has 2 layers"):
        model.initialize(X=[nlp("Anna Smith flew to Paris .")])


def test_bert_ner_trains_and_round_trips_with_top_layers(tiny_bert, toy_corpus, tmp_path):
    config = Config().from_disk(CONFIG_DIR / "bert-ner-cpu.cfg", overrides={"paths.transformer": str(tiny_bert)})
    config["components"]["transformer"]["model"]["@architectures"] = "spacy_bert_ner.TransformerModel.v1"
    config["components"]["transformer"]["model"]["top_layers"] = 2
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    examples = list(Corpus(str(toy_corpus / "train.spacy"))(nlp))[:8]
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.001)  # the config's schedule starts at 0 (warmup)
    shim = nlp.get_pipe("transformer").model.layers[0].shims[0]
    lowest = shim._model.encoder.layer[0].attention.self.query.weight.detach().clone()
    # the head starts at zero weights, so the first update sends the transformer no gradient
    for _ in range(3):
        losses = nlp.update(examples, sgd=optimizer, losses={})
    assert numpy.isfinite(losses["bert_ner"]) and losses["transformer"] > 0
    assert not numpy.allclose(lowest.numpy(), shim._model.encoder.layer[0].attention.self.query.weight.detach().numpy())
    texts = [eg.reference.text for eg in examples]
    before = [numpy.array(doc._.trf_data.model_output.last_hidden_state) for doc in nlp.pipe(texts)]
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert loaded.config["components"]["transformer"]["model"]["top_layers"] == 2
    after = [numpy.array(doc._.trf_data.model_output.last_hidden_state) for doc in loaded.pipe(texts)]
    for a, b in zip(before, after):
        numpy.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
