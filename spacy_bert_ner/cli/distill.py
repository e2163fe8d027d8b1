from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from spacy_bert_ner.cli._util import app, fail


@app.command("distill", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def distill_cli(
    ctx: typer.Context,
    teacher: str = typer.Argument(..., help="The teacher: a trained bert_ner pipeline (directory or package; an ensemble too)"),
    config: Path = typer.Argument(..., help="The student's training config (.cfg), e.g. configs/bert-ner-cpu.cfg"),
    output_dir: Path = typer.Argument(..., help="Gets teacher-corpus.spacy, member-0/, model-best/ and members.json"),
    train: Path = typer.Option(..., "--paths.train", help="Training data (.spacy) the teacher annotates"),
    unlabelled: Optional[str] = typer.Option(
        None, "--unlabelled", help="Extra plain text, one document per line, taught by the teacher alone ('': none)"
    ),
    weight: Optional[float] = typer.Option(
        None, "--weight", help="Share of the teacher's term in the loss, 0-1 (default: the config's distillation.weight)"
    ),
    temperature: Optional[float] = typer.Option(
        None, "--temperature", help="Softening of both distributions (default: the config's distillation.temperature)"
    ),
    teacher_runtime: Optional[str] = typer.Option(
        None,
        "--teacher-runtime",
        help="Inference runtime of the teacher's pass: fp32, int8, onnx, onnx-int8 (default: the teacher's own; onnx is fp32 and faster on a CPU)",
    ),
    members: int = typer.Option(1, "--members", "-m", help="Students to train at once and combine (1: plain spacy train)"),
    combine: str = typer.Option(
        "average",
        "--combine",
        help="average: the mean of the students' weights (one model's cost); ensemble: average their predictions (members x the cost)",
    ),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for CPU"),
    max_steps: int = typer.Option(
        0, "--max-steps", help="Optimizer steps, the learning-rate schedule following (0: the config's)"
    ),
    eval_frequency: int = typer.Option(0, "--eval-frequency", help="Steps between dev evaluations (0: the config's)"),
) -> None:
    """Train a student on a teacher's soft tag probabilities mixed with the
    gold tags (knowledge distillation). The teacher annotates the training
    Docs (and --unlabelled text) once; the student then trains with spacy
    train. Other options (--paths.dev ..., --paths.transformer ...) go to
    spacy train."""
    from spacy_bert_ner.project.distill import distill
    from spacy_bert_ner.project.members import schedule_overrides

    try:
        overrides = [*schedule_overrides(max_steps, eval_frequency), *ctx.args]
        extra = Path(unlabelled) if unlabelled else None
        best = distill(
            teacher,
            config,
            output_dir,
            train,
            extra,
            weight,
            temperature,
            overrides,
            gpu_id,
            log=msg.info,
            teacher_runtime=teacher_runtime,
            members=members,
            combine=combine,
        )
    except (ValueError, RuntimeError, OSError, ImportError) as error:
        fail(error)
    msg.good(f"Saved the student {best}")
