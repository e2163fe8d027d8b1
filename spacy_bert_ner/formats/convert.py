"""Convert BIO-tagged files to spaCy DocBin files: read → scheme → Docs → write."""

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from spacy.vocab import Vocab

from spacy_bert_ner.errors import InputError
from spacy_bert_ner.formats.docbin import make_doc, write_docbin
from spacy_bert_ner.formats.read import detect_format, read_sentences
from spacy_bert_ner.formats.schemes import SCHEMES, SchemeStats, Span, TagError, tags_to_spans
from spacy_bert_ner.formats.sentence import Sentence
from spacy_bert_ner.formats.spans import SPAN_FORMATS, SpanReport, detect_span_format, read_span_docs
from spacy_bert_ner.formats.splits import group, split_items


@dataclass
class Repair:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class PartStats:
    """Counts for one output file."""

    path: str
    docs: int = 0
    sentences: int = 0
    tokens: int = 0
    entities: Dict[str, int] = field(default_factory=dict)

    @property
    def n_entities(self) -> int:
        return sum(self.entities.values())


@dataclass
class ConversionReport:
    input: str
    format: str
    scheme: str
    parts: List[PartStats]
    repairs: List[Repair]
    alignment: Optional[Dict] = None  # span exports: what was kept, left out, snapped or skipped

    @property
    def sentences(self) -> int:
        return sum(p.sentences for p in self.parts)

    @property
    def tokens(self) -> int:
        return sum(p.tokens for p in self.parts)

    @property
    def entities(self) -> Dict[str, int]:
        total: Counter = Counter()
        for p in self.parts:
            total.update(p.entities)
        return dict(total)

    def to_dict(self) -> dict:
        return {
            "input": self.input,
            "format": self.format,
            "scheme": self.scheme,
            "sentences": self.sentences,
            "tokens": self.tokens,
            "entities": self.entities,
            "repairs": len(self.repairs),
            "outputs": [
                {"path": p.path, "docs": p.docs, "sentences": p.sentences, "tokens": p.tokens, "entities": p.entities}
                for p in self.parts
            ],
            **({"alignment": self.alignment} if self.alignment is not None else {}),
        }


Decoded = Tuple[Sentence, List[Span]]


def decode_sentences(
    sentences: Sequence[Sentence], scheme: Optional[str] = None, strict: bool = False
) -> Tuple[str, List[Decoded], List[Repair]]:
    """Detect the scheme (unless given) over all sentences and decode each to spans."""
    if scheme is None:
        stats = SchemeStats()
        for sent in sentences:
            try:
                stats.update(sent.tags)
            except TagError as e:
                raise InputError(sent.path, _line(sent, e.index), str(e)) from None
        scheme = stats.scheme()
    elif scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    decoded: List[Decoded] = []
    repairs: List[Repair] = []
    for sent in sentences:
        try:
            result = tags_to_spans(sent.tags, scheme, strict=strict)
        except TagError as e:
            hint = " (--strict is on)" if strict and "unknown tag" not in str(e) else ""
            raise InputError(sent.path, _line(sent, e.index), f"{e}{hint}") from None
        repairs.extend(Repair(sent.path, _line(sent, i), msg) for i, msg in result.repairs)
        decoded.append((sent, result.spans))
    return scheme, decoded, repairs


def _line(sent: Sentence, index: int) -> int:
    if sent.lines:
        return sent.lines[min(index, len(sent.lines) - 1)]
    return 0


def convert(
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    *,
    format: Optional[str] = None,
    scheme: Optional[str] = None,
    strict: bool = False,
    n_sents: int = 1,
    by_document: bool = False,
    split: Optional[Sequence[float]] = None,
    seed: int = 0,
    encoding: Optional[str] = None,
    label_names: Optional[Sequence[str]] = None,
    limit: int = 0,
    strip_control: bool = False,
    misaligned: str = "error",
    annotator: Optional[str] = None,
) -> ConversionReport:
    """Convert one input file.

    Without ``split`` the output is one ``.spacy`` file. With ``split`` (two or
    three fractions) ``output_path`` is a directory that receives
    ``train.spacy``, ``dev.spacy`` (and ``test.spacy``), cut from a seeded shuffle
    of the sentences. ``n_sents`` sentences go into one Doc (0 = no limit);
    with ``by_document`` a Doc never crosses a ``-DOCSTART-`` boundary.
    ``limit`` > 0 keeps only the first ``limit`` sentences of each output
    (for smoke tests). ``strip_control`` removes control characters from tokens
    instead of failing on them. Nothing is written unless the whole input reads
    and decodes, and an input without a single sentence is an error.

    Span exports of annotation tools (``prodigy``, ``doccano``,
    ``label-studio``; see :mod:`spacy_bert_ner.formats.spans`) give one Doc
    per record, tokenized by spaCy's English tokenizer (or the tool's
    tokens); ``misaligned`` says what a span off the token boundaries does
    (``error``, ``snap``, ``skip``) and ``annotator`` picks a Label Studio
    annotator's annotations.
    """
    fmt = format or detect_format(input_path)
    if fmt in SPAN_FORMATS or (format is None and fmt == "hf" and detect_span_format(input_path)):
        return _convert_spans(input_path, output_path, format, split, seed, limit, misaligned, annotator)
    if misaligned != "error" or annotator is not None:
        raise ValueError("--misaligned and --annotator apply to span exports (prodigy, doccano, label-studio)")
    sentences = list(read_sentences(input_path, fmt, encoding=encoding, label_names=label_names, strip_control=strip_control))
    if not sentences:
        raise InputError(
            input_path, None, "no sentences found: the file holds no token lines (only blank lines or document separators?)"
        )
    used_scheme, decoded, repairs = decode_sentences(sentences, scheme, strict)
    if split:
        out_dir = Path(output_path)
        if out_dir.suffix == ".spacy":
            raise ValueError(f"with --split the output must be a directory, got {output_path}")
        parts = {name: items for name, items in split_items(decoded, split, seed).items()}
        targets = [(out_dir / f"{name}.spacy", items) for name, items in parts.items()]
    else:
        targets = [(Path(output_path), decoded)]
    if limit > 0:
        targets = [(target, items[:limit]) for target, items in targets]
    vocab = Vocab()
    stats_list: List[PartStats] = []
    for target, items in targets:
        stats = PartStats(str(target))
        entity_counts: Counter = Counter()
        key = (lambda d: d[0].doc_id) if by_document else None

        def docs():
            for chunk in group(items, n_sents, key=key):
                stats.sentences += len(chunk)
                stats.tokens += sum(len(s.words) for s, _ in chunk)
                for _, spans in chunk:
                    entity_counts.update(label for _, _, label in spans)
                yield make_doc(vocab, [(s.words, spans) for s, spans in chunk])

        stats.docs = write_docbin(docs(), target)
        stats.entities = dict(sorted(entity_counts.items()))
        stats_list.append(stats)
    return ConversionReport(str(input_path), fmt, used_scheme, stats_list, repairs)


def _convert_spans(
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    format: Optional[str],
    split: Optional[Sequence[float]],
    seed: int,
    limit: int,
    misaligned: str,
    annotator: Optional[str],
) -> ConversionReport:
    """A span export to one ``.spacy`` file (or ``train``/``dev``/``test`` with ``split``)."""
    import spacy

    nlp = spacy.blank("en")
    report = SpanReport(format or "")
    docs = list(read_span_docs(nlp, input_path, format, misaligned, annotator, report))
    if not docs:
        raise InputError(input_path, None, f"no annotated records found ({report.to_dict()['left_out'] or 'empty file?'})")
    if split:
        if Path(output_path).suffix == ".spacy":
            raise ValueError(f"with --split the output must be a directory, got {output_path}")
        targets = [(Path(output_path) / f"{name}.spacy", items) for name, items in split_items(docs, split, seed).items()]
    else:
        targets = [(Path(output_path), docs)]
    stats_list = []
    for target, items in targets:
        items = items[:limit] if limit > 0 else items
        stats = PartStats(str(target), docs=len(items), sentences=len(items), tokens=sum(len(d) for d in items))
        stats.entities = dict(sorted(Counter(e.label_ for d in items for e in d.ents).items()))
        write_docbin(items, target)
        stats_list.append(stats)
    return ConversionReport(str(input_path), report.format, "spans", stats_list, [], alignment=report.to_dict())
