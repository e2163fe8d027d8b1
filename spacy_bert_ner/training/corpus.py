"""Corpus readers for training configs (``[corpora]``): the dev set sorted by
length, and the training set in an order of its own seed."""
import random
from typing import Callable, Optional

from spacy.training import Corpus
from spacy.util import registry


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
