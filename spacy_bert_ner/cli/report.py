from pathlib import Path

import typer
from wasabi import msg

from spacy_bert_ner.cli._util import app, fail, load_pipeline


@app.command("report")
def report_cli(
    model: str = typer.Argument(..., help="Pipeline directory or installed package name"),
    data_path: Path = typer.Argument(..., help="Gold .spacy file"),
    output_dir: Path = typer.Argument(..., help="Folder for report.md/json, errors.html and the plots"),
    examples: int = typer.Option(30, "--examples", "-n", help="Documents with the most errors to show in errors.html"),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Draw the PNG plots (needs matplotlib)"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for CPU"),
    batch_size: int = typer.Option(64, "--batch-size", "-b"),
) -> None:
    """Error analysis: per-label P/R/F1, error types, confusion matrix, plots and a displaCy page of the worst errors."""
    from spacy_bert_ner.errors import MissingDependency
    from spacy_bert_ner.evaluation.errors import error_table
    from spacy_bert_ner.evaluation.plots import require_matplotlib
    from spacy_bert_ner.evaluation.report import write_report
    from spacy_bert_ner.evaluation.scoring import markdown_table

    if plots:
        try:
            require_matplotlib()
        except MissingDependency as e:
            fail(e)
    nlp = load_pipeline(model, data_path, gpu_id)
    analysis = write_report(
        nlp, data_path, output_dir, batch_size=batch_size, n_examples=examples, plots=plots, title=f"{model} on {data_path}"
    )
    print(markdown_table(analysis["scores"]))
    print(error_table(analysis))
    msg.good(f"Report in {output_dir}", ", ".join(Path(f).name for f in analysis["files"]))
