from pathlib import Path

import typer
from wasabi import msg

from spacy_bert_ner.cli._util import app, fail
from spacy_bert_ner.errors import InputError, MissingDependency


@app.command("plot-training")
def plot_training_cli(
    train_log: Path = typer.Argument(..., help="train-log.jsonl written by spacy_bert_ner.JsonlLogger.v1"),
    output_path: Path = typer.Argument(..., help="PNG file"),
) -> None:
    """Plot the dev score and the training losses against the step (needs matplotlib)."""
    from spacy_bert_ner.evaluation.plots import plot_training

    try:
        plot_training(train_log, output_path)
    except (MissingDependency, InputError) as e:
        fail(e)
    msg.good(f"Saved {output_path}")
