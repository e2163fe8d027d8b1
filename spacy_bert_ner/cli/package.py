from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from spacy_bert_ner.cli._util import app, fail


@app.command("package")
def package_cli(
    model: Path = typer.Argument(..., help="Trained pipeline directory (e.g. training/model-best)"),
    output_dir: Path = typer.Argument(..., help="Where the package folder and wheels go"),
    name: str = typer.Option(..., "--name", help="Package name without the language prefix, e.g. bert_ner_wikiann"),
    version: str = typer.Option("0.1.0", "--version"),
    metrics: Optional[Path] = typer.Option(
        None, "--metrics", help="Metrics JSON from evaluate, stored in the meta; also renders the model card (README)"
    ),
    speed: Optional[Path] = typer.Option(
        None, "--speed", help="JSON of benchmarks/benchmark_runtimes.py: words/s per runtime in the model card"
    ),
    runtime: Optional[str] = typer.Option(
        None,
        "--runtime",
        "-r",
        help="The packaged model's default transformer runtime: fp32, int8, onnx or onnx-int8 (the weights stay fp32)",
    ),
) -> None:
    """Build a pip-installable model wheel with `spacy package` (metrics and
    runtime requirements in its meta), and the spacy-bert-ner wheel it needs beside it."""
    from spacy_bert_ner.packaging.package import package

    readme = None
    if metrics:
        import srsly

        from spacy_bert_ner.packaging.modelcard import model_card
        from spacy_bert_ner.project.datasets import dataset_card

        data = srsly.read_json(metrics)
        readme = model_card(
            model, metrics, name, version, dataset=dataset_card(data.get("data")), speed=srsly.read_json(speed) if speed else None
        )
    try:
        wheels = package(model, output_dir, name, version, metrics_path=metrics, readme=readme, runtime=runtime)
    except (ValueError, RuntimeError, OSError) as error:
        fail(error)
    msg.good(f"Built {wheels[0]}", "pip install " + " ".join(str(w) for w in wheels))
