"""Length-sorted batching for inference.

A transformer pads every batch to its longest input, so a batch that mixes a
5-token sentence with a 100-token one spends most of its work on padding.
:func:`pipe_by_length` reads a buffer of inputs, runs them through ``nlp.pipe``
shortest first, and yields the results in the original order. Memory is
bounded by the buffer; after each buffer the memory PyTorch freed is given
back to the system (:func:`spacy_bert_ner.runtime.memory.release_memory`).
"""

from typing import Any, Iterable, Iterator, List, Sequence, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import minibatch

from spacy_bert_ner.runtime.memory import release_memory


def pipe_by_length(
    nlp: Language,
    items: Iterable[Any],
    batch_size: int = 64,
    buffer: int = 2048,
    as_tuples: bool = False,
) -> Iterator[Any]:
    """Like ``nlp.pipe(items, batch_size=..., as_tuples=...)``, same order out.

    ``items`` are texts or Docs (or ``(text_or_doc, context)`` pairs with
    ``as_tuples``). Texts are tokenised with ``nlp.make_doc`` first, to know
    their lengths.
    """
    for chunk in minibatch(items, size=max(buffer, batch_size)):
        pairs: List[Tuple[Union[str, Doc], Any]] = list(chunk) if as_tuples else [(x, None) for x in chunk]
        docs = [x if isinstance(x, Doc) else nlp.make_doc(x) for x, _ in pairs]
        order = sorted(range(len(docs)), key=lambda i: len(docs[i]))
        done: List[Doc] = [None] * len(docs)  # type: ignore[list-item]
        for i, doc in zip(order, nlp.pipe((docs[i] for i in order), batch_size=batch_size)):
            done[i] = doc
        release_memory()
        if as_tuples:
            yield from ((doc, ctx) for doc, (_, ctx) in zip(done, pairs))
        else:
            yield from done


def groups_by_length(lengths: Sequence[int], max_padding: float = 0.3, min_size: int = 4) -> List[List[int]]:
    """The positions of ``lengths``, shortest first, cut into consecutive
    groups so that each pads little when run as one batch.

    A group is closed before the next item when adding it would make padding
    more than ``max_padding`` of the group's padded size (its longest item
    times its number of items), provided the group already holds ``min_size``
    items; a smaller group is closed only when padding would pass twice that
    (so an outlier does not join the shortest items).
    """
    groups: List[List[int]] = []
    group: List[int] = []
    total = 0
    for i in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        n = lengths[i]
        if group:
            padded = n * (len(group) + 1)
            padding = (padded - total - n) / padded if padded else 0.0
            if padding > (max_padding if len(group) >= min_size else 2 * max_padding):
                groups.append(group)
                group, total = [], 0
        group.append(i)
        total += n
    if group:
        groups.append(group)
    return groups
