"""Readers turn files into :class:`Sentence` objects. They know formats and
line numbers, nothing about spaCy."""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Union

from spacy_bert_ner.errors import InputError

FORMATS = ("conll", "hf", "gmb")


@dataclass
class Sentence:
    """One sentence as read from a file: gold words and their raw tags.

    ``lines`` holds the 1-based source line (or record) of every token so that
    later stages can still point at the input when something is wrong.
    """

    words: List[str]
    tags: List[str]
    path: str = ""
    lines: List[int] = field(default_factory=list)
    doc_id: Optional[str] = None

    def __len__(self) -> int:
        return len(self.words)


def detect_format(path: Union[str, Path]) -> str:
    """Guess the input format from the file name and, failing that, its first line."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, None, "file not found")
    if p.is_dir():
        raise InputError(p, None, "is a directory, expected a file")
    name = p.name.lower()
    for packed in (".gz", ".zip"):
        if name.endswith(packed):
            name = name[: -len(packed)]
    if name.endswith((".jsonl", ".json", ".parquet", ".ndjson")):
        return "hf"
    if name.endswith(".csv"):
        return "gmb"
    return "conll"


def read_sentences(
    path: Union[str, Path],
    format: Optional[str] = None,
    *,
    encoding: Optional[str] = None,
    label_names: Optional[Sequence[str]] = None,
) -> Iterator[Sentence]:
    """Read any supported file. ``format`` is one of :data:`FORMATS` or None to detect."""
    fmt = format or detect_format(path)
    if fmt == "conll":
        from spacy_bert_ner.formats.conll import read_conll

        return read_conll(path, encoding=encoding or "utf-8")
    if fmt == "hf":
        from spacy_bert_ner.formats.hf import read_hf

        return read_hf(path, label_names=label_names, encoding=encoding or "utf-8")
    if fmt == "gmb":
        from spacy_bert_ner.formats.gmb import read_gmb

        return read_gmb(path, encoding=encoding or "cp1252")
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


__all__ = ["Sentence", "FORMATS", "detect_format", "read_sentences", "InputError"]
