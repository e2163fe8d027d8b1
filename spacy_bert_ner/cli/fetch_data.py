from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from spacy_bert_ner.cli._util import app, fail


@app.command("fetch-data")
def fetch_data_cli(
    dataset: str = typer.Argument(..., help="wikiann-en, gmb, or conll / spans (your own files)"),
    dest: Path = typer.Argument(Path("assets"), help="Folder to put the files in"),
    source: Optional[Path] = typer.Option(
        None, "--source", help="Local data folder (default: $SPACY_BERT_NER_DATA); without one, download"
    ),
    train: Optional[Path] = typer.Option(None, "--train", help="Your train file (datasets of your own files)"),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Your dev file (datasets of your own files)"),
    test: Optional[Path] = typer.Option(None, "--test", help="Your test file (datasets of your own files)"),
) -> None:
    """Get a project dataset's files, from a local folder or the internet, checked by sha256.

    Every file is recorded with its sha256 in ``DEST/<dataset>/files.json``,
    which the project's ``convert`` step depends on. For a dataset of your
    own files (``conll``, ``spans``) nothing is fetched: the files are checked and recorded.
    """
    from spacy_bert_ner.project.datasets import OWN_FILES, fetch_dataset, record_files, record_own_files

    try:
        if dataset in OWN_FILES:
            manifest = record_own_files(dataset, dest, {"train": train, "dev": dev, "test": test})
            msg.good(f"{dataset}: your files checked, recorded in {manifest}")
            return
        paths = fetch_dataset(dataset, dest, source, log=msg.text)
        record_files(dataset, dest, {path.relative_to(dest).as_posix(): path for path in paths})
    except (ValueError, OSError) as e:
        fail(e)
    msg.good(f"{dataset}: files ready in {dest}")
