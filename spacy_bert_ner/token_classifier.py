"""The model of the ``bert_ner`` component: token vectors → tag probabilities."""
from typing import List, Optional

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Dropout, Maxout, Mish, Model, Softmax_v2, chain, with_array
from thinc.types import Floats2d

HIDDEN_ACTIVATIONS = ("maxout", "mish")


@registry.architectures("spacy_bert_ner.TokenClassifier.v1")
def token_classifier_v1(
    tok2vec: Model[List[Doc], List[Floats2d]],
    hidden_width: int = 0,
    hidden_activation: str = "maxout",
    maxout_pieces: int = 2,
    dropout: float = 0.1,
    nO: Optional[int] = None,
) -> Model[List[Doc], List[Floats2d]]:
    """Per-token softmax over the tag set, on top of ``tok2vec``.

    ``tok2vec`` is usually a ``spacy-transformers.TransformerListener.v1`` or
    ``spacy_bert_ner.CasedListener.v1``. ``hidden_width = 0`` puts the softmax
    directly on the token vectors (the usual BERT token-classification head);
    a positive width adds one hidden layer (``maxout`` with ``maxout_pieces``,
    or ``mish``), layer-normalised. ``dropout`` is applied before the softmax
    (during ``nlp.update`` spaCy overrides it with ``[training] dropout``).
    ``nO`` (the number of tags) is normally left ``None`` and set by the
    component from its labels.

    The output is one ``(n_tokens, n_tags)`` array of probabilities per Doc.
    Its backward pass expects the gradient of the cross-entropy with respect
    to the logits, i.e. ``probabilities - truth``.
    """
    if hidden_width < 0:
        raise ValueError(f"hidden_width must be >= 0, got {hidden_width}")
    if hidden_activation not in HIDDEN_ACTIVATIONS:
        raise ValueError(f"hidden_activation must be one of {HIDDEN_ACTIVATIONS}, got {hidden_activation!r}")
    output_layer = Softmax_v2(nO=nO, normalize_outputs=True)
    layers: List[Model] = []
    if hidden_width:
        if hidden_activation == "maxout":
            layers.append(Maxout(nO=hidden_width, nP=maxout_pieces, normalize=True))
        else:
            layers.append(Mish(nO=hidden_width, normalize=True))
    layers.extend([Dropout(dropout), output_layer])
    model: Model[List[Doc], List[Floats2d]] = chain(tok2vec, with_array(chain(*layers)))
    model.name = "token_classifier"
    model.set_ref("tok2vec", tok2vec)
    model.set_ref("output_layer", output_layer)
    return model
