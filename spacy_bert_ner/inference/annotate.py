"""Batch annotation of corpora: records in, entity rows out.

Input: JSON Lines or Parquet records with a ``text`` and an optional ``id``
(:mod:`spacy_bert_ner.formats.records`). Output: a folder of Parquet (or JSON
Lines) part files of flat rows, never Docs or tensors: one row per entity
(``status`` ``entity``: id, start_char, end_char, label, text, confidence),
and one row for each document without entities (``no_entities``) or that
could not be used (``error``, with the reason), so every input id appears.
``words`` is the document's token count on each of its rows.

Two engines share :func:`annotate_records`: ``local`` (:func:`annotate_local`,
this process, length-sorted batches) and ``ray``
(:mod:`spacy_bert_ner.distributed.ray_engine`, Ray Data actor pools).

The local engine writes part ``part-K`` for the K-th chunk of
``chunk_records`` input records, each part atomically; a rerun of the same
command skips the chunks whose part exists (``_annotate.json`` ties the
folder to its inputs and settings), so an interrupted run loses nothing done.
"""

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

from spacy_bert_ner.formats.records import OUTPUT_FIELDS, Record, empty_row, iter_records, output_schema
from spacy_bert_ner.formats.splits import group
from spacy_bert_ner.inference.entities import entity_record
from spacy_bert_ner.pipeline.batching import pipe_by_length

FORMATS = ("parquet", "jsonl")
STATE_FILE = "_annotate.json"


@dataclass
class AnnotateStats:
    """What an annotation run did."""

    documents: int = 0
    words: int = 0
    entities: int = 0
    no_entities: int = 0
    errors: int = 0
    resumed_documents: int = 0
    seconds: float = 0.0

    @property
    def words_per_second(self) -> float:
        return self.words / self.seconds if self.seconds else 0.0

    @property
    def documents_per_second(self) -> float:
        return self.documents / self.seconds if self.seconds else 0.0

    def add(self, rows: Iterable[Record]) -> None:
        seen = set()
        for row in rows:
            status = row["status"]
            if status == "entity":
                self.entities += 1
            elif status == "no_entities":
                self.no_entities += 1
            else:
                self.errors += 1
            if row["id"] not in seen:
                seen.add(row["id"])
                self.documents += 1
                self.words += row["words"] or 0

    def to_dict(self) -> Dict[str, Any]:
        return dict(
            asdict(self),
            words_per_second=round(self.words_per_second, 1),
            documents_per_second=round(self.documents_per_second, 1),
        )


def annotate_records(nlp: Any, records: Sequence[Record], batch_size: int = 64) -> List[Record]:
    """Output rows of ``records``, in input order (see the module docstring)."""

    usable = [(k, r["text"]) for k, r in enumerate(records) if r.get("error") is None and r["text"].strip()]
    docs: Dict[int, Any] = {}
    for doc, k in pipe_by_length(nlp, ((text, k) for k, text in usable), batch_size=batch_size, as_tuples=True):
        docs[k] = doc
    rows: List[Record] = []
    for k, record in enumerate(records):
        if record.get("error") is not None:
            rows.append(empty_row(record["id"], "error", 0, record["error"]))
            continue
        doc = docs.get(k)
        if doc is None or not doc.ents:
            rows.append(empty_row(record["id"], "no_entities", len(doc) if doc is not None else 0))
            continue
        for ent in doc.ents:
            rows.append({**empty_row(record["id"], "entity", len(doc)), **entity_record(ent)})
    return rows


def write_part(rows: List[Record], path: Path, fmt: str) -> None:
    """Write one part file atomically (a temporary name, then a rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(rows, schema=output_schema()), tmp)
    else:
        with tmp.open("w", encoding="utf8", newline="\n") as f:
            for row in rows:
                f.write(json.dumps({k: row[k] for k in OUTPUT_FIELDS}, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def read_part(path: Path) -> List[Record]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    return [json.loads(line) for line in path.read_text(encoding="utf8").splitlines() if line.strip()]


def output_parts(output_dir: Path) -> List[Path]:
    """The part files of an output folder (Parquet or JSON Lines, either engine's)."""
    return [
        p
        for p in sorted(Path(output_dir).iterdir())
        if not p.name.startswith((".", "_")) and p.suffix in (".parquet", ".jsonl", ".json")
    ]


def read_output(output_dir: Path) -> Iterable[Record]:
    """Every row of an output folder, one part file at a time."""
    for path in output_parts(output_dir):
        yield from read_part(path)


def output_stats(output_dir: Path) -> AnnotateStats:
    """Counts of an output folder, read one part at a time (a document's rows are in one part)."""
    stats = AnnotateStats()
    for path in output_parts(output_dir):
        stats.add(read_part(path))
    return stats


def _state(files: Sequence[Path], fmt: str, chunk_records: int) -> Dict[str, Any]:
    inputs = []
    for path in files:
        info = path.stat()
        inputs.append({"path": str(path.resolve()), "size": info.st_size, "mtime_ns": info.st_mtime_ns})
    return {"inputs": inputs, "format": fmt, "chunk_records": chunk_records}


def prepare_output(output_dir: Path, state: Dict[str, Any], resume: bool) -> None:
    """Make the output folder; refuse one that holds something else than this run's parts."""
    output_dir.mkdir(parents=True, exist_ok=True)
    state_path = output_dir / STATE_FILE
    existing = [p for p in output_dir.iterdir() if not p.name.startswith(".")]
    if existing:
        try:
            same = json.loads(state_path.read_text()) == state
        except (OSError, ValueError):
            same = False
        if not (same and resume):
            raise ValueError(
                f"{output_dir}: the folder is not empty and holds no resumable run of the same inputs and settings; "
                "choose another folder or empty it"
            )
    state_path.write_text(json.dumps(state, indent=2) + "\n")


def annotate_local(
    nlp: Any,
    files: Sequence[Path],
    output_dir: Path,
    fmt: str = "parquet",
    chunk_records: int = 10000,
    batch_size: int = 64,
    resume: bool = True,
    progress: Optional[Any] = None,
) -> AnnotateStats:
    """Annotate ``files`` into part files in ``output_dir`` in this process.
    ``progress(stats)`` is called after each part."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}")
    output_dir = Path(output_dir)
    prepare_output(output_dir, _state(files, fmt, chunk_records), resume)
    stats = AnnotateStats()
    start = time.perf_counter()
    for k, chunk in enumerate(group(iter_records(list(files)), chunk_records)):
        part = output_dir / f"part-{k:05d}.{fmt}"
        if part.exists():
            rows = read_part(part)
            before = stats.documents
            stats.add(rows)
            stats.resumed_documents += stats.documents - before
            continue
        rows = annotate_records(nlp, chunk, batch_size)
        write_part(rows, part, fmt)
        stats.add(rows)
        stats.seconds = time.perf_counter() - start
        if progress is not None:
            progress(stats)
    stats.seconds = time.perf_counter() - start
    (output_dir / "_SUCCESS").write_text(json.dumps(stats.to_dict(), indent=2) + "\n")
    return stats
