from pathlib import Path
from typing import List

import typer
from wasabi import msg

from spacy_bert_ner.cli._util import app, fail


@app.command("average")
def average_cli(
    models: List[Path] = typer.Argument(..., help="Two or more trained pipelines: same config and seed, other settings free"),
    output_dir: Path = typer.Argument(..., help="Where to save the averaged pipeline"),
) -> None:
    """Average the weights of pipelines fine-tuned from the same start (a model soup): one model, ensemble-like scores."""
    from spacy_bert_ner.training.combine import average_pipelines

    try:
        average_pipelines(models, output_dir)
    except (ValueError, OSError) as error:
        fail(error)
    msg.good(f"Saved the weight average of {len(models)} pipelines to {output_dir}")
