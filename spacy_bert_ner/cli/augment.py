from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from spacy_bert_ner.cli._util import app, fail
from spacy_bert_ner.errors import InputError


@app.command("augment")
def augment_cli(
    input_path: Path = typer.Argument(..., help="Labelled .spacy file (the training data)"),
    output_path: Path = typer.Argument(
        ..., help="Output: .spacy keeps the entities; any other name is plain text, one sentence per line"
    ),
    copies: int = typer.Option(1, "--copies", "-n", help="Copies of each sentence that has entities"),
    seed: int = typer.Option(0, "--seed", help="Random seed of the mention draws"),
    limit: Optional[int] = typer.Option(None, "--limit", help="Write at most this many sentences"),
) -> None:
    """Write copies of a corpus's sentences with every entity mention replaced
    by another mention of the same label from the corpus: in-domain text for
    `distill --unlabelled` to have the teacher teach."""
    from spacy_bert_ner.training.augment import augment_docbin

    if not input_path.is_file():
        fail(InputError(input_path, None, "file not found"))
    try:
        n_written, n_with_entities = augment_docbin(input_path, output_path, copies, seed, limit)
    except ValueError as error:
        fail(error)
    msg.good(f"{output_path}: {n_written} sentences, from {n_with_entities} with entities in {input_path}")
