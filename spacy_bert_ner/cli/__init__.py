"""The ``spacy-bert-ner`` command line: one module per command, each a thin typer
shell over a function of the package (as ``spacy/cli/`` does)."""

from spacy_bert_ner.cli import (  # noqa: F401  (each module adds its command to the app)
    annotate,
    augment,
    average,
    calibrate,
    convert,
    distill,
    ensemble,
    evaluate,
    export,
    fetch_data,
    package,
    plot_training,
    predict,
    prepare,
    report,
    serve,
    train,
)
from spacy_bert_ner.cli._util import app


def main() -> None:
    app()
