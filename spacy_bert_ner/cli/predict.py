from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from spacy_bert_ner.cli._util import RUNTIME_HELP, app, fail, load_pipeline
from spacy_bert_ner.errors import InputError


@app.command("predict")
def predict_cli(
    model: str = typer.Argument(..., help="Pipeline directory or installed package name"),
    input_path: Path = typer.Argument(..., help='.txt (one document per line), .jsonl ({"text": ...} per line) or .spacy'),
    output_path: Path = typer.Argument(
        ..., help=".jsonl (input record + entities), .spacy, or annotation-tool tasks (.json Label Studio; see --format)"
    ),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Documents per nlp.pipe batch"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for CPU"),
    skip_errors: bool = typer.Option(False, "--skip-errors", help="Skip (and count) bad input lines instead of stopping"),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="Progress bar (default: on a terminal)"),
    runtime: Optional[str] = typer.Option(None, "--runtime", "-r", help=RUNTIME_HELP),
    buffer: int = typer.Option(2048, "--buffer", help="Records read at a time and sorted by length into batches"),
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="Continue the OUTPUT.partial of an interrupted run of the same command"
    ),
    format: Optional[str] = typer.Option(
        None,
        "--format",
        "-f",
        help="jsonl, spacy, label-studio (.json), prodigy or doccano (.jsonl); default: from the suffix",
    ),
    rank: str = typer.Option(
        "none", "--rank", help="uncertainty: the least certain documents first (an ensemble: its members' disagreement)"
    ),
    model_version: Optional[str] = typer.Option(
        None, "--model-version", help="The tasks' model_version (default: the pipeline's name-version)"
    ),
    processes: int = typer.Option(
        1,
        "--processes",
        "-n",
        min=1,
        help="Worker processes, each with its own model and a share of the cores as threads (1: this process annotates)",
    ),
) -> None:
    """Find entities in raw text and write them as JSON Lines, a .spacy file,
    or tasks to correct in Label Studio, Prodigy or doccano, optionally ranked
    for annotation (--rank uncertainty).

    Output goes to OUTPUT.partial, flushed per record, and is renamed to OUTPUT
    on success; after an error OUTPUT.partial keeps what was done, and running
    the same command again continues from there. Empty lines of a .txt input
    are kept as records with no entities, so lines match.
    """
    from spacy_bert_ner.inference.predict import check_paths, load_tokenizer, predict_file

    try:
        check_paths(input_path, output_path, format, rank)
    except (InputError, ValueError) as e:
        fail(e)
    if processes > 1:
        if gpu_id >= 0:
            fail(ValueError("--processes > 1 runs on the CPU; use 1 process with --gpu-id"))
        try:
            if runtime is not None:
                from spacy_bert_ner.runtime import require_runtime

                require_runtime(runtime)
            nlp = load_tokenizer(model)
        except (OSError, ValueError, ImportError) as e:
            fail(e)
    else:
        nlp = load_pipeline(model, None, gpu_id, runtime)
    try:
        stats = predict_file(
            nlp,
            input_path,
            output_path,
            batch_size=batch_size,
            skip_errors=skip_errors,
            progress=progress,
            buffer=buffer,
            resume=resume,
            processes=processes,
            model=model,
            runtime=runtime,
            format=format,
            rank=rank,
            model_version=model_version,
        )
    except InputError as e:
        msg.warn(f"Records before the error are in {output_path}.partial")
        fail(e)
    if stats.resumed:
        msg.info(f"Resumed {output_path}.partial: {stats.resumed} records kept, the rest annotated now")
    msg.good(
        f"{output_path}: {stats.records} records, {stats.words} words, {stats.entities} entities "
        f"in {stats.seconds:.1f}s ({stats.words_per_second:.0f} words/s)"
    )
    if stats.skipped:
        msg.warn(f"Skipped {stats.skipped} bad records")
        for error in stats.errors:
            msg.text(f"  {error}")
        if stats.skipped > len(stats.errors):
            msg.text(f"  ... and {stats.skipped - len(stats.errors)} more")
