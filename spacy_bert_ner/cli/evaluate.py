import sys
from pathlib import Path
from typing import Optional

import typer

from spacy_bert_ner.cli._util import RUNTIME_HELP, app, fail, load_pipeline, save
from spacy_bert_ner.errors import InputError


@app.command("evaluate")
def evaluate_cli(
    model: str = typer.Argument(..., help="Pipeline directory or installed package name"),
    data_path: Path = typer.Argument(..., help="Gold .spacy file"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Metrics JSON"),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Metrics as a Markdown table"),
    train_log: Optional[Path] = typer.Option(None, "--train-log", help="JSONL training log, for steps and training time"),
    members_json: Optional[Path] = typer.Option(
        None,
        "--members-json",
        help="members.json of `spacy-bert-ner train`, for its members' steps and training time (instead of --train-log)",
    ),
    config_name: Optional[str] = typer.Option(None, "--config-name", help="Config the model was trained with (recorded)"),
    command: Optional[str] = typer.Option(None, "--command", help="The command that reproduces this result (recorded)"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for CPU"),
    batch_size: int = typer.Option(64, "--batch-size", "-b"),
    runtime: Optional[str] = typer.Option(None, "--runtime", "-r", help=RUNTIME_HELP),
) -> None:
    """Entity-level precision, recall and F1, overall and per label, on gold tokens."""
    from spacy_bert_ner.evaluation.evaluate import evaluate
    from spacy_bert_ner.evaluation.scoring import markdown_table
    from spacy_bert_ner.project.members import member_logs

    try:
        logs = member_logs(members_json) if members_json else train_log
    except InputError as error:
        fail(error)
    nlp = load_pipeline(model, data_path, gpu_id, runtime)
    result = evaluate(nlp, data_path, batch_size=batch_size, train_log=logs)
    result["model"] = model
    if config_name:
        result["config"] = config_name
    result["command"] = command or " ".join(["spacy-bert-ner"] + sys.argv[1:])
    table = markdown_table(result, title=f"{model} on {data_path}")
    print(table)
    save(output, result, markdown, table, "metrics")
