"""A BERT encoder forward pass on packed tokens: every dense layer runs on the
real wordpieces of the batch only, one matrix for the whole batch.

A padded batch pays for every position; grouping rows by length
(:func:`~spacy_bert_ner.runtime.engines.encode_in_groups`) cuts the padding
but runs several smaller batches. Here the embeddings' output is packed to
``(tokens, width)``; the query/key/value projections, the attention output,
the feed-forward layers and the layer norms run on that matrix, and only the
attention itself sees the batch as ``(rows, heads, length, head width)``,
with padded keys masked. The states of the real positions are those of the
Hugging Face forward pass (the same modules, the same weights, to float
rounding); positions past a row's end are zeros.

It applies to BERT-family encoders (BERT, MiniLM) with absolute position
embeddings, in eval mode, and works with dynamically quantized ``Linear``
layers (the int8 runtime) since it calls the model's own modules.
"""

from typing import Any, List, Optional

import numpy


def supports_packing(hf_model: Any) -> bool:
    """Whether :func:`packed_forward` can run ``hf_model``."""
    try:
        from transformers.models.bert.modeling_bert import BertModel
    except ImportError:  # pragma: no cover (transformers is a dependency)
        return False
    config = getattr(hf_model, "config", None)
    return (
        type(hf_model) is BertModel
        and config is not None
        and getattr(config, "position_embedding_type", "absolute") == "absolute"
        and not getattr(config, "is_decoder", False)
        and not getattr(config, "add_cross_attention", False)
    )


def packed_forward(hf_model: Any, input_ids: Any, attention_mask: Any, token_type_ids: Optional[Any] = None) -> Any:
    """The last hidden state ``(rows, length, width)`` of ``hf_model`` (a
    ``BertModel`` in eval mode) for a padded batch, computed on packed tokens.

    The mask must be a prefix mask (each row's real wordpieces first), as a
    tokenizer's padding gives. The rows are packed shortest first and the
    attention runs in groups of rows of similar length
    (:func:`~spacy_bert_ner.pipeline.batching.groups_by_length`), each padded
    only to its own longest row.
    """
    import torch

    from spacy_bert_ner.pipeline.batching import groups_by_length

    ids = torch.as_tensor(numpy.asarray(input_ids), dtype=torch.long)
    mask = torch.as_tensor(numpy.asarray(attention_mask)).bool()
    rows, length = ids.shape
    config = hf_model.config
    out = torch.zeros((rows * length, config.hidden_size))
    lengths = mask.sum(dim=1).tolist()
    width = max(lengths, default=0)
    if width == 0:
        return out.view(rows, length, config.hidden_size)
    types = None if token_type_ids is None else torch.as_tensor(numpy.asarray(token_type_ids), dtype=torch.long)
    groups = [_Group(group, lengths) for group in groups_by_length(lengths, max_padding=ATTENTION_PADDING, min_size=1)]
    order = [i for group in groups for i in group.rows]
    for before, group in zip(groups, groups[1:]):
        group.start = before.start + before.tokens
    # the packed tokens: row by row in ``order``, each row's real wordpieces
    positions = torch.cat([torch.arange(lengths[i]) + i * length for i in order])
    with torch.inference_mode():
        embedded = hf_model.embeddings(
            input_ids=ids[:, :width], token_type_ids=None if types is None else types[:, :width]
        ).reshape(rows * width, -1)
        hidden = embedded.index_select(0, (positions // length) * width + positions % length)
        for layer in hf_model.encoder.layer:
            attention = layer.attention.self
            q, k, v = _projections(attention, hidden)
            context = torch.cat([group.attend(q, k, v, config.num_attention_heads) for group in groups])
            attended = layer.attention.output(context, hidden)
            hidden = layer.output(layer.intermediate(attended), attended)
        out.index_copy_(0, positions, hidden)
    return out.view(rows, length, config.hidden_size)


def _projections(attention: Any, hidden: Any) -> Any:
    """The query, key and value projections of ``hidden``: one matrix product
    with the three weights side by side for plain ``Linear`` layers (a wider
    product keeps the cores busier on a small batch), else one each."""
    import torch

    layers = (attention.query, attention.key, attention.value)
    if not all(type(layer) is torch.nn.Linear for layer in layers):
        return tuple(layer(hidden) for layer in layers)
    key = tuple((layer.weight.data_ptr(), layer.weight._version, layer.bias.data_ptr(), layer.bias._version) for layer in layers)
    fused = getattr(attention, FUSED_ATTR, None)
    if fused is None or fused[0] != key:
        weight = torch.cat([layer.weight.detach() for layer in layers])
        bias = torch.cat([layer.bias.detach() for layer in layers])
        fused = (key, weight, bias)
        # kept on the module; rebuilt when any of the weights changes (training updates them in place)
        object.__setattr__(attention, FUSED_ATTR, fused)
    return torch.nn.functional.linear(hidden, fused[1], fused[2]).chunk(3, dim=1)


FUSED_ATTR = "_spacy_bert_ner_fused_qkv"

#: the attention's row groups: at most this share of padding
ATTENTION_PADDING = 0.15


class _Group:
    """Rows of similar length, consecutive in the packed tokens: the attention
    runs on them as one ``(rows, heads, width, head width)`` batch."""

    def __init__(self, rows: List[int], lengths: List[int]) -> None:
        import torch

        self.rows = rows
        own = [lengths[i] for i in rows]
        self.tokens = sum(own)
        self.width = max(own)
        self.padded = self.tokens != self.width * len(rows)
        #: where its tokens start in the packed tokens (set by packed_forward)
        self.start = 0
        if self.padded:
            # where each packed token sits in the group's padded (rows * width) layout
            self.scatter = torch.cat([torch.arange(n) + r * self.width for r, n in enumerate(own)])
            mask = torch.arange(self.width)[None, :] < torch.tensor(own)[:, None]
            self.key_bias = torch.zeros((len(rows), 1, 1, self.width)).masked_fill_(~mask[:, None, None, :], float("-inf"))

    def attend(self, q: Any, k: Any, v: Any, heads: int) -> Any:
        """This group's attention output, ``(tokens, hidden)``, from the batch's packed projections."""
        import torch.nn.functional as F

        start = self.start
        n, hidden = len(self.rows), q.shape[1]
        split = []
        for states in (q, k, v):
            states = states[start : start + self.tokens]
            if self.padded:
                states = states.new_zeros((n * self.width, hidden)).index_copy_(0, self.scatter, states)
            split.append(states.view(n, self.width, heads, hidden // heads).transpose(1, 2))
        context = F.scaled_dot_product_attention(*split, attn_mask=self.key_bias if self.padded else None)
        context = context.transpose(1, 2).reshape(n * self.width, hidden)
        return context.index_select(0, self.scatter) if self.padded else context
