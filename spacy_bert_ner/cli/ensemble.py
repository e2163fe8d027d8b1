from pathlib import Path
from typing import List

import typer
from wasabi import msg

from spacy_bert_ner.cli._util import app, fail


@app.command("ensemble")
def ensemble_cli(
    models: List[Path] = typer.Argument(..., help="Two or more trained pipelines ending with bert_ner, with the same labels"),
    output_dir: Path = typer.Argument(..., help="Where to save the ensemble pipeline"),
) -> None:
    """Join trained bert_ner pipelines into one that averages their tag
    probabilities at prediction time (an ensemble: N models' cost)."""
    from spacy_bert_ner.training.combine import ensemble_pipelines

    try:
        ensemble_pipelines(models, output_dir)
    except (ValueError, OSError) as error:
        fail(error)
    msg.good(f"Saved the ensemble of {len(models)} pipelines to {output_dir}")
