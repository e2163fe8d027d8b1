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

"""
from typing import Tuple, cast

from thinc.api import Optimizer
from thinc.optimizers import ADAM_DEFAULTS, FloatOrSeq
from thinc.types import FloatsXd
from spacy.util import registry


def is_head_param(key: Tuple[int, str]) -> bool:
    """Whether an optimizer key names a thinc layer's parameter (not a PyTorch one)."""
    return "." not in str(key[1])


class HeadScaledOptimizer(Optimizer):
    """thinc's Optimizer, with thinc-layer (head) parameters' learning rate
    scaled by ``head_lr_scale``."""

    head_lr_scale: float

    def __init__(
        self,
        *args,
        head_lr_scale: float = 1.0,
        **kwargs,
    ) -> None:
        if head_lr_scale <= 0:
            raise ValueError(f"head_lr_scale must be > 0, got {head_lr_scale}")
        super().__init__(*args, **kwargs)
        self.head_lr_scale = float(head_lr_scale)

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
        return super().__call__(key, weights, gradient, lr_scale=lr_scale)


@registry.optimizers("spacy_bert_ner.Adam.v1")
def adam_v1(
    learn_rate: FloatOrSeq = ADAM_DEFAULTS["learn_rate"],
    *,
    head_lr_scale: float = 1.0,
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
    both. ``head_lr_scale = 1`` is exactly ``Adam.v1``."""
    return HeadScaledOptimizer(
        learn_rate,
        head_lr_scale=head_lr_scale,
        L2=L2,
        beta1=beta1,
        beta2=beta2,
        eps=eps,
        grad_clip=grad_clip,
        L2_is_weight_decay=L2_is_weight_decay,
        use_averages=use_averages,
        use_radam=False,
    )
