"""Running a trained pipeline over raw text and writing the entities it finds.

Inputs (chosen by the file suffix):

* ``.txt``: one document per line. Every line is a record, empty lines
  included (they get an empty ``entities`` list), so that output line *n* is
  input line *n*.
* ``.jsonl``: one JSON object per line with a string ``"text"``; all other
  fields are kept in the output record. Blank lines are skipped.
* ``.spacy``: a DocBin; its tokens are kept (any entities in it are dropped
  before prediction).

Outputs:

* ``.jsonl``: the input record plus ``"entities"``, a list of
  ``{"text", "label", "start_char", "end_char"}`` (and ``"confidence"`` when
  the pipeline sets ``span._.confidence``). An ``"entities"`` field in the
  input is replaced.
* ``.spacy``: a DocBin of the predicted Docs (with user data, so span
  extension values survive).
* Annotation-tool tasks (``--format``): Label Studio (``.json``), Prodigy
  or doccano (``.jsonl``), see :mod:`spacy_bert_ner.formats.tasks`; with
  ``rank="uncertainty"`` (any JSON output) the documents are ordered for
  annotation, each with its ``rank`` and ``uncertainty``
  (:mod:`spacy_bert_ner.inference.ranking`).

Streaming: records are read, annotated in batches and written one at a time,
so memory stays constant for ``.jsonl`` output (a ``.spacy`` file is one
serialised DocBin, which has to be held until the end). Output goes to
``OUTPUT.partial`` first, flushed after every record, and is renamed to
``OUTPUT`` only on success: an interrupted or failed run leaves
``OUTPUT.partial`` with every record done before the failure (for ``.spacy``
output the DocBin of the docs done is written there when the run fails), and
never a truncated ``OUTPUT``.

Resuming: running the same command again continues an interrupted run. The
records of ``OUTPUT.partial`` are kept up to the last complete buffer of
``buffer`` records (a line cut short by the interruption is dropped), the
input records they came from are read but not annotated again, and the rest
is annotated exactly as an uninterrupted run would (the same buffers, hence
the same batches), so the final ``OUTPUT`` is byte for byte the same.
``OUTPUT.partial.json`` records which input and settings the partial output
belongs to; a partial output of another input or settings is started afresh.
"""

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import srsly
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.util import minibatch
from spacy.vocab import Vocab

from spacy_bert_ner.errors import InputError
from spacy_bert_ner.formats.io import atomic_write
from spacy_bert_ner.formats.tasks import TASK_FORMATS, write_tasks
from spacy_bert_ner.inference.entities import entity_record
from spacy_bert_ner.inference.ranking import RANKINGS, doc_uncertainty, rank_records
from spacy_bert_ner.pipeline.batching import pipe_by_length
from spacy_bert_ner.pipeline.bert_ner import drop_trf_data

INPUT_SUFFIXES = (".txt", ".jsonl", ".spacy")
OUTPUT_SUFFIXES = (".jsonl", ".spacy", ".json")
# Output formats: jsonl (records + entities), spacy (a DocBin), and annotation-tool tasks
OUTPUT_FORMATS = ("jsonl", "spacy", *TASK_FORMATS)
_FORMAT_SUFFIX = {"jsonl": ".jsonl", "spacy": ".spacy", "label-studio": ".json", "prodigy": ".jsonl", "doccano": ".jsonl"}
PARTIAL_SUFFIX = ".partial"
STATE_SUFFIX = ".partial.json"
# How many skipped-record messages are kept for the summary.
MAX_KEPT_ERRORS = 20

Record = Dict[str, Any]


@dataclass
class PredictStats:
    """What a prediction run did: counts, timing and the records it skipped."""

    records: int = 0
    resumed: int = 0
    words: int = 0
    entities: int = 0
    skipped: int = 0
    seconds: float = 0.0
    errors: List[str] = field(default_factory=list)

    @property
    def words_per_second(self) -> float:
        return self.words / self.seconds if self.seconds else 0.0

    def skip(self, error: InputError) -> None:
        self.skipped += 1
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append(str(error))


def output_format(output_path: Union[str, Path], format: Optional[str] = None, rank: str = "none") -> str:
    """The output format: ``format``, or from the suffix (``.json``: Label
    Studio tasks); ``ValueError`` when suffix, format and ranking don't fit."""
    output_path = Path(output_path)
    if rank not in RANKINGS:
        raise ValueError(f"unknown ranking {rank!r}; expected one of {', '.join(RANKINGS)}")
    if format is None:
        format = {".jsonl": "jsonl", ".spacy": "spacy", ".json": "label-studio"}.get(output_path.suffix)
        if format is None:
            raise InputError(
                output_path, None, f"unknown output format '{output_path.suffix}': use one of {', '.join(OUTPUT_SUFFIXES)}"
            )
    if format not in OUTPUT_FORMATS:
        raise ValueError(f"unknown output format {format!r}; expected one of {', '.join(OUTPUT_FORMATS)}")
    if output_path.suffix != _FORMAT_SUFFIX[format]:
        raise InputError(output_path, None, f"{format} output goes to a {_FORMAT_SUFFIX[format]} file")
    if rank != "none" and format == "spacy":
        raise ValueError("--rank orders JSON output (jsonl, label-studio, prodigy, doccano), not a .spacy file")
    return format


def check_paths(
    input_path: Union[str, Path], output_path: Union[str, Path], format: Optional[str] = None, rank: str = "none"
) -> str:
    """Fail early (before loading a model) on a missing input or an unknown
    format; returns the output format (see :func:`output_format`)."""
    input_path, output_path = Path(input_path), Path(output_path)
    if input_path.suffix not in INPUT_SUFFIXES:
        raise InputError(input_path, None, f"unknown input format '{input_path.suffix}': use one of {', '.join(INPUT_SUFFIXES)}")
    format = output_format(output_path, format, rank)
    if not input_path.is_file():
        raise InputError(input_path, None, "file not found")
    if input_path.resolve() == output_path.resolve():
        raise InputError(output_path, None, "the output would overwrite the input")
    return format


def _record_from_json(path: Path, line_no: int, line: str) -> Record:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise InputError(path, line_no, f"invalid JSON: {e.msg} (column {e.colno})") from None
    if not isinstance(record, dict):
        raise InputError(path, line_no, f"expected a JSON object, got {type(record).__name__}")
    if "text" not in record:
        raise InputError(path, line_no, 'no "text" field')
    if not isinstance(record["text"], str):
        raise InputError(path, line_no, f'"text" must be a string, got {type(record["text"]).__name__}')
    return record


class _Reader:
    """Reads an input file lazily as ``(Doc, (line, record))`` pairs.

    A bad record raises nothing inside the generator (that would lose the
    batch being annotated): reading stops and the error is kept in
    ``self.error`` for the caller to raise once the records before it are
    written. With ``skip_errors`` the record is counted in ``stats`` instead.
    """

    def __init__(self, nlp: Language, path: Path, stats: PredictStats, skip_errors: bool = False, skip_first: int = 0) -> None:
        self.nlp = nlp
        self.path = path
        self.stats = stats
        self.skip_errors = skip_errors
        self.skip_first = skip_first
        self.error: Optional[InputError] = None

    def _bad(self, error: InputError) -> bool:
        """Handle a bad record; True when reading should stop."""
        if self.skip_errors:
            self.stats.skip(error)
            return False
        self.error = error
        return True

    def __iter__(self) -> Iterator[Tuple[Doc, Tuple[int, Record]]]:
        suffix = self.path.suffix
        records = self._read_docbin() if suffix == ".spacy" else self._read_lines(is_json=suffix == ".jsonl")
        for k, item in enumerate(records):
            if k >= self.skip_first:  # the first ones are in the resumed partial output already
                yield item

    def _read_lines(self, is_json: bool) -> Iterator[Tuple[Doc, Tuple[int, Record]]]:
        # binary lines: exact line numbers (split on "\n" only) and a bad byte spoils one line
        with self.path.open("rb") as f:
            for line_no, raw in enumerate(f, start=1):
                try:
                    text = raw.decode("utf-8-sig" if line_no == 1 else "utf8").rstrip("\r\n")
                except UnicodeDecodeError as e:
                    if self._bad(InputError(self.path, line_no, f"not valid UTF-8 ({e.reason} at byte {e.start})")):
                        return
                    continue
                if is_json:
                    if not text.strip():
                        continue
                    try:
                        record = _record_from_json(self.path, line_no, text)
                    except InputError as e:
                        if self._bad(e):
                            return
                        continue
                else:
                    record = {"text": text}
                yield self.nlp.make_doc(record["text"]), (line_no, record)

    def _read_docbin(self) -> Iterator[Tuple[Doc, Tuple[int, Record]]]:
        from spacy_bert_ner.evaluation.evaluate import blank_copy

        try:
            docbin = DocBin().from_disk(self.path)
        except Exception as e:  # a corrupt file: srsly/msgpack raise assorted errors
            self._bad(InputError(self.path, None, f"not a readable .spacy file ({e})"))
            return
        for i, doc in enumerate(docbin.get_docs(self.nlp.vocab), start=1):
            yield blank_copy(doc, self.nlp.vocab), (i, {"text": doc.text})


def annotate(
    nlp: Language,
    items: Iterable[Tuple[Doc, Any]],
    batch_size: int = 64,
    buffer: int = 2048,
) -> Iterator[Tuple[Doc, Any]]:
    """``nlp.pipe`` over ``(Doc, context)`` pairs, in input order.

    Each buffer of ``buffer`` records is run shortest first
    (:func:`spacy_bert_ner.pipeline.batching.pipe_by_length`) so batches carry little
    padding; at most one buffer is read ahead.
    """
    return pipe_by_length(nlp, items, batch_size=batch_size, buffer=buffer, as_tuples=True)


def load_tokenizer(model: str) -> Language:
    """The pipeline ``model`` without its components: the vocab and tokenizer
    that make its Docs, for a process that hands the annotation to others."""
    import spacy
    from spacy.util import load_config

    names = list(load_config(model_config_path(model))["nlp"]["pipeline"])
    return spacy.load(model, exclude=names)


def model_config_path(model: str) -> Path:
    """The ``config.cfg`` of a pipeline directory or installed package."""
    from spacy.util import get_package_path, is_package

    path = get_package_path(model) if is_package(model) else Path(model)
    if not (path / "config.cfg").exists():  # an installed package keeps its data one folder down
        path = next((p for p in path.iterdir() if (p / "config.cfg").exists()), path)
    return path / "config.cfg"


_WORKER: Dict[str, Any] = {}


def _worker_start(model: str, runtime: Optional[str], threads: int) -> None:
    import threading

    import torch

    from spacy_bert_ner.runtime import load

    parent = os.getppid()

    def exit_with_parent() -> None:  # a parent killed outright cannot stop its pool
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=exit_with_parent, daemon=True).start()
    torch.set_num_threads(threads)
    _WORKER["nlp"] = load(model, runtime)


def _worker_annotate(data: bytes, batch_size: int) -> bytes:
    nlp = _WORKER["nlp"]
    docs = list(DocBin().from_bytes(data).get_docs(nlp.vocab))
    done = []
    for doc in pipe_by_length(nlp, docs, batch_size=batch_size, buffer=len(docs)):
        drop_trf_data(doc)
        done.append(doc)
    return DocBin(store_user_data=True, docs=done).to_bytes()


def annotate_processes(
    model: str,
    vocab: Vocab,
    items: Iterable[Tuple[Doc, Any]],
    processes: int,
    runtime: Optional[str] = None,
    threads: int = 1,
    batch_size: int = 64,
    buffer: int = 2048,
) -> Iterator[Tuple[Doc, Any]]:
    """:func:`annotate` on ``processes`` worker processes, each loading
    ``model`` (with ``runtime`` and ``threads`` torch threads).

    Each buffer of ``buffer`` records goes to one worker as a DocBin of its
    tokens and comes back annotated, into ``vocab``; buffers are yielded in
    input order, with at most one per worker in flight besides the one being
    written. The workers are started with ``spawn`` (no fork of a process
    that holds PyTorch threads).
    """
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        processes, mp_context=context, initializer=_worker_start, initargs=(model, runtime, threads)
    ) as pool:
        pending: deque = deque()

        def collect():
            future, contexts = pending.popleft()
            docs = DocBin(store_user_data=True).from_bytes(future.result()).get_docs(vocab)
            return zip(docs, contexts)

        for chunk in minibatch(items, size=buffer):
            data = DocBin(docs=[doc for doc, _ in chunk]).to_bytes()
            pending.append((pool.submit(_worker_annotate, data, batch_size), [context for _, context in chunk]))
            if len(pending) > processes:
                yield from collect()
        while pending:
            yield from collect()


def _progress_bar(enabled: Optional[bool]):
    from tqdm import tqdm

    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(unit="words", unit_scale=True, disable=not enabled, desc="predict", dynamic_ncols=True)


def predict_file(
    nlp: Language,
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    batch_size: int = 64,
    skip_errors: bool = False,
    progress: Optional[bool] = None,
    buffer: int = 2048,
    resume: bool = True,
    processes: int = 1,
    model: Optional[str] = None,
    runtime: Optional[str] = None,
    threads: Optional[int] = None,
    format: Optional[str] = None,
    rank: str = "none",
    model_version: Optional[str] = None,
) -> PredictStats:
    """Annotate ``input_path`` with ``nlp`` and write the entities to ``output_path``.

    With ``processes`` > 1, ``nlp`` only makes the Docs (it may be
    :func:`load_tokenizer`'s) and ``processes`` workers load ``model`` (with
    ``runtime``) and annotate a buffer at a time each, with ``threads`` torch
    threads (default: the cores shared out); the output is the same.

    Raises :class:`InputError` (naming ``file:line``) on the first bad record
    unless ``skip_errors``; the records before it are then in
    ``OUTPUT.partial``. ``progress=None`` shows a progress bar only on a
    terminal. ``buffer`` records at a time are sorted by length into batches.
    With ``resume``, a partial output of the same input and settings is
    continued (see the module docstring); ``stats.resumed`` counts the records
    kept from it.

    ``format`` (default: from the suffix) may also be ``label-studio``,
    ``prodigy`` or ``doccano`` (:mod:`spacy_bert_ner.formats.tasks`, with
    ``model_version``, default the pipeline's name and version), and ``rank
    = "uncertainty"`` orders the documents for annotation
    (:mod:`spacy_bert_ner.inference.ranking`). Those records stream into
    ``OUTPUT.partial`` as JSON Lines like any run, and become ``OUTPUT`` once
    all are done.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    format = check_paths(input_path, output_path, format, rank)
    streams_json = format != "spacy"
    scored = format in TASK_FORMATS or rank != "none"
    spans_key = pipeline_spans_key(nlp, model) if scored else None
    output_path.parent.mkdir(parents=True, exist_ok=True)
    partial = output_path.with_name(output_path.name + PARTIAL_SUFFIX)
    state_path = output_path.with_name(output_path.name + STATE_SUFFIX)
    buffer = max(buffer, batch_size)  # what pipe_by_length reads at a time
    state = _run_state(input_path, batch_size, buffer, skip_errors)
    stats = PredictStats()
    state["scored"] = scored
    kept = _resume_partial(partial, state_path, state, streams_json, buffer) if resume else None
    stats.resumed = len(kept) if isinstance(kept, list) else (kept or 0)
    srsly.write_json(state_path, state)
    reader = _Reader(nlp, input_path, stats, skip_errors=skip_errors, skip_first=stats.resumed)
    start = time.perf_counter()
    bar = _progress_bar(progress)
    try:
        if processes > 1:
            if model is None:
                raise ValueError("predicting with several processes needs the model's path or package name")
            threads = threads or max(1, (os.cpu_count() or 1) // processes)
            results = annotate_processes(model, nlp.vocab, reader, processes, runtime, threads, batch_size, buffer)
        else:
            results = annotate(nlp, reader, batch_size=batch_size, buffer=buffer)
        if streams_json:
            with partial.open("a" if stats.resumed else "w", encoding="utf8", newline="\n") as out:
                _write_jsonl(results, out, stats, bar, scored, spans_key)
        else:
            _write_docbin(results, partial, stats, bar, kept if isinstance(kept, list) else [])
    finally:
        bar.close()
        stats.seconds = time.perf_counter() - start
    if reader.error is not None:
        raise reader.error
    if format == "spacy" or (format == "jsonl" and rank == "none"):
        os.replace(partial, output_path)
    else:
        version = model_version or f"{nlp.meta.get('name', 'pipeline')}-{nlp.meta.get('version', '0.0.0')}"
        _finish_tasks(partial, output_path, format, rank, version)
        partial.unlink()
    state_path.unlink(missing_ok=True)
    return stats


def pipeline_spans_key(nlp: Language, model: Optional[str] = None) -> Optional[str]:
    """The span group key of the pipeline's bert_ner component, from its config
    (the saved one of ``model`` when ``nlp`` is a tokenizer-only pipeline);
    ``ValueError`` when the pipeline has no bert_ner, whose confidences the
    ranking and the tasks' scores need."""
    from spacy_bert_ner.pipeline.bert_ner import BERT_NER_FACTORIES, DEFAULT_SPANS_KEY, enabled_components

    config = nlp.config
    if not enabled_components(config, BERT_NER_FACTORIES) and model is not None:
        from spacy.util import load_config

        config = load_config(model_config_path(model))
    found = enabled_components(config, BERT_NER_FACTORIES)
    if not found:
        raise ValueError("--rank and the annotation-tool formats need a pipeline with a bert_ner component (its confidences)")
    return found[0][1].get("spans_key", DEFAULT_SPANS_KEY)


def _finish_tasks(partial: Path, output_path: Path, format: str, rank: str, model_version: str) -> None:
    """The streamed records of ``partial``, ranked if asked, written to
    ``output_path`` as JSON Lines or annotation-tool tasks (atomically)."""
    import io

    records = list(srsly.read_jsonl(partial))
    if rank == "uncertainty":
        records = rank_records(records)
    out = io.StringIO()
    if format == "jsonl":
        out.writelines(srsly.json_dumps(record) + "\n" for record in records)
    else:
        write_tasks(records, out, format, model_version)
    atomic_write(output_path, out.getvalue().encode("utf8"))


def _run_state(input_path: Path, batch_size: int, buffer: int, skip_errors: bool) -> Record:
    """What a partial output must share with this run to be continued."""
    info = input_path.stat()
    return {
        "input": str(input_path.resolve()),
        "size": info.st_size,
        "mtime_ns": info.st_mtime_ns,
        "batch_size": batch_size,
        "buffer": buffer,
        "skip_errors": skip_errors,
    }


def _resume_partial(partial: Path, state_path: Path, state: Record, streams_json: bool, buffer: int):
    """Keep the complete buffers of a partial output of the same run; the number
    of records kept (``.jsonl``) or the Docs kept (``.spacy``), or None to start afresh."""
    if not partial.exists():
        return None
    try:
        previous = srsly.read_json(state_path)
    except (OSError, ValueError):
        previous = None
    if previous != state:
        return None
    if streams_json:
        data = partial.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]  # a line cut short is dropped
        lines = complete.splitlines(keepends=True)
        keep = len(lines) - len(lines) % buffer
        with partial.open("r+b") as f:
            f.truncate(sum(len(line) for line in lines[:keep]))
        return keep
    try:
        docs = list(DocBin(store_user_data=True).from_disk(partial).get_docs(Vocab()))
    except Exception:  # a partial DocBin that does not read: start afresh
        return None
    return docs[: len(docs) - len(docs) % buffer]


def _count(doc: Doc, stats: PredictStats, bar) -> None:
    stats.records += 1
    stats.words += len(doc)
    stats.entities += len(doc.ents)
    bar.update(len(doc))


def _write_jsonl(
    results: Iterable[Tuple[Doc, Tuple[int, Record]]],
    out: IO[str],
    stats: PredictStats,
    bar,
    scored: bool = False,
    spans_key: Optional[str] = None,
) -> None:
    """One record per line: the input record and its entities (and with
    ``scored`` its ``uncertainty`` for ranking, read from the component's
    span group ``spans_key``)."""
    for doc, (_, record) in results:
        record = dict(record)
        record["entities"] = [entity_record(e) for e in doc.ents]
        if scored:
            record.update(doc_uncertainty(doc, spans_key))
        out.write(srsly.json_dumps(record) + "\n")
        out.flush()
        _count(doc, stats, bar)


def _write_docbin(
    results: Iterable[Tuple[Doc, Tuple[int, Record]]], path: Path, stats: PredictStats, bar, kept: List[Doc]
) -> None:
    docbin = DocBin(store_user_data=True, docs=kept)
    try:
        for doc, _ in results:
            drop_trf_data(doc)  # the transformer's hidden states: ~900x the text, needed by nobody downstream
            docbin.add(doc)
            _count(doc, stats, bar)
    finally:
        # on success the caller renames it; on failure it keeps the docs done
        path.write_bytes(docbin.to_bytes())
