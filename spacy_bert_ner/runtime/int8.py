"""int8 activations on the full 8 bits for PyTorch's dynamic quantization.

``torch.ao.nn.quantized.dynamic.Linear`` quantizes its input to 7 bits
(``reduce_range=True``): without VNNI, fbgemm multiplies unsigned 8-bit
activations by signed 8-bit weights with ``vpmaddubsw``, whose pairwise sums
saturate at 16 bits once both factors are near their maximum; VNNI
(``vpdpbusd``) sums in 32 bits. Where the kernel is exact, the eighth bit
halves the activations' rounding error at the same speed. Imported by the
``int8`` engine only, so importing the runtime stays free of torch.
"""

import functools
import warnings
from typing import Any

import torch
from torch.ao.nn.quantized.dynamic import Linear
from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic


class FullRangeLinear(Linear):
    """A dynamically quantized ``Linear`` whose activations take the full 8-bit range."""

    def forward(self, x: Any) -> Any:
        return torch.ops.quantized.linear_dynamic(x, self._packed_params._packed_params, reduce_range=False).to(x.dtype)

    def _get_name(self) -> str:
        return "DynamicQuantizedLinearFullRange"


@functools.lru_cache(maxsize=None)
def full_range_is_exact() -> bool:
    """Whether PyTorch's int8 matrix product is exact for activations on the
    full 8-bit range on this CPU: the probe multiplies the saturating case
    (every activation 255, every weight 127) and checks the result."""
    linear = torch.nn.Linear(64, 8)
    with torch.no_grad():
        linear.weight.fill_(1.0)
        linear.bias.zero_()
    with warnings.catch_warnings():  # torch points eager-mode quantization at torchao, which is not a dependency
        warnings.simplefilter("ignore")
        packed = quantize_dynamic(torch.nn.Sequential(linear), {torch.nn.Linear: per_channel_dynamic_qconfig})[0]
        product = torch.ops.quantized.linear_dynamic(torch.ones(4, 64), packed._packed_params._packed_params, reduce_range=False)
    return bool(torch.allclose(product, torch.full_like(product, 64.0), rtol=0.01))
