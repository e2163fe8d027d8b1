"""Adam with a separate learning rate for the layers trained from scratch.

A pretrained transformer wants a small learning rate (1e-4 or less); the NER
head and the casing hash embeddings start from random weights and learn slowly
at that rate. thinc's optimizer has one rate for every parameter, but each call
gets a ``lr_scale``: this optimizer sets it per parameter.

Which parameters are "head": thinc calls the optimizer with ``(node_id, name)``
keys. A thinc layer's parameters have plain names (``W``, ``b``, ``E``); the
parameters of a PyTorch module (the Hugging Face transformer, through its shim)
are named by ``named_parameters()``, which always has a dot
(``encoder.layer.0.attention.self.query.weight``). So the head is every
parameter whose name has no dot; a head written in PyTorch would count as
pretrained, which is what the scale means to leave alone anyway.

Layer-wise decay (``layer_lr_decay``): the transformer's layers can also learn
at different rates, the top layer at ``learn_rate`` and each layer below at
``layer_lr_decay`` times the one above, the embeddings lowest. The layer comes
from the parameter name (``encoder.layer.3.`` in BERT/RoBERTa,
``transformer.layer.3.`` in DistilBERT); parameters in no numbered layer and
not in the embeddings (a pooler, a final layer norm) learn at ``learn_rate``.
"""
import re
from typing import Optional, Tuple, cast

from thinc.api import Optimizer
from thinc.optimizers import ADAM_DEFAULTS, FloatOrSeq
from thinc.types import FloatsXd
from spacy.util import registry


def is_head_param(key: Tuple[int, str]) -> bool:
    """Whether an optimizer key names a thinc layer's parameter (not a PyTorch one)."""
    return "." not in str(key[1])


_LAYER_INDEX = re.compile(r"(?:^|\.)layers?\.(\d+)\.")


def transformer_depth(name: str) -> Optional[int]:
    """The layer a transformer parameter belongs to, counted from the bottom:
    0 for the embeddings, ``n + 1`` for ``layer.n``; ``None`` for any other
    parameter (pooler, final norm)."""
    match = _LAYER_INDEX.search(name)
    if match:
        return int(match.group(1)) + 1
    if name.startswith("embeddings.") or ".embeddings." in name:
        return 0
    return None


class HeadScaledOptimizer(Optimizer):
    """thinc's Optimizer, with per-parameter learning-rate scales: thinc-layer
    (head) parameters by ``head_lr_scale``, transformer layers by ``layer_lr_decay``."""

    head_lr_scale: float
    layer_lr_decay: float
    transformer_layers: int

    def __init__(
        self,
        *args,
        head_lr_scale: float = 1.0,
        layer_lr_decay: float = 1.0,
        transformer_layers: int = 0,
        **kwargs,
    ) -> None:
        if head_lr_scale <= 0:
            raise ValueError(f"head_lr_scale must be > 0, got {head_lr_scale}")
        if not 0 < layer_lr_decay <= 1:
            raise ValueError(f"layer_lr_decay must be in (0, 1], got {layer_lr_decay}")
        if layer_lr_decay != 1 and transformer_layers < 1:
            raise ValueError(
                "layer_lr_decay needs transformer_layers, the number of layers of the "
                f"transformer (6 for the MiniLM, 12 for bert-base), got {transformer_layers}"
            )
        super().__init__(*args, **kwargs)
        self.head_lr_scale = float(head_lr_scale)
        self.layer_lr_decay = float(layer_lr_decay)
        self.transformer_layers = int(transformer_layers)

    def layer_scale(self, name: str) -> float:
        """The learning-rate multiplier of a transformer parameter."""
        if self.layer_lr_decay == 1:
            return 1.0
        depth = transformer_depth(name)
        if depth is None:
            return 1.0
        if depth > self.transformer_layers:
            raise ValueError(
                f"Parameter {name!r} is in layer {depth - 1}, but transformer_layers is "
                f"{self.transformer_layers}: set [training.optimizer] transformer_layers "
                "to the transformer's number of layers"
            )
        return self.layer_lr_decay ** (self.transformer_layers - depth)

    def __call__(
        self,
        key: Tuple[int, str],
        weights: FloatsXd,
        gradient: FloatsXd,
        *,
        lr_scale: float = 1.0,
    ):
        if is_head_param(key):
            lr_scale *= self.head_lr_scale
        else:
            lr_scale *= self.layer_scale(str(key[1]))
        return super().__call__(key, weights, gradient, lr_scale=lr_scale)


@registry.optimizers("spacy_bert_ner.Adam.v1")
def adam_v1(
    learn_rate: FloatOrSeq = ADAM_DEFAULTS["learn_rate"],
    *,
    head_lr_scale: float = 1.0,
    layer_lr_decay: float = 1.0,
    transformer_layers: int = 0,
    L2: FloatOrSeq = ADAM_DEFAULTS["L2"],
    beta1: FloatOrSeq = ADAM_DEFAULTS["beta1"],
    beta2: FloatOrSeq = ADAM_DEFAULTS["beta2"],
    eps: FloatOrSeq = ADAM_DEFAULTS["eps"],
    grad_clip: FloatOrSeq = ADAM_DEFAULTS["grad_clip"],
    L2_is_weight_decay: bool = cast(bool, ADAM_DEFAULTS["L2_is_weight_decay"]),
    use_averages: bool = True,
) -> Optimizer:
    """thinc's ``Adam.v1`` plus ``head_lr_scale``: the layers trained from scratch
    (NER head, casing features) learn at ``learn_rate * head_lr_scale`` while the
    transformer learns at ``learn_rate``; the schedule (warmup, decay) applies to
    both. ``head_lr_scale = 1`` is exactly ``Adam.v1``.

    ``layer_lr_decay`` < 1 (with ``transformer_layers``, the transformer's
    number of layers) gives the transformer's top layer ``learn_rate`` and each
    layer below ``layer_lr_decay`` times the rate of the one above; the
    embeddings get ``learn_rate * layer_lr_decay ** transformer_layers``."""
    return HeadScaledOptimizer(
        learn_rate,
        head_lr_scale=head_lr_scale,
        layer_lr_decay=layer_lr_decay,
        transformer_layers=transformer_layers,
        L2=L2,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        grad_clip=grad_clip,
        L2_is_weight_decay=L2_is_weight_decay,
        use_averages=use_averages,
        use_radam=False,
    )
