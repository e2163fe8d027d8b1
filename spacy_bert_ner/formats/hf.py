"""Hugging Face ``datasets`` exports: JSON Lines (``Dataset.to_json``), a JSON
array, or Parquet (``Dataset.to_parquet``), with ``tokens`` and ``ner_tags``.

Integer tags are mapped through ``label_names`` (the ``ClassLabel`` names).
Records that look like WikiANN (``langs``/``spans`` columns) get the WikiANN
names by default.
"""

import json
from pathlib import Path
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

from spacy_bert_ner.errors import InputError
from spacy_bert_ner.formats.io import iter_lines, json_lines, open_bytes
from spacy_bert_ner.formats.sentence import Sentence

WIKIANN_LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")


def _records(path: str, encoding: str) -> Iterator[Tuple[int, Any]]:
    name = Path(path).name.lower().replace(".gz", "")
    if name.endswith(".parquet"):
        try:
            import pyarrow.parquet as pq
        except ImportError:  # pragma: no cover - pyarrow is a dependency
            raise InputError(path, None, "reading Parquet needs pyarrow (pip install pyarrow)") from None
        try:
            pf = pq.ParquetFile(path)
        except Exception as e:
            raise InputError(path, None, f"not a readable Parquet file: {e}") from None
        row = 0
        for batch in pf.iter_batches(columns=None):
            for rec in batch.to_pylist():
                row += 1
                yield row, rec
        return
    # JSON Lines, or a single JSON array (possibly pretty-printed)
    first = ""
    with open_bytes(path) as f:
        head = f.read(4096).decode(encoding, errors="replace").lstrip("\ufeff")
        first = head.lstrip()[:1]
    if first == "[":
        text = "\n".join(line for _, line in iter_lines(path, encoding))
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(path, e.lineno, f"invalid JSON: {e.msg}") from None
        for i, rec in enumerate(data, start=1):
            yield i, rec
        return
    yield from json_lines(path, encoding)


def read_hf(
    path: Union[str, Path],
    label_names: Optional[Sequence[str]] = None,
    encoding: str = "utf-8",
) -> Iterator[Sentence]:
    path = str(path)
    names: Optional[List[str]] = list(label_names) if label_names else None
    n = 0
    for number, rec in _records(path, encoding):
        if not isinstance(rec, dict):
            raise InputError(path, number, f"expected an object with 'tokens' and 'ner_tags', found {type(rec).__name__}")
        missing = [k for k in ("tokens", "ner_tags") if k not in rec]
        if missing:
            raise InputError(path, number, f"record has no {' or '.join(repr(m) for m in missing)} field")
        tokens, raw_tags = rec["tokens"], rec["ner_tags"]
        if not isinstance(tokens, list) or not isinstance(raw_tags, list):
            raise InputError(path, number, "'tokens' and 'ner_tags' must be lists")
        if len(tokens) != len(raw_tags):
            raise InputError(path, number, f"{len(tokens)} tokens but {len(raw_tags)} tags")
        for i, tok in enumerate(tokens):
            if not isinstance(tok, str) or tok == "":
                raise InputError(path, number, f"token {i} is {tok!r}, expected a non-empty string")
        tags: List[str] = []
        for i, t in enumerate(raw_tags):
            if isinstance(t, bool) or not isinstance(t, (int, str)):
                raise InputError(path, number, f"tag {i} is {t!r}, expected a string or an integer")
            if isinstance(t, int):
                if names is None:
                    if "langs" in rec or "spans" in rec:
                        names = list(WIKIANN_LABELS)
                    else:
                        raise InputError(path, number, "integer tags need label names: pass --labels O,B-PER,I-PER,...")
                if not 0 <= t < len(names):
                    raise InputError(path, number, f"tag id {t} is out of range for {len(names)} label names")
                tags.append(names[t])
            else:
                tags.append(t)
        n += 1
        if tokens:
            yield Sentence(list(tokens), tags, path, [number] * len(tokens))
    if n == 0:
        raise InputError(path, None, "no records found (empty file?)")
