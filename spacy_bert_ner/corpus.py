"""Splitting sentences into train/dev/test and grouping sentences into Docs."""
import random
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, TypeVar

from spacy.training import Corpus
from spacy.util import registry

T = TypeVar("T")

SPLIT_NAMES = ("train", "dev", "test")


def parse_split(text: str) -> Tuple[float, ...]:
    """``"0.8,0.1,0.1"`` → ``(0.8, 0.1, 0.1)``; the parts must be ≥ 0 and sum to 1."""
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        raise ValueError(f"--split must be comma-separated fractions like 0.8,0.1,0.1, got {text!r}") from None
    if not 2 <= len(parts) <= 3 or any(p < 0 for p in parts) or abs(sum(parts) - 1.0) > 1e-6:
        raise ValueError(f"--split needs 2 or 3 fractions ≥ 0 that sum to 1, got {text!r}")
    return parts


def split_items(items: Sequence[T], fractions: Sequence[float], seed: int = 0) -> Dict[str, List[T]]:
    """Shuffle with a seeded RNG and cut by ``fractions``. Stable: the same input,
    fractions and seed always give the same split. Item order inside a part
    follows the input order."""
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n = len(items)
    bounds = [0]
    acc = 0.0
    for frac in fractions[:-1]:
        acc += frac
        bounds.append(round(acc * n))
    bounds.append(n)
    parts: Dict[str, List[T]] = {}
    for name, lo, hi in zip(SPLIT_NAMES, bounds, bounds[1:]):
        parts[name] = [items[i] for i in sorted(order[lo:hi])]
    return parts


def group(items: Iterable[T], size: int, key=None) -> Iterator[List[T]]:
    """Group consecutive items into lists of at most ``size``.

    With ``key``, a new group also starts whenever the key changes (documents).
    ``size <= 0`` means no size limit.
    """
    current: List[T] = []
    current_key: Optional[object] = None
    for item in items:
        k = key(item) if key else None
        if current and ((size > 0 and len(current) >= size) or (key and k != current_key)):
            yield current
            current = []
        current.append(item)
        current_key = k
    if current:
        yield current


@registry.readers("spacy_bert_ner.LengthSortedCorpus.v1")
def length_sorted_corpus_v1(path, gold_preproc: bool = False, max_length: int = 0, limit: int = 0):
    """spaCy's ``Corpus`` with the examples sorted by length, shortest first.

    For the dev set during training: spaCy evaluates in the reader's order and
    a transformer pads each batch to its longest Doc, so sorted input saves
    most of the padding. Scores do not depend on the order.
    """
    corpus = Corpus(path, gold_preproc=gold_preproc, max_length=max_length, limit=limit)

    def read(nlp):
        return sorted(corpus(nlp), key=lambda eg: len(eg.reference))

    return read


@registry.readers("spacy_bert_ner.ShuffledCorpus.v1")
def shuffled_corpus_v1(
    path,
    shuffle_seed: int = 0,
    gold_preproc: bool = False,
    max_length: int = 0,
    limit: int = 0,
    augmenter: Optional[Callable] = None,
):
    """spaCy's ``Corpus`` with the examples shuffled by their own seed.

    ``spacy train`` shuffles the training examples every epoch with the RNG
    that ``[training] seed`` also uses to initialise the weights, so with
    spaCy's reader the data order cannot change without the initial weights
    changing too. This reader permutes the examples first, with
    ``shuffle_seed``, so runs that share ``seed`` (the same start) see the data
    in different orders: the members of a weight average
    (``spacy-bert-ner average``). ``shuffle_seed = 0`` keeps the file's order,
    exactly like ``spacy.Corpus.v1``.
    """
    corpus = Corpus(path, gold_preproc=gold_preproc, max_length=max_length, limit=limit, augmenter=augmenter)

    def read(nlp):
        examples = list(corpus(nlp))
        if shuffle_seed:
            random.Random(shuffle_seed).shuffle(examples)
        return examples

    return read
