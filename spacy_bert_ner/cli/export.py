from pathlib import Path

import typer
from wasabi import msg

from spacy_bert_ner.cli._util import app, fail
from spacy_bert_ner.errors import InputError


@app.command("export")
def export_cli(
    input_path: Path = typer.Argument(..., help=".spacy file"),
    output_path: Path = typer.Argument(..., help="Output: token<TAB>IOB2-tag, blank line between sentences ('-' for stdout)"),
) -> None:
    """Write a .spacy file back to a CoNLL-style column file with IOB2 tags."""
    from spacy_bert_ner.formats.docbin import export_conll

    if not input_path.is_file():
        fail(InputError(input_path, None, "file not found"))
    n_sents, n_tokens = export_conll(input_path, None if str(output_path) == "-" else output_path)
    if str(output_path) != "-":
        msg.good(f"{output_path}: {n_sents} sentences, {n_tokens} tokens")
