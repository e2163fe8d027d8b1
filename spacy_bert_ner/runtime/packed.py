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

from typing import Any, Optional


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
    tokenizer's padding gives.
    """
    import torch
    import torch.nn.functional as F

    ids = torch.as_tensor(input_ids, dtype=torch.long)
    mask = torch.as_tensor(attention_mask).bool()
    rows, length = ids.shape
    lengths = mask.sum(dim=1)
    width = int(lengths.max()) if rows else 0
    if width == 0:
        return torch.zeros((rows, length, hf_model.config.hidden_size))
    ids, mask = ids[:, :width], mask[:, :width]
    types = None if token_type_ids is None else torch.as_tensor(token_type_ids, dtype=torch.long)[:, :width]
    positions = mask.reshape(-1).nonzero().squeeze(1)
    config = hf_model.config
    heads = config.num_attention_heads
    head_width = config.hidden_size // heads
    # keys of padded positions get -inf before the softmax; (rows, 1, 1, width)
    key_bias = torch.zeros((rows, 1, 1, width))
    key_bias.masked_fill_(~mask[:, None, None, :], float("-inf"))
    with torch.inference_mode():
        embedded = hf_model.embeddings(input_ids=ids, token_type_ids=types)
        hidden = embedded.reshape(rows * width, -1).index_select(0, positions)
        padded = torch.zeros((rows * width, config.hidden_size), dtype=hidden.dtype)
        for layer in hf_model.encoder.layer:
            attention = layer.attention.self
            scattered = []
            for projection in (attention.query, attention.key, attention.value):
                states = padded.index_copy(0, positions, projection(hidden))
                scattered.append(states.view(rows, width, heads, head_width).transpose(1, 2))
            context = F.scaled_dot_product_attention(*scattered, attn_mask=key_bias)
            context = context.transpose(1, 2).reshape(rows * width, config.hidden_size).index_select(0, positions)
            attended = layer.attention.output(context, hidden)
            hidden = layer.output(layer.intermediate(attended), attended)
        out = torch.zeros((rows * length, config.hidden_size), dtype=hidden.dtype)
        full_positions = (positions // width) * length + positions % width
        out.index_copy_(0, full_positions, hidden)
    return out.view(rows, length, config.hidden_size)
