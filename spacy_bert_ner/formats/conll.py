"""CoNLL-style column files: token first, NER tag last, blank line between
sentences, ``-DOCSTART-`` lines between documents."""

from pathlib import Path
from typing import Iterator, List, Optional, Union

from spacy_bert_ner.errors import InputError
from spacy_bert_ner.formats.io import iter_lines
from spacy_bert_ner.formats.sentence import Sentence

DOCSTART = "-DOCSTART-"


def read_conll(path: Union[str, Path], encoding: str = "utf-8") -> Iterator[Sentence]:
    """Read a column file.

    Columns are split on tabs when the first token line holds a tab (so tokens
    may contain spaces), otherwise on runs of white space. Every token line
    must have the same number of columns (at least two). Sentences that follow
    a ``-DOCSTART-`` line share a ``doc_id`` (``"doc0"``, ``"doc1"``, ...).
    """
    path = str(path)
    sep: Optional[str] = None
    decided = False
    n_cols: Optional[int] = None
    first_cols_line = 0
    doc_index = -1
    words: List[str] = []
    tags: List[str] = []
    lines: List[int] = []
    seen_any = False

    def flush() -> Optional[Sentence]:
        if not words:
            return None
        doc_id = f"doc{doc_index}" if doc_index >= 0 else None
        sent = Sentence(list(words), list(tags), path, list(lines), doc_id)
        words.clear()
        tags.clear()
        lines.clear()
        return sent

    for number, line in iter_lines(path, encoding):
        if not line.strip():
            sent = flush()
            if sent is not None:
                yield sent
            continue
        if not decided:
            sep = "\t" if "\t" in line else None
            decided = True
        cols = line.split(sep) if sep else line.split()
        if sep:
            cols = [c.strip(" ") for c in cols]
        if cols[0] == DOCSTART:
            sent = flush()
            if sent is not None:
                yield sent
            doc_index += 1
            seen_any = True
            continue
        if len(cols) < 2:
            raise InputError(path, number, f"expected at least 2 columns (token and NER tag), found {len(cols)}: {line!r}")
        if n_cols is None:
            n_cols, first_cols_line = len(cols), number
        elif len(cols) != n_cols:
            raise InputError(
                path,
                number,
                f"found {len(cols)} columns, but line {first_cols_line} has {n_cols}: {line!r}",
            )
        if not cols[0]:
            raise InputError(path, number, "empty token")
        words.append(cols[0])
        tags.append(cols[-1])
        lines.append(number)
        seen_any = True
    sent = flush()
    if sent is not None:
        yield sent
    if not seen_any:
        raise InputError(path, None, "no tokens found (empty file?)")
