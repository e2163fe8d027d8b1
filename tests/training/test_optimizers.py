import numpy
import pytest
from thinc.api import Config, Model, Optimizer
from spacy.util import registry

from spacy_bert_ner.training.optimizers import HeadScaledOptimizer, is_head_param


def _first_step(optimizer: Optimizer, key) -> numpy.ndarray:
    weights = numpy.zeros((3,), dtype="f")
    gradient = numpy.asarray([1.0, -2.0, 0.5], dtype="f")
    new, _ = optimizer(key, weights.copy(), gradient.copy())
    return new - weights


def test_head_params_are_thinc_names_and_torch_params_are_dotted():
    assert is_head_param((3, "W"))
    assert is_head_param((3, "E"))
    assert not is_head_param((7, "encoder.layer.0.attention.self.query.weight"))
    assert not is_head_param((7, "embeddings.word_embeddings.weight"))


def test_head_lr_scale_scales_only_the_head():
    cfg = {"optimizer": {"@optimizers": "spacy_bert_ner.Adam.v1", "learn_rate": 0.01,
                         "head_lr_scale": 10.0, "L2": 0.0, "use_averages": False}}
    optimizer = registry.resolve(Config(cfg))["optimizer"]
    assert isinstance(optimizer, HeadScaledOptimizer)
    # Adam's first step moves every weight by about learn_rate (times the scale)
    head = _first_step(optimizer, (1, "W"))
    body = _first_step(optimizer, (2, "encoder.layer.0.output.dense.weight"))
    numpy.testing.assert_allclose(numpy.abs(body), 0.01, rtol=1e-3)
    numpy.testing.assert_allclose(numpy.abs(head), 0.1, rtol=1e-3)
    assert (numpy.sign(head) == -numpy.sign([1.0, -2.0, 0.5])).all()


def test_scale_one_is_thincs_adam():
    settings = {"learn_rate": 0.001, "L2": 0.01, "use_averages": False}
    ours = registry.resolve(Config({"o": {"@optimizers": "spacy_bert_ner.Adam.v1", **settings}}))["o"]
    theirs = registry.resolve(Config({"o": {"@optimizers": "Adam.v1", **settings}}))["o"]
    for key in ((1, "W"), (2, "encoder.weight")):
        weights = numpy.linspace(-1, 1, 5, dtype="f")
        for step in range(3):
            gradient = numpy.cos(weights * (step + 1)).astype("f")
            mine, _ = ours(key, weights.copy(), gradient.copy())
            ref, _ = theirs(key, weights.copy(), gradient.copy())
            numpy.testing.assert_allclose(mine, ref, rtol=1e-6)
            weights = mine


def test_scale_applies_to_a_real_thinc_layer_update():
    """Through Model.finish_update, the path spaCy's training takes."""
    from thinc.api import Linear

    updates = {}
    for scale in (1.0, 5.0):
        model: Model = Linear(2, 3)
        model.initialize()
        before = model.get_param("W").copy()
        optimizer = HeadScaledOptimizer(0.01, head_lr_scale=scale, L2=0.0, use_averages=False)
        _, backprop = model.begin_update(numpy.ones((4, 3), dtype="f"))
        backprop(numpy.ones((4, 2), dtype="f"))
        model.finish_update(optimizer)
        updates[scale] = numpy.abs(model.get_param("W") - before).max()
    assert updates[5.0] == pytest.approx(5 * updates[1.0], rel=1e-3)


def test_head_lr_scale_must_be_positive():
    with pytest.raises(ValueError, match="head_lr_scale"):
        HeadScaledOptimizer(0.001, head_lr_scale=0.0)


def test_pipeline_keys_split_into_transformer_and_head(tiny_bert, toy_corpus):
    """In the shipped bert_ner config, every transformer weight is 'pretrained' and
    every head / casing-feature weight is 'head'."""
    import spacy
    from spacy.training import Corpus

    from ..util import CONFIG_DIR

    config = Config().from_disk(CONFIG_DIR / "bert-ner-cpu.cfg", overrides={"paths.transformer": str(tiny_bert)})
    assert config["training"]["optimizer"]["@optimizers"] == "spacy_bert_ner.Adam.v1"
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    examples = list(Corpus(str(toy_corpus / "train.spacy"))(nlp))[:8]
    nlp.initialize(lambda: examples)

    seen = []

    class Recording(HeadScaledOptimizer):
        def __call__(self, key, weights, gradient, *, lr_scale=1.0):
            seen.append((key, is_head_param(key)))
            return super().__call__(key, weights, gradient, lr_scale=lr_scale)

    optimizer = Recording(1e-4, head_lr_scale=10.0, use_averages=False)
    # two updates: the head starts at zero weights, so the first sends the transformer no gradient
    for _ in range(2):
        nlp.update(examples, sgd=optimizer)
    shim_ids = {shim.id for node in nlp.get_pipe("transformer").model.walk() for shim in node.shims}
    transformer = [key for key, head in seen if not head]
    head = [key for key, head in seen if head]
    assert transformer and head
    assert all(key[0] in shim_ids for key in transformer)
    head_nodes = {node.id for node in nlp.get_pipe("bert_ner").model.walk()}
    assert {key[0] for key in head} <= head_nodes
    assert any(name == "E" for _, name in head)  # the casing hash embeddings
