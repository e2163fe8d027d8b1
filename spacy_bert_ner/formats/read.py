"""Reading any supported file into :class:`~spacy_bert_ner.formats.sentence.Sentence`
objects: the format comes from the file name or is given. Readers know formats
and line numbers, nothing about spaCy."""
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

from spacy_bert_ner.errors import InputError
from spacy_bert_ner.formats.sentence import Sentence

FORMATS = ("conll", "hf", "gmb")


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


__all__ = ["Sentence", "FORMATS", "detect_format", "read_sentences"]
