"""Engines that run a Hugging Face encoder at inference: a callable from
``(input_ids, attention_mask, token_type_ids)`` NumPy arrays to the last hidden
state as a torch tensor.

``int8`` is ``torch.ao.quantization.quantize_dynamic`` of a copy of the model's
``Linear`` layers with per-channel int8 weights, and activations quantized on
the full 8-bit range where the CPU's int8 kernel computes that exactly
(:func:`spacy_bert_ner.runtime.int8.full_range_is_exact`); embeddings and layer norms stay fp32. ``onnx`` exports the model with ``torch.onnx.export`` (its inputs by name;
token type ids included where the model takes them, so ``case_types`` reaches it), applies ONNX Runtime's BERT fusions
(``onnxruntime.transformers.optimizer``: fused embeddings + layer norm,
attention, bias + GELU, skip + layer norm) and runs it in an
``InferenceSession``; ``onnx-int8`` also quantizes its matrix products to int8
(``onnxruntime.quantization.quantize_dynamic``, per channel). ONNX files are
built in a temporary folder at first use and kept in memory.
"""

import copy
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Tuple

import numpy

from spacy_bert_ner.errors import require_extra

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def require(runtime: str) -> None:
    """Raise :class:`~spacy_bert_ner.errors.MissingDependency` naming the extra when ``runtime`` needs what is not installed."""
    if runtime.startswith("onnx"):
        require_extra("onnx", ("onnxruntime", "onnx"), f"runtime {runtime!r}")


def build_engine(runtime: str, hf_model: Any) -> Callable:
    require(runtime)
    if runtime == "fp32":
        return TorchFp32Engine(hf_model)
    if runtime == "int8":
        return TorchInt8Engine(hf_model)
    if runtime in ("onnx", "onnx-int8"):
        return OnnxEngine(hf_model, quantize=runtime == "onnx-int8")
    raise ValueError(f"no engine for runtime {runtime!r}")


def encode(engine: Callable, input_ids: Any, attention_mask: Any, token_type_ids: Optional[Any]) -> Any:
    """The last hidden state of a padded batch, ``(n, length, width)``, the
    fastest way ``engine`` has: on packed tokens for a torch engine of a
    BERT-family encoder (:mod:`spacy_bert_ner.runtime.packed`), else in
    wordpiece-length groups (:func:`encode_in_groups`). Positions past a
    row's end are zeros."""
    if getattr(engine, "packed", False):
        from spacy_bert_ner.runtime.packed import packed_forward

        if engine.model.training:
            engine.model.eval()
        return packed_forward(engine.model, input_ids, attention_mask, token_type_ids)
    return encode_in_groups(engine, input_ids, attention_mask, token_type_ids)


def _as_torch_ids(array: Any) -> Any:
    import torch

    return torch.as_tensor(numpy.asarray(array, dtype="int64"))


class TorchFp32Engine:
    """The model itself, as trained, in eval mode under ``torch.inference_mode``.
    It is left in eval mode: thinc's ``PyTorchShim.begin_update`` puts it back
    in training mode at every update (during ``spacy train`` the dev
    evaluation runs between updates)."""

    def __init__(self, hf_model: Any) -> None:
        from spacy_bert_ner.runtime.packed import supports_packing

        self.model = hf_model
        #: run by :func:`encode` on packed tokens (a BERT-family encoder on the CPU)
        self.packed = supports_packing(hf_model) and all(p.device.type == "cpu" for p in hf_model.parameters())

    def __call__(self, input_ids: Any, attention_mask: Any, token_type_ids: Optional[Any]) -> Any:
        import torch

        device = next(self.model.parameters()).device
        kwargs = {"input_ids": _as_torch_ids(input_ids).to(device), "attention_mask": _as_torch_ids(attention_mask).to(device)}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = _as_torch_ids(token_type_ids).to(device)
        if self.model.training:
            self.model.eval()
        with torch.inference_mode():
            return self.model(**kwargs).last_hidden_state


def encode_in_groups(engine: Callable, input_ids: Any, attention_mask: Any, token_type_ids: Optional[Any]) -> Any:
    """The last hidden state of a padded batch, ``(n, length, width)``, with
    the rows run in groups of similar wordpiece length.

    A batch of sentences sorted by their number of words still mixes very
    different numbers of wordpieces (on WikiANN-en test, batches of 64 are
    45% padding), and every position of the padded batch costs the same.
    Each group is run padded only to its own longest row, so the real
    positions' states are those of the whole batch (attention never looks at
    padding) for a fraction of the work. Positions past a group's longest
    row are zeros.

    The groups' states are put together in NumPy when they are on the CPU: a
    torch copy there is an OpenMP parallel region, whose threads then spin
    and take the cores from ONNX Runtime's own thread pool at its next run.
    """
    import torch

    from spacy_bert_ner.pipeline.batching import groups_by_length

    mask = numpy.asarray(attention_mask)
    lengths = mask.sum(axis=1).astype(int).tolist()
    groups = groups_by_length(lengths, max_padding=GROUP_PADDING, min_size=GROUP_MIN_SIZE)
    if len(groups) == 1:
        return engine(input_ids, attention_mask, token_type_ids)
    ids, types = numpy.asarray(input_ids), None if token_type_ids is None else numpy.asarray(token_type_ids)
    hidden = None
    for group in groups:
        rows = numpy.asarray(group)
        width = max(max(lengths[i] for i in group), 1)
        out = engine(ids[rows, :width], mask[rows, :width], None if types is None else types[rows, :width])
        values = out.numpy() if out.device.type == "cpu" else None
        if hidden is None:
            shape = (len(lengths), mask.shape[1], out.shape[-1])
            on_cpu = values is not None
            hidden = numpy.zeros(shape, dtype=values.dtype) if on_cpu else torch.zeros(shape, dtype=out.dtype, device=out.device)
        if values is not None:
            hidden[rows, :width] = values
        else:
            hidden[torch.as_tensor(rows, device=out.device), :width] = out
    return torch.from_numpy(hidden) if isinstance(hidden, numpy.ndarray) else hidden


# int8 weight scales: one per output channel (True) or one per tensor (False), per runtime;
# benchmarks/int8_granularity.py measures both (docs/runtimes.md)
INT8_PER_CHANNEL = {"int8": True, "onnx-int8": True}

# wordpiece-length groups of encode_in_groups: at most this share of padding, once a group has GROUP_MIN_SIZE rows
GROUP_PADDING = 0.1
GROUP_MIN_SIZE = 8


# activations of the int8 runtime on the full 8-bit range (True), on 7 bits as
# torch's dynamic Linear does (False), or full where the kernel computes it exactly (None)
INT8_FULL_RANGE: Optional[bool] = None


class TorchInt8Engine:
    """A dynamically quantized copy of the model: int8 ``Linear`` weights,
    with a scale per output channel or one per tensor (``INT8_PER_CHANNEL``),
    and int8 activations on the full 8-bit range where the CPU computes it
    exactly (``INT8_FULL_RANGE``, :func:`~spacy_bert_ner.runtime.int8.full_range_is_exact`)."""

    def __init__(self, hf_model: Any, per_channel: Optional[bool] = None, full_range: Optional[bool] = None) -> None:
        import torch
        from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

        from spacy_bert_ner.runtime.int8 import FullRangeLinear, full_range_is_exact

        per_channel = INT8_PER_CHANNEL["int8"] if per_channel is None else per_channel
        full_range = INT8_FULL_RANGE if full_range is None else full_range
        #: activations on the full 8-bit range (else 7 bits, as torch's own dynamic Linear)
        self.full_range = full_range_is_exact() if full_range is None else full_range
        qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
        mapping = {torch.nn.Linear: FullRangeLinear} if self.full_range else None
        fp32 = copy.deepcopy(hf_model).to("cpu").eval()
        with warnings.catch_warnings():  # torch points eager-mode quantization at torchao, which is not a dependency
            warnings.simplefilter("ignore")
            self.model = quantize_dynamic(fp32, {torch.nn.Linear: qconfig}, dtype=torch.qint8, mapping=mapping)
        from spacy_bert_ner.runtime.packed import supports_packing

        #: run by :func:`encode` on packed tokens (a BERT-family encoder)
        self.packed = supports_packing(self.model)

    def __call__(self, input_ids: Any, attention_mask: Any, token_type_ids: Optional[Any]) -> Any:
        import torch

        kwargs = {"input_ids": _as_torch_ids(input_ids), "attention_mask": _as_torch_ids(attention_mask)}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = _as_torch_ids(token_type_ids)
        with torch.inference_mode():
            return self.model(**kwargs).last_hidden_state


def model_inputs(hf_model: Any) -> Tuple[str, ...]:
    """The encoder's inputs among :data:`INPUTS`: ``token_type_ids`` only when
    its ``forward`` takes them (MPNet's third argument is ``position_ids``)."""
    import inspect

    accepted = inspect.signature(hf_model.forward).parameters
    return tuple(name for name in INPUTS if name in accepted)


def _by_name(hf_model: Any, names: Tuple[str, ...]) -> Any:
    """A module calling the encoder with its inputs by name, so the exported
    graph's inputs are what their names say whatever the order of ``forward``'s arguments."""
    import torch

    class ByName(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = hf_model

        def forward(self, *arrays: Any) -> Any:
            return self.encoder(**dict(zip(names, arrays))).last_hidden_state

    return ByName()


def export_onnx(hf_model: Any, path: Path) -> Path:
    """Export the encoder to ONNX with dynamic batch and sequence axes; its
    inputs are :func:`model_inputs`, by name."""
    import torch

    model = copy.deepcopy(hf_model).to("cpu").eval()
    names = model_inputs(model)
    ids = torch.ones((2, 8), dtype=torch.int64)
    examples = tuple(torch.zeros_like(ids) if name == "token_type_ids" else ids for name in names)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*names, "last_hidden_state")}
    with torch.no_grad(), warnings.catch_warnings():  # the TorchScript exporter's deprecation and tracer notes
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _by_name(model, names),
            examples,
            str(path),
            input_names=list(names),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    return path


def optimize_onnx(source: Path, target: Path, hf_config: Any, quantize: bool, per_channel: Optional[bool] = None) -> Path:
    """ONNX Runtime's BERT fusions, then (``quantize``) dynamic int8 matrix products."""
    import onnx
    from onnxruntime.transformers import optimizer

    fused = optimizer.optimize_model(
        str(source), model_type="bert", num_heads=hf_config.num_attention_heads, hidden_size=hf_config.hidden_size
    )
    if not quantize:
        fused.save_model_to_file(str(target))
        return target
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fused_path = target.with_suffix(".fused.onnx")
    fused.save_model_to_file(str(fused_path))
    root = logging.getLogger()
    level = root.level
    # the quantizer logs advice about static pre-processing, which dynamic quantization does not need
    root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            str(fused_path),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=INT8_PER_CHANNEL["onnx-int8"] if per_channel is None else per_channel,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        root.setLevel(level)
    return target


class OnnxEngine:
    """An ONNX Runtime InferenceSession of the exported, fused (and optionally int8) encoder."""

    def __init__(self, hf_model: Any, quantize: bool = False, threads: Optional[int] = None) -> None:
        import onnxruntime
        import torch

        with tempfile.TemporaryDirectory(prefix="spacy-bert-ner-onnx-") as tmp:
            exported = export_onnx(hf_model, Path(tmp) / "model.onnx")
            final = optimize_onnx(exported, Path(tmp) / "final.onnx", hf_model.config, quantize)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads or torch.get_num_threads()
            options.inter_op_num_threads = 1
            self.ort = onnxruntime.InferenceSession(final.read_bytes(), options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.ort.get_inputs()]

    def __call__(self, input_ids: Any, attention_mask: Any, token_type_ids: Optional[Any]) -> Any:
        import torch

        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        if given["token_type_ids"] is None:
            given["token_type_ids"] = numpy.zeros_like(numpy.asarray(input_ids))
        feeds = {name: numpy.asarray(given[name], dtype="int64") for name in self.inputs}
        return torch.from_numpy(self.ort.run(["last_hidden_state"], feeds)[0])
