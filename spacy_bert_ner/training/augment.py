"""Mention replacement: new in-domain sentences from a labelled corpus, for a
teacher to teach (``distill --unlabelled``).

Each copy of a sentence that has entities gets every mention swapped for
another mention of the same label drawn from the whole corpus, so the
contexts stay those of the training domain while the names vary. The copies
keep exact gold entities (the new mention has the old one's label), so they
can be written as a ``.spacy`` corpus as well as plain text."""

import itertools
import random
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from spacy.vocab import Vocab

from spacy_bert_ner.errors import InputError
from spacy_bert_ner.formats.docbin import doc_sentence_spans, make_doc, read_docbin, write_docbin, write_docs
from spacy_bert_ner.formats.schemes import Span

# (words, [(start, end, label)]) of one sentence; end is exclusive
Sentence = Tuple[List[str], List[Span]]


def mention_pool(sentences: Iterable[Sentence]) -> Dict[str, List[Tuple[str, ...]]]:
    """Every distinct mention (a tuple of words) of each label, in first-seen order."""
    seen: Dict[str, Dict[Tuple[str, ...], None]] = defaultdict(dict)
    for words, spans in sentences:
        for start, end, label in spans:
            seen[label][tuple(words[start:end])] = None
    return {label: list(mentions) for label, mentions in seen.items()}


def replace_mentions(sentence: Sentence, pool: Dict[str, Sequence[Tuple[str, ...]]], rng: random.Random) -> Sentence:
    """A copy of ``sentence`` with each mention replaced by a random other
    mention of its label (the same one when the label has no other)."""
    words, spans = sentence
    new_words: List[str] = []
    new_spans: List[Span] = []
    cursor = 0
    for start, end, label in sorted(spans):
        new_words.extend(words[cursor:start])
        old = tuple(words[start:end])
        choices = pool.get(label) or [old]
        mention = rng.choice(choices)
        if mention == old and len(choices) > 1:
            # one redraw from the others keeps the draw uniform over them
            others = [m for m in choices if m != old]
            mention = rng.choice(others)
        new_spans.append((len(new_words), len(new_words) + len(mention), label))
        new_words.extend(mention)
        cursor = end
    new_words.extend(words[cursor:])
    return new_words, new_spans


def augment_sentences(sentences: Sequence[Sentence], copies: int = 1, seed: int = 0) -> Iterator[Sentence]:
    """``copies`` mention-replaced copies of each sentence that has entities
    (sentences without any would come out unchanged and are skipped), copy
    by copy through the corpus; the same ``seed`` gives the same copies."""
    pool = mention_pool(sentences)
    rng = random.Random(seed)
    for _ in range(copies):
        for sentence in sentences:
            if sentence[1]:
                yield replace_mentions(sentence, pool, rng)


def augment_docbin(
    input_path: Union[str, Path], output_path: Union[str, Path], copies: int = 1, seed: int = 0, limit: Optional[int] = None
) -> Tuple[int, int]:
    """Write mention-replaced copies of the sentences of a ``.spacy`` file:
    a ``.spacy`` output keeps their entities, any other is plain text, one
    sentence per line, tokens joined by spaces (what ``distill --unlabelled``
    reads). ``limit`` caps the sentences written. Returns (sentences written,
    sentences with entities in the input)."""
    if copies < 1:
        raise ValueError(f"copies must be at least 1, got {copies}")
    sentences = [s for doc in read_docbin(input_path) for s in doc_sentence_spans(doc)]
    with_entities = sum(1 for _, spans in sentences if spans)
    if not with_entities:
        raise InputError(input_path, None, "no sentence has entities, so there is no mention to replace")
    copies_iter: Iterable[Sentence] = augment_sentences(sentences, copies, seed)
    if limit is not None:
        copies_iter = itertools.islice(copies_iter, limit)
    vocab = Vocab()
    docs = (make_doc(vocab, [sentence]) for sentence in copies_iter)
    if Path(output_path).suffix == ".spacy":
        return write_docbin(docs, output_path), with_entities
    return write_docs(docs, output_path, "text")[0], with_entities
