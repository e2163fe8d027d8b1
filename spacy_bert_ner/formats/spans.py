"""Span-annotated exports of annotation tools: Prodigy, doccano and Label Studio.

These tools store a document's text and its entities as character offsets,
not as tags per token. Each reader yields :class:`SpanRecord` objects (the
text, the spans, where the record came from) and counts what it leaves out
by the tool's own rules (Prodigy answers other than ``accept``, cancelled
Label Studio annotations); :func:`align_record` then matches the spans to
spaCy tokens, where a span that does not fall on token boundaries is an
error, snapped to the nearest token-aligned span, or skipped, and every
choice is counted.

Formats, as the tools document them:

* Prodigy JSONL (``db-out``): ``{"text", "tokens"?, "spans": [{"start",
  "end", "label"}], "answer": "accept"|"reject"|"ignore"}``. When ``tokens``
  is there (``{"text", "start", "end", "ws"?}``) it is the tokenization.
* doccano JSONL (sequence labelling export): ``{"text", "label": [[start,
  end, label], ...]}`` (``labels`` in some versions), or the ``entities``
  form ``{"text", "entities": [{"start_offset", "end_offset", "label"}]}``.
* Label Studio JSON export: a list of tasks ``{"id", "data": {"text"},
  "annotations": [{"result": [{"type": "labels", "value": {"start", "end",
  "labels": [label]}}], "was_cancelled", "completed_by", "updated_at"}]}``.
  The latest annotation of a task is used (by ``updated_at``, then
  ``created_at``, then list order), or the one by ``annotator``.
"""

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc

from spacy_bert_ner.errors import InputError
from spacy_bert_ner.formats.io import json_lines, open_bytes

SPAN_FORMATS = ("prodigy", "doccano", "label-studio")
MISALIGNED = ("error", "snap", "skip")

CharSpan = Tuple[int, int, str]


@dataclass
class SpanRecord:
    """One annotated document of a span export."""

    where: str  # FILE:LINE, or FILE task ID for Label Studio
    text: str
    spans: List[CharSpan]
    tokens: Optional[List[Tuple[str, bool]]] = None  # (word, followed by a space) when the tool gives the tokens
    path: str = ""
    line: Optional[int] = None
    task: Optional[str] = None  # Label Studio's task id

    @property
    def prefix(self) -> str:
        """What an error message adds to the file (and line): the task of a Label Studio record."""
        return f"task {self.task}: " if self.task is not None else ""


@dataclass
class SpanReport:
    """What a span import kept, left out and changed."""

    format: str
    records: int = 0
    spans: int = 0
    kept: Counter = field(default_factory=Counter)  # by label
    left_out: Counter = field(default_factory=Counter)  # records, by reason
    misaligned: Counter = field(default_factory=Counter)  # snapped / skipped
    details: List[Dict[str, Any]] = field(default_factory=list)  # each misaligned span and what was done

    def to_dict(self) -> Dict[str, Any]:
        return {
            "format": self.format,
            "records": self.records,
            "spans": self.spans,
            "entities": dict(sorted(self.kept.items())),
            "left_out": dict(sorted(self.left_out.items())),
            "misaligned": dict(sorted(self.misaligned.items())),
            "misaligned_spans": self.details,
        }


# --- reading ----------------------------------------------------------------------


def _json_objects(path: Path) -> Iterator[Tuple[int, str, Dict[str, Any]]]:
    """``(line, "FILE:LINE", record)`` of each JSON Lines record, which must be an object."""
    for number, record in json_lines(path):
        if not isinstance(record, dict):
            raise InputError(path, number, f"expected a JSON object, got {type(record).__name__}")
        yield number, f"{path}:{number}", record


def _json_document(path: Path) -> Any:
    with open_bytes(path) as f:
        raw = f.read()
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise InputError(path, None, f"cannot decode: {e.reason} at byte {e.start}") from None
    except json.JSONDecodeError as e:
        raise InputError(path, e.lineno, f"invalid JSON: {e.msg} (column {e.colno})") from None


def detect_span_format(path: Union[str, Path]) -> Optional[str]:
    """``prodigy``, ``doccano`` or ``label-studio`` from a file's first record,
    or None when it looks like none of them (or like more than one)."""
    path = Path(path)
    with open_bytes(path) as f:
        head = f.read(1 << 16).decode("utf-8", errors="replace").lstrip("\ufeff").lstrip()
    if head.startswith("["):
        return "label-studio" if '"annotations"' in head or '"data"' in head else None
    first = next(iter(head.splitlines()), "")
    try:
        record = json.loads(first)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict) or "ner_tags" in record:  # ner_tags: a Hugging Face export
        return None
    if "annotations" in record and "data" in record:
        return "label-studio"
    prodigy = "spans" in record or "answer" in record or "_input_hash" in record
    doccano = "label" in record or "labels" in record or "entities" in record
    if prodigy != doccano:
        return "prodigy" if prodigy else "doccano"
    return None


def _text(path: Path, where: str, line: Optional[int], record: Dict[str, Any]) -> str:
    text = record.get("text")
    if not isinstance(text, str) or not text:
        problem = "no text" if text is None or text == "" else f"text is a {type(text).__name__}, expected a string"
        raise InputError(path, line, f"{where}: {problem}")
    return text


def _span(path: Path, line: Optional[int], where: str, start: Any, end: Any, label: Any) -> CharSpan:
    if isinstance(start, bool) or isinstance(end, bool) or not isinstance(start, int) or not isinstance(end, int):
        raise InputError(path, line, f"{where}: span offsets must be integers, got start={start!r} end={end!r}")
    if not isinstance(label, str) or not label.strip():
        raise InputError(path, line, f"{where}: span [{start}, {end}) has an empty label")
    return start, end, label


def read_prodigy(path: Union[str, Path], report: SpanReport) -> Iterator[SpanRecord]:
    path = Path(path)
    for number, where, record in _json_objects(path):
        answer = record.get("answer", "accept")
        if answer != "accept":
            report.left_out[f"answer {answer}"] += 1
            continue
        text = _text(path, "record", number, record)
        spans = []
        for i, span in enumerate(record.get("spans") or []):
            if not isinstance(span, dict):
                raise InputError(path, number, f"span {i}: expected an object with start, end and label")
            spans.append(_span(path, number, f"span {i}", span.get("start"), span.get("end"), span.get("label")))
        tokens = None
        if record.get("tokens"):
            tokens = _prodigy_tokens(path, number, text, record["tokens"])
        yield SpanRecord(where, text, spans, tokens, str(path), number)


def _prodigy_tokens(path: Path, line: int, text: str, tokens: Any) -> List[Tuple[str, bool]]:
    """The words of Prodigy's ``tokens`` and whether a space follows each; they must cover the text."""
    out: List[Tuple[str, bool]] = []
    if not isinstance(tokens, list):
        raise InputError(path, line, "tokens must be a list")
    for i, token in enumerate(tokens):
        start, end = (token.get("start"), token.get("end")) if isinstance(token, dict) else (None, None)
        if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end <= len(text):
            raise InputError(path, line, f"token {i}: needs start < end within the text, got {token!r}")
        following = tokens[i + 1].get("start") if i + 1 < len(tokens) and isinstance(tokens[i + 1], dict) else len(text)
        ws = token.get("ws", following != end)
        out.append((text[start:end], bool(ws)))
    return out


def read_doccano(path: Union[str, Path], report: SpanReport) -> Iterator[SpanRecord]:
    path = Path(path)
    for number, where, record in _json_objects(path):
        text = _text(path, "record", number, record)
        spans = []
        if "entities" in record:
            for i, ent in enumerate(record.get("entities") or []):
                if not isinstance(ent, dict):
                    raise InputError(path, number, f"entity {i}: expected an object with start_offset, end_offset and label")
                spans.append(_span(path, number, f"entity {i}", ent.get("start_offset"), ent.get("end_offset"), ent.get("label")))
        else:
            for i, item in enumerate(record.get("label", record.get("labels")) or []):
                if not isinstance(item, (list, tuple)) or len(item) != 3:
                    raise InputError(path, number, f"label {i}: expected [start, end, label], got {item!r}")
                spans.append(_span(path, number, f"label {i}", *item))
        yield SpanRecord(where, text, spans, None, str(path), number)


def _latest(annotations: List[Dict[str, Any]]) -> Dict[str, Any]:
    def key(item: Tuple[int, Dict[str, Any]]):
        index, annotation = item
        return (str(annotation.get("updated_at") or ""), str(annotation.get("created_at") or ""), index)

    return max(enumerate(annotations), key=key)[1]


def _annotator(annotation: Dict[str, Any]) -> str:
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email", who.get("id"))
    return "" if who is None else str(who)


def read_label_studio(path: Union[str, Path], report: SpanReport, annotator: Optional[str] = None) -> Iterator[SpanRecord]:
    path = Path(path)
    tasks = _json_document(path)
    if not isinstance(tasks, list):
        raise InputError(path, None, f"expected a list of tasks (Label Studio's JSON export), got {type(tasks).__name__}")
    for index, task in enumerate(tasks):
        if not isinstance(task, dict):
            raise InputError(path, None, f"task {index}: expected an object, got {type(task).__name__}")
        task_id = task.get("id", index)
        where = f"{path} task {task_id}"
        data = task.get("data")
        if not isinstance(data, dict):
            raise InputError(path, None, f"task {task_id}: no data")
        text = _text(path, f"task {task_id}", None, data)
        annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict)]
        cancelled = [a for a in annotations if a.get("was_cancelled")]
        report.left_out["cancelled annotation"] += len(cancelled)
        annotations = [a for a in annotations if not a.get("was_cancelled")]
        if annotator is not None:
            annotations = [a for a in annotations if _annotator(a) == annotator]
        if not annotations:
            report.left_out["task without an annotation" + (f" by {annotator}" if annotator else "")] += 1
            continue
        if len(annotations) > 1:
            report.left_out["older annotation of a task"] += len(annotations) - 1
        spans = []
        for i, result in enumerate(_latest(annotations).get("result") or []):
            if not isinstance(result, dict):
                continue
            kind = result.get("type", "labels")
            value = result.get("value") or {}
            if kind != "labels":
                if "start" in value and "end" in value:  # spans of another tag (HyperTextLabels, ParagraphLabels)
                    raise InputError(
                        path, None, f"task {task_id}: result {i} is a {kind!r} span; only <Labels> on a <Text> are entities"
                    )
                report.left_out[f"{kind} result"] += 1  # choices, relations, text areas: not entities
                continue
            labels = value.get("labels") or []
            if len(labels) != 1:
                raise InputError(path, None, f"task {task_id}: result {i} has {len(labels)} labels, expected one")
            start, end, label = _span(path, None, f"task {task_id}: result {i}", value.get("start"), value.get("end"), labels[0])
            shown = value.get("text")
            if isinstance(shown, str) and 0 <= start < end <= len(text) and text[start:end] != shown:
                raise InputError(
                    path,
                    None,
                    f"task {task_id}: result {i} [{start}, {end}) says {shown!r} but the text there is {text[start:end]!r} "
                    "(offsets counted in other units than characters?)",
                )
            spans.append((start, end, label))
        yield SpanRecord(where, text, spans, None, str(path), None, str(task_id))


def read_span_records(
    path: Union[str, Path], format: Optional[str], report: SpanReport, annotator: Optional[str] = None
) -> Iterator[SpanRecord]:
    """The records of a span export, in the given or detected format."""
    fmt = format or detect_span_format(path)
    if fmt is None:
        raise InputError(path, None, f"cannot tell the annotation tool's format; pass --format ({', '.join(SPAN_FORMATS)})")
    if annotator is not None and fmt != "label-studio":
        raise ValueError("--annotator chooses among Label Studio annotations; the other formats have one per record")
    report.format = fmt
    if fmt == "prodigy":
        return read_prodigy(path, report)
    if fmt == "doccano":
        return read_doccano(path, report)
    if fmt == "label-studio":
        return read_label_studio(path, report, annotator)
    raise ValueError(f"unknown span format {fmt!r}; expected one of {', '.join(SPAN_FORMATS)}")


# --- aligning to tokens -------------------------------------------------------------


def nearest_token_span(doc: Doc, start: int, end: int) -> Optional[Tuple[int, int]]:
    """The token-aligned character span closest to ``[start, end)``: of the
    span shrunk to the tokens inside it and the span grown to the tokens it
    touches, the one whose ends move the fewest characters (shrunk on a tie);
    None when neither exists."""
    options = []
    for mode in ("contract", "expand"):
        span = doc.char_span(start, end, alignment_mode=mode)
        if span is not None and len(span):
            options.append((abs(span.start_char - start) + abs(span.end_char - end), span.start_char, span.end_char))
    if not options:
        return None
    _, s, e = min(options, key=lambda option: option[0])
    return s, e


def make_record_doc(nlp: Language, record: SpanRecord) -> Doc:
    """The record's Doc: the tool's tokens when it gave them, else ``nlp``'s tokenizer."""
    if record.tokens:
        words = [w for w, _ in record.tokens]
        doc = Doc(nlp.vocab, words=words, spaces=[s for _, s in record.tokens])
        if doc.text != record.text:
            raise InputError(record.path, record.line, f"{record.prefix}the tokens do not spell out the text")
        return doc
    return nlp.make_doc(record.text)


def align_record(nlp: Language, record: SpanRecord, misaligned: str, report: SpanReport) -> Doc:
    """The record as a Doc with its spans as ``doc.ents``.

    A span out of the text's range, overlapping another, or (with
    ``misaligned="error"``) off the token boundaries is an error naming the
    record, the span's text and offsets and, for a misaligned one, the
    nearest token-aligned span. ``snap`` uses that span instead, ``skip``
    drops the span; both are counted and listed in ``report``.
    """
    if misaligned not in MISALIGNED:
        raise ValueError(f"misaligned must be one of {', '.join(MISALIGNED)}, got {misaligned!r}")
    doc = make_record_doc(nlp, record)
    text = record.text
    entities = []
    for start, end, label in sorted(record.spans):
        report.spans += 1
        shown = f"[{start}, {end}) {label}"
        if not 0 <= start < end <= len(text):
            raise InputError(
                record.path, record.line, f"{record.prefix}span {shown} is out of range for a text of {len(text)} characters"
            )
        span = doc.char_span(start, end, label=label)
        if span is None:
            nearest = nearest_token_span(doc, start, end)
            detail = {
                "record": record.where,
                "text": text[start:end],
                "start": start,
                "end": end,
                "label": label,
                "nearest": None
                if nearest is None
                else {"start": nearest[0], "end": nearest[1], "text": text[nearest[0] : nearest[1]]},
            }
            if misaligned == "error" or (misaligned == "snap" and nearest is None):
                hint = (
                    f"the nearest token-aligned span is [{nearest[0]}, {nearest[1]}) {text[nearest[0] : nearest[1]]!r}"
                    if nearest
                    else "no token lies inside or under it"
                )
                raise InputError(
                    record.path,
                    record.line,
                    f"{record.prefix}span {shown} {text[start:end]!r} does not fall on token boundaries; {hint} "
                    "(--misaligned snap uses it, --misaligned skip drops the span)",
                )
            report.misaligned["snapped" if misaligned == "snap" else "skipped"] += 1
            report.details.append({**detail, "action": "snapped" if misaligned == "snap" else "skipped"})
            if misaligned == "skip":
                continue
            span = doc.char_span(nearest[0], nearest[1], label=label)
        if entities and span.start < entities[-1].end:
            previous = entities[-1]
            raise InputError(
                record.path,
                record.line,
                f"{record.prefix}span {shown} {text[start:end]!r} overlaps [{previous.start_char}, {previous.end_char}) "
                f"{previous.label_} {previous.text!r}; NER entities cannot overlap",
            )
        entities.append(span)
        report.kept[label] += 1
    doc.ents = entities
    report.records += 1
    return doc


def read_span_docs(
    nlp: Language,
    path: Union[str, Path],
    format: Optional[str] = None,
    misaligned: str = "error",
    annotator: Optional[str] = None,
    report: Optional[SpanReport] = None,
) -> Iterator[Doc]:
    """Docs with their entities from a Prodigy, doccano or Label Studio export."""
    report = report if report is not None else SpanReport(format or "")
    for record in read_span_records(path, format, report, annotator):
        yield align_record(nlp, record, misaligned, report)


def spans_of(doc: Doc) -> List[CharSpan]:
    """A Doc's entities as character spans (the tools' form)."""
    return [(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents]


__all__: Sequence[str] = ["SPAN_FORMATS", "MISALIGNED", "SpanRecord", "SpanReport", "read_span_docs", "align_record", "spans_of"]
