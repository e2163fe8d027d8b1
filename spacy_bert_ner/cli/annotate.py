from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from spacy_bert_ner.cli._util import RUNTIME_HELP, app, fail, load_pipeline

LOCAL_CHUNK = 10000


@app.command("annotate")
def annotate_cli(
    model: str = typer.Argument(..., help="Pipeline directory or installed package name (on every worker, for --engine ray)"),
    input_path: str = typer.Argument(
        ..., help="JSON Lines or Parquet records with a text (and optional id): a file, a folder or a glob"
    ),
    output_dir: Path = typer.Argument(..., help="Folder for the part files of entity rows"),
    engine: str = typer.Option("local", "--engine", "-e", help="local (this process) or ray (Ray Data actor pool)"),
    fmt: str = typer.Option("parquet", "--format", "-f", help="parquet or jsonl"),
    workers: int = typer.Option(1, "--workers", "-w", help="ray: actors, each with its own pipeline"),
    cpus_per_worker: float = typer.Option(1, "--cpus-per-worker", help="ray: CPUs (and torch threads) per actor"),
    gpus_per_worker: float = typer.Option(0, "--gpus-per-worker", help="ray: GPUs per actor (the actors run on GPUs when > 0)"),
    address: Optional[str] = typer.Option(
        None, "--address", help="ray: an existing cluster (ray://HOST:10001 or auto); default: a local one for this run"
    ),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Documents per nlp.pipe batch"),
    chunk_records: Optional[int] = typer.Option(
        None, "--chunk", help=f"local: input records per part file, the unit of resuming (default {LOCAL_CHUNK})"
    ),
    runtime: Optional[str] = typer.Option(None, "--runtime", "-r", help=RUNTIME_HELP),
    resume: Optional[bool] = typer.Option(
        None, "--resume/--no-resume", help="local: continue an interrupted run into the same folder (default: resume)"
    ),
) -> None:
    """Annotate a corpus: one output row per entity, and one per document
    without entities or with an error, so every input id is accounted for."""
    from spacy_bert_ner.formats.records import expand_inputs

    if engine not in ("local", "ray"):
        fail(ValueError(f"unknown engine {engine!r}; choose local or ray"))
    if fmt not in ("parquet", "jsonl"):
        fail(ValueError(f"unknown format {fmt!r}; choose parquet or jsonl"))
    try:
        files = expand_inputs(input_path)
    except ValueError as error:
        fail(error)
    if engine == "ray":
        if chunk_records is not None or resume is not None:
            fail(
                ValueError(
                    "--chunk and --resume/--no-resume are for --engine local: the Ray engine splits the input into "
                    "Ray Data blocks and needs an empty output folder (rerun an interrupted Ray job into a new one)"
                )
            )
        from spacy_bert_ner.distributed.ray_engine import annotate_ray, require_ray

        try:
            require_ray()
            stats = annotate_ray(
                model,
                files,
                output_dir,
                fmt,
                workers=workers,
                cpus_per_worker=cpus_per_worker,
                gpus_per_worker=gpus_per_worker,
                address=address,
                batch_size=batch_size,
                runtime=runtime,
            )
        except (ImportError, ValueError) as error:
            fail(error)
    else:
        from tqdm import tqdm

        from spacy_bert_ner.inference.annotate import annotate_local

        nlp = load_pipeline(model, None, -1, runtime)
        bar = tqdm(unit="docs", desc="annotate", dynamic_ncols=True, disable=None)

        def progress(stats) -> None:
            bar.update(stats.documents - bar.n)
            bar.set_postfix(words_per_s=f"{stats.words_per_second:.0f}")

        try:
            stats = annotate_local(
                nlp,
                files,
                output_dir,
                fmt,
                chunk_records=chunk_records or LOCAL_CHUNK,
                batch_size=batch_size,
                resume=resume is not False,
                progress=progress,
            )
        except ValueError as error:
            fail(error)
        finally:
            bar.close()
    msg.good(
        f"{output_dir}: {stats.documents} documents, {stats.words} words, {stats.entities} entities, "
        f"{stats.no_entities} without entities, {stats.errors} errors in {stats.seconds:.1f} s "
        f"({stats.documents_per_second:.0f} docs/s, {stats.words_per_second:.0f} words/s)"
    )
    if stats.resumed_documents:
        msg.info(f"{stats.resumed_documents} documents were in the folder already (resumed)")
    if stats.errors:
        msg.warn(f"{stats.errors} records could not be annotated: rows with status 'error' name them and why")
