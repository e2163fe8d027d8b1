from pathlib import Path
from typing import Optional

import typer

from spacy_bert_ner.cli._util import app, fail
from spacy_bert_ner.cli.convert import print_conversion
from spacy_bert_ner.errors import InputError


@app.command("prepare")
def prepare_cli(
    dataset: str = typer.Argument(..., help="wikiann-en, gmb, or conll (your own files via --train/--dev/--test)"),
    assets: Path = typer.Argument(Path("assets"), help="Folder that fetch-data filled"),
    output_dir: Path = typer.Argument(..., help="Writes train.spacy, dev.spacy, test.spacy here"),
    train: Optional[Path] = typer.Option(None, "--train", help="conll: the training file"),
    dev: Optional[Path] = typer.Option(None, "--dev", help="conll: the development file"),
    test: Optional[Path] = typer.Option(None, "--test", help="conll: the test file"),
    split: str = typer.Option("0.8,0.1,0.1", "--split", help="gmb: train,dev,test fractions"),
    seed: int = typer.Option(0, "--seed", help="gmb: seed of the split"),
    n_sents: int = typer.Option(1, "--n-sents", "-n", help="Sentences per Doc"),
    limit: int = typer.Option(0, "--limit", help="Keep only the first N docs of each split (0: all), for smoke tests"),
) -> None:
    """Convert a project dataset's known file layout to train/dev/test .spacy files."""
    from spacy_bert_ner.project.prepare import prepare

    try:
        reports = prepare(
            dataset, assets, output_dir, train=train, dev=dev, test=test, split=split, seed=seed, n_sents=n_sents, limit=limit
        )
    except (InputError, ValueError, FileNotFoundError) as e:
        fail(e)
    for report in reports:
        print_conversion(report)
