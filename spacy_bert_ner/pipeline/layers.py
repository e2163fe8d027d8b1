"""Registered layers of the ``bert_ner`` model: the listener with casing
features beside it, and the token classifier (token vectors → tag probabilities)."""

from typing import Callable, List, Optional, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Dropout, Model, Softmax_v2, chain, with_array
from thinc.types import Floats2d


@registry.architectures("spacy_bert_ner.TokenClassifier.v1")
def token_classifier_v1(
    tok2vec: Model[List[Doc], List[Floats2d]],
    dropout: float = 0.1,
    nO: Optional[int] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """Per-token softmax over the tag set, on top of ``tok2vec``.

    ``tok2vec`` is usually a ``spacy-transformers.TransformerListener.v1`` or
    ``spacy_bert_ner.CasedListener.v1``. The softmax sits directly on the
    token vectors, as in the usual BERT token-classification head. ``dropout``
    is applied before the softmax (during ``nlp.update`` spaCy overrides it with
    ``[training] dropout``).
    ``nO`` (the number of tags) is normally left ``None`` and set by the
    component from its labels.

    The output is one ``(n_tokens, n_tags)`` array of probabilities per Doc.
    Its backward pass expects the gradient of the cross-entropy with respect
    to the logits, i.e. ``probabilities - truth``.
    """
    output_layer = Softmax_v2(nO=nO, normalize_outputs=True)
    model: Model[List[Doc], List[Floats2d]] = chain(tok2vec, with_array(chain(Dropout(dropout), output_layer)))
    model.name = "token_classifier"
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("output_layer", output_layer)
    return model


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
    Y = [ops.xp.hstack((xa if xa.shape[0] else ops.alloc2f(xb.shape[0], width_a), xb)) for xa, xb in zip(Xa, Xb)]

    def backprop(dY: List[Floats2d]) -> List[Doc]:
        dXa = [dy[:, :width_a] if shape[0] else ops.alloc2f(*shape) for dy, shape in zip(dY, shapes_a)]
        dXb = [ops.xp.ascontiguousarray(dy[:, width_a:]) for dy in dY]
        backprop_a([ops.xp.ascontiguousarray(d) for d in dXa])
        backprop_b(dXb)
        return []

    return Y, backprop
