from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from spacy_bert_ner.cli._util import app, fail


@app.command("fetch-data")
def fetch_data_cli(
    dataset: str = typer.Argument(..., help="wikiann-en, gmb, or conll (your own files: nothing to fetch)"),
    dest: Path = typer.Argument(Path("assets"), help="Folder to put the files in"),
    source: Optional[Path] = typer.Option(
        None, "--source", help="Local data folder (default: $SPACY_BERT_NER_DATA); without one, download"
    ),
) -> None:
    """Get a project dataset's files, from a local folder or the internet, checked by sha256."""
    from spacy_bert_ner.project.datasets import fetch_dataset

    if dataset == "conll":
        msg.info("dataset 'conll' uses your own files (vars train_file, dev_file, test_file): nothing to fetch")
        return
    try:
        fetch_dataset(dataset, dest, source, log=msg.text)
    except (ValueError, OSError) as e:
        fail(e)
    msg.good(f"{dataset}: files ready in {dest}")
