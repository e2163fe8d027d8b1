from pathlib import Path

import typer
from wasabi import msg

from spacy_bert_ner.cli._util import app, fail


@app.command("train", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train_cli(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="Training config (.cfg)"),
    output_dir: Path = typer.Argument(..., help="Gets member-K/ (each a spacy train output), model-best/ and members.json"),
    members: int = typer.Option(1, "--members", "-m", help="Pipelines to train at once and combine (1: plain spacy train)"),
    combine: str = typer.Option(
        "average",
        "--combine",
        help="average: the mean of the members' weights (one model's cost); ensemble: average their predictions (members x the cost)",
    ),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for CPU"),
    max_steps: int = typer.Option(
        0, "--max-steps", help="Optimizer steps, the learning-rate schedule following (0: the config's)"
    ),
    eval_frequency: int = typer.Option(0, "--eval-frequency", help="Steps between dev evaluations (0: the config's)"),
) -> None:
    """Train one pipeline with `spacy train`, or several at once from the same
    start, each reading the data in its own order, combined into one by
    weight averaging or as an ensemble. Other options (--paths.train ...,
    --training.dropout ...) go to spacy train."""
    from spacy_bert_ner.project.members import schedule_overrides, train_members

    try:
        overrides = [*schedule_overrides(max_steps, eval_frequency), *ctx.args]
        best = train_members(config, output_dir, members, overrides, gpu_id, log=msg.info, combine=combine)
    except (ValueError, RuntimeError, OSError) as error:
        fail(error)
    what = "weight average" if combine == "average" else "ensemble"
    msg.good(f"Saved {best}" + (f", the {what} of {members} members" if members > 1 else ""))
