"""The benchmarks' data: WikiANN-en sentences (words and IOB2 tags) read from
the real data folder with the package's own reader."""

from pathlib import Path
from typing import List, Tuple, Union

WIKIANN_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
Sentence = Tuple[List[str], List[str]]


def load_sentences(path: Union[str, Path], limit: int = 0) -> List[Sentence]:
    """The first ``limit`` sentences (0: all) of a column file, as ``(words, tags)``."""
    from spacy_bert_ner.formats.read import read_sentences

    out = []
    for sent in read_sentences(str(path)):
        out.append((sent.words, sent.tags))
        if limit and len(out) >= limit:
            break
    return out


def wikiann(data: Union[str, Path], split: str, limit: int = 0) -> List[Sentence]:
    """WikiANN-en ``split`` (train, validation or test) from the data folder."""
    return load_sentences(Path(data) / "wikiann-en" / f"{split}.tsv", limit)


def train_sentences(data: Union[str, Path], max_words: int, batch_size: int, updates: int) -> List[Sentence]:
    """WikiANN train sentences of at most ``max_words`` words, enough for ``updates`` batches plus 2 warm-up ones."""
    train = [s for s in wikiann(data, "train") if len(s[0]) <= max_words]
    return train[: batch_size * (updates + 2)]
