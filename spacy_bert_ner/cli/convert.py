from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from spacy_bert_ner.cli._util import app, fail
from spacy_bert_ner.errors import InputError


@app.command("convert")
def convert_cli(
    input_path: Path = typer.Argument(
        ...,
        help="CoNLL-style file, HF export (.jsonl/.json/.parquet), GMB ner_dataset.csv[.gz], or a Prodigy, doccano or Label Studio export",
    ),
    output_path: Path = typer.Argument(..., help="Output .spacy file, or a directory with --split"),
    format: Optional[str] = typer.Option(
        None, "--format", "-f", help="conll, hf, gmb, prodigy, doccano or label-studio (default: from the name and content)"
    ),
    scheme: Optional[str] = typer.Option(None, "--scheme", help="IOB1, IOB2 or BILOU (default: detected)"),
    strict: bool = typer.Option(False, "--strict", help="Fail on ill-formed tag sequences instead of repairing them"),
    n_sents: int = typer.Option(1, "--n-sents", "-n", help="Sentences per Doc (0: no limit)"),
    by_document: bool = typer.Option(
        False, "--by-document", help="Docs never cross a -DOCSTART- boundary (use with -n 0 for one Doc per document)"
    ),
    split: Optional[str] = typer.Option(
        None, "--split", help="Fractions such as 0.8,0.1,0.1: write train/dev/test.spacy into OUTPUT"
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the --split shuffle"),
    encoding: Optional[str] = typer.Option(None, "--encoding", help="Input encoding (default: utf-8; cp1252 for GMB)"),
    labels: Optional[str] = typer.Option(None, "--labels", help="Comma-separated label names for integer ner_tags"),
    report_path: Optional[Path] = typer.Option(None, "--report", help="Also write the counts as JSON"),
    misaligned: str = typer.Option(
        "error", "--misaligned", help="Span exports: a span off the token boundaries is an error, snap (to the nearest) or skip"
    ),
    annotator: Optional[str] = typer.Option(
        None,
        "--annotator",
        help="Label Studio: use this annotator's annotations (completed_by id or e-mail; default: the latest)",
    ),
    strip_control: bool = typer.Option(
        False,
        "--strip-control",
        help="Remove control characters (U+0000-U+001F but tab, U+007F, lone surrogates) from tokens instead of failing",
    ),
) -> None:
    """Convert BIO-tagged data (keeping the words exactly) or an annotation
    tool's span export (aligned to spaCy's tokens) to spaCy's DocBin format."""
    from spacy_bert_ner.formats.convert import convert
    from spacy_bert_ner.formats.splits import parse_split

    try:
        report = convert(
            input_path,
            output_path,
            format=format,
            scheme=scheme.upper() if scheme else None,
            strict=strict,
            n_sents=n_sents,
            by_document=by_document,
            split=parse_split(split) if split else None,
            seed=seed,
            encoding=encoding,
            label_names=labels.split(",") if labels else None,
            strip_control=strip_control,
            misaligned=misaligned,
            annotator=annotator,
        )
    except (InputError, ValueError, LookupError) as e:
        fail(e)
    print_conversion(report)
    if report_path:
        import srsly

        srsly.write_json(report_path, report.to_dict())


def print_conversion(report) -> None:
    """The counts of a :class:`~spacy_bert_ner.formats.convert.ConversionReport` and its first repairs."""
    for part in report.parts:
        msg.good(f"{part.path}: {part.docs} docs, {part.sentences} sentences, {part.tokens} tokens, {part.n_entities} entities")
    total = report.entities
    msg.info(
        f"{report.input} ({report.format}, {report.scheme}): {report.sentences} sentences, "
        f"{report.tokens} tokens, {sum(total.values())} entities"
    )
    if total:
        msg.table(sorted(total.items()), header=("label", "entities"), divider=True)
    if report.alignment is not None:
        _print_alignment(report.alignment)
    if report.repairs:
        msg.warn(f"{len(report.repairs)} ill-formed tag sequences repaired (an I- that starts an entity begins a new one)")
        for r in report.repairs[:10]:
            msg.text(f"  {r}")
        if len(report.repairs) > 10:
            msg.text(f"  ... and {len(report.repairs) - 10} more")


def _print_alignment(alignment: dict) -> None:
    """What a span import left out, snapped and skipped."""
    for reason, count in alignment["left_out"].items():
        msg.info(f"left out: {count} x {reason}")
    for action, count in alignment["misaligned"].items():
        msg.warn(f"{count} spans off the token boundaries {action}")
    for span in alignment["misaligned_spans"][:10]:
        nearest = span["nearest"]
        to = f" -> [{nearest['start']}, {nearest['end']}) {nearest['text']!r}" if nearest and span["action"] == "snapped" else ""
        msg.text(f"  {span['record']}: [{span['start']}, {span['end']}) {span['label']} {span['text']!r}{to}")
