"""Corpora for batch annotation: records with a ``text`` and an optional ``id``,
in JSON Lines or Parquet files (a file, a folder of them, or a glob), read
lazily, one batch of records at a time.

Every input record becomes a :data:`Record` ``{"id", "text", "error"}``: a
record that cannot be used (a line that is not UTF-8 or not JSON, no
``text``, a ``text`` that is not a string) is kept with its ``error`` set, so
it is reported and never silently lost. A record without an ``id`` gets
``FILE:LINE`` (JSON Lines) or ``FILE:ROW`` (Parquet, counted from 1).
"""

import glob as globlib
import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Union

Record = Dict[str, Any]
SUFFIXES = (".jsonl", ".parquet")


def expand_inputs(spec: Union[str, Path]) -> List[Path]:
    """The input files of a path, a folder (its ``*.jsonl`` and ``*.parquet``
    files) or a glob, sorted; ``ValueError`` when there are none."""
    spec = str(spec)
    path = Path(spec)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file())
    elif any(c in spec for c in "*?["):
        files = sorted(Path(p) for p in globlib.glob(spec) if Path(p).is_file())
    elif path.is_file():
        files = [path]
    else:
        raise ValueError(f"{spec}: no such file or folder")
    unknown = [str(p) for p in files if p.suffix not in SUFFIXES]
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown input format; use {' or '.join(SUFFIXES)} files")
    if not files:
        raise ValueError(f"{spec}: no {' or '.join(SUFFIXES)} files")
    return files


def _record(path: Path, where: int, value: Any) -> Record:
    default_id = f"{path.name}:{where}"
    if not isinstance(value, dict):
        return {"id": default_id, "text": None, "error": f"expected a JSON object, got {type(value).__name__}"}
    record_id = value.get("id")
    record_id = default_id if record_id is None else str(record_id)
    if "text" not in value or value["text"] is None:
        return {"id": record_id, "text": None, "error": 'no "text"'}
    if not isinstance(value["text"], str):
        return {"id": record_id, "text": None, "error": f'"text" must be a string, got {type(value["text"]).__name__}'}
    return {"id": record_id, "text": value["text"], "error": None}


def read_jsonl(path: Path) -> Iterator[Record]:
    with path.open("rb") as f:
        for line_no, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8-sig" if line_no == 1 else "utf8")
            except UnicodeDecodeError as e:
                yield {"id": f"{path.name}:{line_no}", "text": None, "error": f"not valid UTF-8 ({e.reason} at byte {e.start})"}
                continue
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as e:
                yield {"id": f"{path.name}:{line_no}", "text": None, "error": f"invalid JSON: {e.msg} (column {e.colno})"}
                continue
            yield _record(path, line_no, value)


def read_parquet(path: Path, batch_rows: int = 1024) -> Iterator[Record]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    columns = [c for c in ("id", "text") if c in parquet.schema_arrow.names]
    row = 0
    for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
        for value in batch.to_pylist():
            row += 1
            yield _record(path, row, value)


def read_records(path: Union[str, Path]) -> Iterator[Record]:
    """The records of one input file, in order."""
    path = Path(path)
    if path.suffix == ".parquet":
        return read_parquet(path)
    return read_jsonl(path)


def iter_records(files: List[Path], skip: int = 0) -> Iterator[Record]:
    """The records of ``files`` in order, after the first ``skip``."""
    k = 0
    for path in files:
        for record in read_records(path):
            if k >= skip:
                yield record
            k += 1


OUTPUT_FIELDS = ("id", "status", "start_char", "end_char", "label", "text", "confidence", "words", "error")


def output_schema():
    """The Arrow schema of annotation output: one row per entity, or one per
    document without entities (``status`` ``no_entities``) or with an error."""
    import pyarrow as pa

    return pa.schema(
        [
            ("id", pa.string()),
            ("status", pa.string()),
            ("start_char", pa.int64()),
            ("end_char", pa.int64()),
            ("label", pa.string()),
            ("text", pa.string()),
            ("confidence", pa.float64()),
            ("words", pa.int64()),
            ("error", pa.string()),
        ]
    )


def empty_row(record_id: str, status: str, words: int = 0, error: Optional[str] = None) -> Record:
    return {
        "id": record_id,
        "status": status,
        "start_char": None,
        "end_char": None,
        "label": None,
        "text": None,
        "confidence": None,
        "words": words,
        "error": error,
    }
