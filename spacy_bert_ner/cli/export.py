from pathlib import Path

import typer
from wasabi import msg

from spacy_bert_ner.cli._util import app, fail
from spacy_bert_ner.errors import InputError


@app.command("export")
def export_cli(
    input_path: Path = typer.Argument(..., help=".spacy file"),
    output_path: Path = typer.Argument(..., help="Output file ('-' for stdout)"),
    file_format: str = typer.Option(
        "conll",
        "--format",
        "-f",
        help="conll: token<TAB>IOB2-tag, blank line between sentences; text: one sentence per line, "
        "tokens joined by spaces (the plain text distill --unlabelled reads)",
    ),
) -> None:
    """Write a .spacy file back to a CoNLL-style column file with IOB2 tags, or
    to plain text."""
    from spacy_bert_ner.formats.docbin import EXPORT_FORMATS, export_docbin

    if not input_path.is_file():
        fail(InputError(input_path, None, "file not found"))
    if file_format not in EXPORT_FORMATS:
        fail(ValueError(f"--format {file_format}: use {' or '.join(EXPORT_FORMATS)}"))
    n_sents, n_tokens = export_docbin(input_path, None if str(output_path) == "-" else output_path, file_format)
    if str(output_path) != "-":
        msg.good(f"{output_path}: {n_sents} sentences, {n_tokens} tokens")
