"""Wordpieces to spaCy tokens on whole arrays: the alignment spacy-transformers
computes from a fast tokenizer's character offsets, and the case of each
wordpiece (``case_types``), for a whole batch of spans at once.

spacy-transformers' ``get_alignment_via_offset_mapping`` walks every token
and every wordpiece of every span in Python and collects sets; here the same
alignment comes from a few NumPy operations over the batch: each wordpiece's
characters are mapped to the token that owns them (a character belongs to the
last token starting at or before it, if it lies within that token or the one
character after it, exactly as spacy-transformers assigns them), and the
(token, wordpiece) pairs are made unique and sorted. The result is the same
``Ragged``: one row per token of the batch's Docs, in order, holding the
sorted indices of its wordpieces in the flattened (span, position) array.
"""

from typing import List, Sequence

import numpy
from spacy.attrs import IDX, LENGTH
from spacy.tokens import Span
from thinc.types import Ragged


def _wordpiece_chars(offsets: numpy.ndarray):
    """For every character of every wordpiece: the wordpiece's flat index
    (span × padded position) and the character's offset in its span's text."""
    starts = offsets[..., 0].reshape(-1).astype("int64")
    ends = offsets[..., 1].reshape(-1).astype("int64")
    counts = numpy.maximum(ends - starts, 0)
    pieces = numpy.repeat(numpy.arange(starts.size), counts)
    first = numpy.repeat(numpy.cumsum(counts) - counts, counts)
    chars = numpy.repeat(starts, counts) + (numpy.arange(pieces.size) - first)
    return pieces, chars


def offset_alignment(spans: Sequence[Span], offsets: numpy.ndarray) -> Ragged:
    """``get_alignment_via_offset_mapping(spans, offsets)`` on arrays.

    ``spans`` are the batch's spans (flat, Docs in order), ``offsets`` the
    tokenizer's ``(n_spans, n_positions, 2)`` character offsets into each
    span's text.
    """
    if len(spans) != len(offsets):
        raise ValueError("Cannot align batches of different sizes.")
    n_spans, n_positions = offsets.shape[:2]
    # token positions: every token of every Doc that has a span, Docs in order of their first span
    doc_base, n_rows = {}, 0
    doc_arrays = {}
    for span in spans:
        doc = span.doc
        if id(doc) not in doc_base:
            doc_base[id(doc)] = n_rows
            n_rows += len(doc)
            doc_arrays[id(doc)] = doc.to_array([IDX, LENGTH]).astype("int64").reshape(-1, 2)
    # the spans' tokens, concatenated; each span's text gets len(text) + 1 characters of the global char axis
    token_start, token_end, token_row, token_span = [], [], [], []
    char_base = numpy.zeros(n_spans + 1, dtype="int64")
    for s, span in enumerate(spans):
        arrays = doc_arrays[id(span.doc)][span.start : span.end]
        span_idx = span[0].idx if len(span) else 0
        starts = arrays[:, 0] - span_idx + char_base[s]
        token_start.append(starts)
        token_end.append(starts + arrays[:, 1] + 1)
        token_row.append(doc_base[id(span.doc)] + numpy.arange(span.start, span.end, dtype="int64"))
        token_span.append(numpy.full(len(span), s, dtype="int64"))
        char_base[s + 1] = char_base[s] + len(span.text) + 1
    starts, ends = numpy.concatenate(token_start), numpy.concatenate(token_end)
    rows, owner = numpy.concatenate(token_row), numpy.concatenate(token_span)
    pieces, chars = _wordpiece_chars(numpy.asarray(offsets))
    piece_span = pieces // n_positions
    text_length = numpy.diff(char_base) - 1
    inside = chars < text_length[piece_span] + 1
    pieces, chars, piece_span = pieces[inside], chars[inside], piece_span[inside]
    keys = char_base[piece_span] + chars
    token = numpy.searchsorted(starts, keys, side="right") - 1
    found = token >= 0
    token_safe = numpy.where(found, token, 0)
    found &= (keys < ends[token_safe]) & (owner[token_safe] == piece_span)
    pair = numpy.unique(rows[token_safe[found]] * (n_spans * n_positions) + pieces[found])
    row = pair // (n_spans * n_positions)
    lengths = numpy.bincount(row, minlength=n_rows).astype("i")
    return Ragged((pair % (n_spans * n_positions)).astype("i"), lengths)


def case_type_ids(texts: List[str], offsets: numpy.ndarray) -> numpy.ndarray:
    """The case of every wordpiece (see ``transformer.case_type``) from its
    ``(start, end)`` offsets into its text, ``(0, 0)`` for special and
    padding positions (case 0). ASCII pieces are classified on arrays;
    any piece with another character by ``case_type`` itself."""
    from spacy_bert_ner.pipeline.transformer import case_type

    offsets = numpy.asarray(offsets)
    n_texts, n_positions = offsets.shape[:2]
    ids = numpy.zeros((n_texts, n_positions), dtype="int64")
    joined = "\n".join(texts) + "\n"
    codes = numpy.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    text_base = numpy.zeros(n_texts, dtype="int64")
    text_base[1:] = numpy.cumsum([len(text) + 1 for text in texts])[:-1]
    upper = (codes >= 65) & (codes <= 90)
    lower = (codes >= 97) & (codes <= 122)
    other = codes > 127
    cum = [numpy.concatenate(([0], numpy.cumsum(mask, dtype="int64"))) for mask in (upper, lower, other)]
    starts = offsets[..., 0].astype("int64") + text_base[:, None]
    ends = offsets[..., 1].astype("int64") + text_base[:, None]
    piece = ends > starts
    n_upper, n_lower, n_other = (c[ends] - c[starts] for c in cum)
    first_upper = upper[numpy.where(piece, starts, 0)] & piece
    all_upper = (n_upper > 0) & (n_lower == 0) & (ends - starts > 1)
    ids[piece] = numpy.where(first_upper, numpy.where(all_upper, 2, 1), numpy.where(n_upper > 0, 3, 0))[piece]
    for i, j in zip(*numpy.nonzero(piece & (n_other > 0))):
        start, end = offsets[i, j].tolist()
        ids[i, j] = case_type(texts[i][start:end])
    return ids
