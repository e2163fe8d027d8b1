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
    strip_control: bool = False,
) -> Iterator[Sentence]:
    """Read any supported file. ``format`` is one of :data:`FORMATS` or None to detect.

    A token holding a control character (C0 controls other than the column
    separator, DEL, or a lone surrogate) is an error naming its line and the
    character, unless ``strip_control`` removes such characters (a token left
    empty is still an error)."""
    fmt = format or detect_format(path)
    if fmt == "conll":
        from spacy_bert_ner.formats.conll import read_conll

        sentences = read_conll(path, encoding=encoding or "utf-8")
    elif fmt == "hf":
        from spacy_bert_ner.formats.hf import read_hf

        sentences = read_hf(path, label_names=label_names, encoding=encoding or "utf-8")
    elif fmt == "gmb":
        from spacy_bert_ner.formats.gmb import read_gmb

        sentences = read_gmb(path, encoding=encoding or "cp1252")
    else:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return (check_tokens(sentence, strip_control) for sentence in sentences)


def _is_control(char: str) -> bool:
    code = ord(char)
    return (code < 0x20 and char != "\t") or code == 0x7F or 0xD800 <= code <= 0xDFFF


def check_tokens(sentence: Sentence, strip_control: bool = False) -> Sentence:
    """``sentence`` when no token holds a control character; otherwise an
    :class:`InputError` at the token's line (or, with ``strip_control``, the
    sentence with those characters removed)."""
    for i, word in enumerate(sentence.words):
        bad = next((c for c in word if _is_control(c)), None)
        if bad is None:
            continue
        line = sentence.lines[i] if i < len(sentence.lines) else None
        if not strip_control:
            raise InputError(
                sentence.path,
                line,
                f"token {word!r} contains the control character U+{ord(bad):04X} (use --strip-control to remove such characters)",
            )
        cleaned = "".join(c for c in word if not _is_control(c))
        if not cleaned:
            raise InputError(sentence.path, line, f"token {word!r} is empty once its control characters are removed")
        sentence.words[i] = cleaned
    return sentence


__all__ = ["Sentence", "FORMATS", "detect_format", "read_sentences"]
