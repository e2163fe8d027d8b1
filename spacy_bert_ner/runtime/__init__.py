"""How the transformer runs at inference: ``fp32`` (PyTorch as trained), ``int8``
(PyTorch dynamic quantization of the ``Linear`` layers), ``onnx`` (ONNX Runtime
with its BERT graph fusions) and ``onnx-int8`` (the same, with dynamically
quantized int8 matrix products).

The runtime is a setting of ``spacy_bert_ner.TransformerModel.v1``
(``[components.transformer.model] runtime``), so it can be chosen when a
pipeline is loaded (``spacy.load(path, config=...)``, :func:`load`) or changed
on a loaded one (:func:`set_runtime`). It never changes what is saved: the
PyTorch model stays the fp32 model that was trained, and the int8 module or
ONNX Runtime InferenceSession is built from it, lazily, beside it. Training needs ``fp32``.
"""

from typing import Any, Dict, List, Optional, Union

from spacy_bert_ner.runtime.state import RUNTIMES, RuntimeState, check_runtime

__all__ = ["RUNTIMES", "RuntimeState", "check_runtime", "require_runtime", "set_runtime", "transformer_runtimes", "load"]


def _runtime_states(nlp: Any) -> Dict[str, RuntimeState]:
    """The runtime state of every transformer (enabled or not) built by
    ``spacy_bert_ner.TransformerModel.v1``, by component name."""
    states = {}
    for name, component in nlp.components:
        model = getattr(component, "model", None)
        if model is not None and isinstance(model.attrs.get(RuntimeState.ATTR), RuntimeState):
            states[name] = model.attrs[RuntimeState.ATTR]
    return states


def transformer_runtimes(nlp: Any) -> Dict[str, str]:
    """``{component name: runtime}`` of the pipeline's transformers."""
    return {name: state.runtime for name, state in _runtime_states(nlp).items()}


def require_runtime(runtime: str) -> str:
    """``runtime`` when it is known and what it needs is installed; otherwise
    ``ValueError``, or ``ImportError`` naming the extra to install."""
    check_runtime(runtime)
    if runtime != "fp32":
        from spacy_bert_ner.runtime.engines import require

        require(runtime)
    return runtime


def set_runtime(nlp: Any, runtime: str) -> List[str]:
    """Run every transformer of ``nlp`` with ``runtime`` from now on; returns
    their names. The weights are untouched; an int8 module or ONNX Runtime InferenceSession is
    built at the next prediction."""
    require_runtime(runtime)
    states = _runtime_states(nlp)
    if not states:
        raise ValueError(
            f"runtime {runtime!r}: the pipeline {nlp.pipe_names} has no transformer built by "
            "spacy_bert_ner.TransformerModel.v1, so its runtime cannot be chosen"
        )
    for state in states.values():
        state.set(runtime)
    return list(states)


def load(model: Union[str, Any], runtime: Optional[str] = None, **kwargs: Any) -> Any:
    """``spacy.load(model, **kwargs)``, then :func:`set_runtime` when ``runtime`` is given."""
    import spacy

    nlp = spacy.load(model, **kwargs)
    if runtime is not None:
        set_runtime(nlp, runtime)
    return nlp
