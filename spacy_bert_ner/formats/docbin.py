"""The only place that makes spaCy Docs from sentences, and the way back.

Sentence(s) + spans → Doc (gold words, ``doc.ents``, sentence starts) →
DocBin on disk (atomic write) → IOB2 column text again.
"""

from pathlib import Path
from typing import IO, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc, DocBin
from spacy.tokens import Span as SpacySpan
from spacy.vocab import Vocab

from spacy_bert_ner.formats.io import atomic_write
from spacy_bert_ner.formats.schemes import Span, spans_to_tags


def make_doc(vocab: Vocab, parts: Sequence[Tuple[Sequence[str], Sequence[Span]]]) -> Doc:
    """One Doc from one or more sentences, each given as ``(words, spans)``.

    Words are kept exactly (no re-tokenisation); tokens are joined by a single
    space; every sentence's first token is a sentence start.
    """
    words: List[str] = []
    sent_starts: List[bool] = []
    ents: List[Tuple[int, int, str]] = []
    for sent_words, spans in parts:
        offset = len(words)
        words.extend(sent_words)
        sent_starts.extend([True] + [False] * (len(sent_words) - 1))
        ents.extend((offset + s, offset + e, label) for s, e, label in spans)
    spaces = [True] * len(words)
    if spaces:
        spaces[-1] = False
    doc = Doc(vocab, words=words, spaces=spaces, sent_starts=sent_starts)
    doc.ents = [SpacySpan(doc, s, e, label=label) for s, e, label in ents]
    return doc


def write_docbin(docs: Iterable[Doc], path: Union[str, Path], store_user_data: bool = False) -> int:
    """Write Docs to a ``.spacy`` file atomically; returns the number of Docs.

    The file appears only once it is complete: an error half-way leaves no file.
    ``store_user_data`` keeps ``doc.user_data`` (a teacher's probabilities, for example).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = DocBin(attrs=["ORTH", "SPACY", "ENT_IOB", "ENT_TYPE", "SENT_START"], store_user_data=store_user_data)
    n = 0
    for doc in docs:
        db.add(doc)
        n += 1
    atomic_write(path, db.to_bytes())
    return n


def read_docbin(path: Union[str, Path], vocab: Union[Vocab, None] = None) -> Iterator[Doc]:
    vocab = vocab if vocab is not None else Vocab()
    yield from DocBin().from_disk(path).get_docs(vocab)


def doc_sentence_spans(doc: Doc) -> Iterator[Tuple[List[str], List[Span]]]:
    """``(words, [(start, end, label)])`` for every sentence of a Doc (the
    whole Doc if it has no sentence marks), the entity spans relative to the
    sentence; an entity that crosses a sentence end is cut at it."""
    if doc.has_annotation("SENT_START"):
        bounds = [(s.start, s.end) for s in doc.sents]
    else:
        bounds = [(0, len(doc))]
    for start, end in bounds:
        words = [t.text for t in doc[start:end]]
        spans = [(e.start - start, min(e.end, end) - start, e.label_) for e in doc.ents if start <= e.start < end]
        yield words, spans


def doc_sentences(doc: Doc) -> Iterator[Tuple[List[str], List[str]]]:
    """``(words, IOB2 tags)`` for every sentence of a Doc (the whole Doc if it has no sentence marks)."""
    for words, spans in doc_sentence_spans(doc):
        yield words, spans_to_tags(spans, len(words), "IOB2")


def write_conll(docs: Iterable[Doc], out: IO[str]) -> Tuple[int, int]:
    """Write ``token<TAB>tag`` lines, a blank line between sentences. Returns (sentences, tokens)."""
    n_sents = n_tokens = 0
    for doc in docs:
        for words, tags in doc_sentences(doc):
            if n_sents:
                out.write("\n")
            out.write("".join(f"{w}\t{t}\n" for w, t in zip(words, tags)))
            n_sents += 1
            n_tokens += len(words)
    return n_sents, n_tokens


def write_text(docs: Iterable[Doc], out: IO[str]) -> Tuple[int, int]:
    """Write each sentence as one line of space-separated tokens, the plain
    text that ``distill --unlabelled`` reads. Returns (sentences, tokens)."""
    n_sents = n_tokens = 0
    for doc in docs:
        for words, _ in doc_sentences(doc):
            out.write(" ".join(w.replace("\n", " ") for w in words) + "\n")
            n_sents += 1
            n_tokens += len(words)
    return n_sents, n_tokens


EXPORT_FORMATS = {"conll": write_conll, "text": write_text}


def write_docs(docs: Iterable[Doc], output_path: Optional[Union[str, Path]], file_format: str = "conll") -> Tuple[int, int]:
    """Write Docs to ``output_path`` (standard output when None) as
    ``token<TAB>IOB2 tag`` lines (``conll``) or one sentence per line
    (``text``, the entities dropped). Returns (sentences, tokens)."""
    import sys

    if file_format not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {file_format!r}: use {' or '.join(EXPORT_FORMATS)}")
    write = EXPORT_FORMATS[file_format]
    if output_path is None:
        return write(docs, sys.stdout)
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    with output_path.open("w", encoding="utf8", newline="\n") as f:
        return write(docs, f)


def export_docbin(
    input_path: Union[str, Path], output_path: Optional[Union[str, Path]], file_format: str = "conll"
) -> Tuple[int, int]:
    """Write a ``.spacy`` file as :func:`write_docs` does. Returns (sentences, tokens)."""
    return write_docs(read_docbin(input_path), output_path, file_format)
