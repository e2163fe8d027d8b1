"""The runtime setting a transformer model carries, and its lazily built engine."""

from typing import Any, Callable, Optional

from thinc.model import Model, deserialize_attr, serialize_attr

RUNTIMES = ("fp32", "int8", "onnx", "onnx-int8")


def check_runtime(runtime: str) -> str:
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    return runtime


class RuntimeState:
    """Kept in the transformer model's ``attrs``: the runtime's name and the
    engine built for the current weights. Serialising it writes nothing, so a
    saved pipeline's runtime is always what its config (or the loader) says."""

    ATTR = "spacy_bert_ner_runtime"

    def __init__(self, runtime: str = "fp32") -> None:
        self.runtime = check_runtime(runtime)
        self._engine: Optional[Callable] = None
        self._source: Optional[int] = None

    def set(self, runtime: str) -> None:
        self.runtime = check_runtime(runtime)
        self.forget()

    def forget(self) -> None:
        """Drop the engine (new weights, or another runtime): it is rebuilt on use."""
        self._engine = None
        self._source = None

    def engine(self, hf_model: Any) -> Callable:
        """The engine of this runtime for ``hf_model``, built on first use."""
        if self._engine is None or self._source != id(hf_model):
            from spacy_bert_ner.runtime.engines import build_engine

            self._engine = build_engine(self.runtime, hf_model)
            self._source = id(hf_model)
        return self._engine


@serialize_attr.register(RuntimeState)
def _serialize_state(_: RuntimeState, value: RuntimeState, name: str, model: Model) -> bytes:
    return b""


@deserialize_attr.register(RuntimeState)
def _deserialize_state(default: RuntimeState, value: bytes, name: str, model: Model) -> RuntimeState:
    default.forget()  # the weights are being replaced
    return default
