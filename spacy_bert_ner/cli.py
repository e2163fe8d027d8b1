"""The ``spacy-bert-ner`` command line: thin shells over the package's functions."""
import sys
from pathlib import Path
from typing import List, Optional

import typer
from wasabi import msg

from .errors import InputError

app = typer.Typer(add_completion=False, help="Transformer NER for spaCy: convert, evaluate, package.", no_args_is_help=True)


def _fail(error: Exception) -> None:
    msg.fail(str(error))
    raise typer.Exit(1)


def _print_report(report) -> None:
    for part in report.parts:
        msg.good(
            f"{part.path}: {part.docs} docs, {part.sentences} sentences, {part.tokens} tokens, "
            f"{part.n_entities} entities"
        )
    total = report.entities
    msg.info(
        f"{report.input} ({report.format}, {report.scheme}): {report.sentences} sentences, "
        f"{report.tokens} tokens, {sum(total.values())} entities"
    )
    if total:
        msg.table(sorted(total.items()), header=("label", "entities"), divider=True)
    if report.repairs:
        msg.warn(f"{len(report.repairs)} ill-formed tag sequences repaired (an I- that starts an entity begins a new one)")
        for r in report.repairs[:10]:
            msg.text(f"  {r}")
        if len(report.repairs) > 10:
            msg.text(f"  ... and {len(report.repairs) - 10} more")


@app.command("convert")
def convert_cli(
    input_path: Path = typer.Argument(..., help="CoNLL-style file, HF export (.jsonl/.json/.parquet) or GMB ner_dataset.csv[.gz]"),
    output_path: Path = typer.Argument(..., help="Output .spacy file, or a directory with --split"),
    format: Optional[str] = typer.Option(None, "--format", "-f", help="conll, hf or gmb (default: from the file name)"),
    scheme: Optional[str] = typer.Option(None, "--scheme", help="IOB1, IOB2 or BILOU (default: detected)"),
    strict: bool = typer.Option(False, "--strict", help="Fail on ill-formed tag sequences instead of repairing them"),
    n_sents: int = typer.Option(1, "--n-sents", "-n", help="Sentences per Doc (0: no limit)"),
    by_document: bool = typer.Option(False, "--by-document", help="Docs never cross a -DOCSTART- boundary (use with -n 0 for one Doc per document)"),
    split: Optional[str] = typer.Option(None, "--split", help="Fractions such as 0.8,0.1,0.1: write train/dev/test.spacy into OUTPUT"),
    seed: int = typer.Option(0, "--seed", help="Seed of the --split shuffle"),
    encoding: Optional[str] = typer.Option(None, "--encoding", help="Input encoding (default: utf-8; cp1252 for GMB)"),
    labels: Optional[str] = typer.Option(None, "--labels", help="Comma-separated label names for integer ner_tags"),
    report_path: Optional[Path] = typer.Option(None, "--report", help="Also write the counts as JSON"),
) -> None:
    """Convert BIO-tagged data to spaCy's DocBin format, keeping the words exactly."""
    from .convert import convert
    from .corpus import parse_split

    try:
        fractions = parse_split(split) if split else None
        report = convert(
            input_path,
            output_path,
            format=format,
            scheme=scheme.upper() if scheme else None,
            strict=strict,
            n_sents=n_sents,
            by_document=by_document,
            split=fractions,
            seed=seed,
            encoding=encoding,
            label_names=labels.split(",") if labels else None,
        )
    except (InputError, ValueError, LookupError) as e:
        _fail(e)
    _print_report(report)
    if report_path:
        import srsly

        srsly.write_json(report_path, report.to_dict())


@app.command("export")
def export_cli(
    input_path: Path = typer.Argument(..., help=".spacy file"),
    output_path: Path = typer.Argument(..., help="Output: token<TAB>IOB2-tag, blank line between sentences ('-' for stdout)"),
) -> None:
    """Write a .spacy file back to a CoNLL-style column file with IOB2 tags."""
    from .docs import read_docbin, write_conll

    if not input_path.exists():
        _fail(InputError(input_path, None, "file not found"))
    if str(output_path) == "-":
        n_sents, n_tokens = write_conll(read_docbin(input_path), sys.stdout)
    else:
        output_path.parent.mkdir(parents=True, exist_ok=True)
        with output_path.open("w", encoding="utf8", newline="\n") as f:
            n_sents, n_tokens = write_conll(read_docbin(input_path), f)
        msg.good(f"{output_path}: {n_sents} sentences, {n_tokens} tokens")


@app.command("fetch-data")
def fetch_data_cli(
    dataset: str = typer.Argument(..., help="wikiann-en, gmb, or conll (your own files: nothing to fetch)"),
    dest: Path = typer.Argument(Path("assets"), help="Folder to put the files in"),
    source: Optional[Path] = typer.Option(None, "--source", help="Local data folder (default: $SPACY_BERT_NER_DATA); without one, download"),
) -> None:
    """Get a dataset's files, from a local folder or the internet, checked by sha256."""
    from .assets import fetch_dataset

    if dataset == "conll":
        msg.info("dataset 'conll' uses your own files (vars train_file, dev_file, test_file): nothing to fetch")
        return
    try:
        fetch_dataset(dataset, dest, source, log=msg.text)
    except (ValueError, OSError) as e:
        _fail(e)
    msg.good(f"{dataset}: files ready in {dest}")


@app.command("prepare")
def prepare_cli(
    dataset: str = typer.Argument(..., help="wikiann-en, gmb, or conll (your own files via --train/--dev/--test)"),
    assets: Path = typer.Argument(Path("assets"), help="Folder that fetch-data filled"),
    output_dir: Path = typer.Argument(..., help="Writes train.spacy, dev.spacy, test.spacy here"),
    train: Optional[Path] = typer.Option(None, "--train", help="conll: the training file"),
    dev: Optional[Path] = typer.Option(None, "--dev", help="conll: the development file"),
    test: Optional[Path] = typer.Option(None, "--test", help="conll: the test file"),
    split: str = typer.Option("0.8,0.1,0.1", "--split", help="gmb: train,dev,test fractions"),
    seed: int = typer.Option(0, "--seed", help="gmb: seed of the split"),
    n_sents: int = typer.Option(1, "--n-sents", "-n", help="Sentences per Doc"),
    limit: int = typer.Option(0, "--limit", help="Keep only the first N docs of each split (0: all), for smoke tests"),
) -> None:
    """Convert a dataset's known file layout to train/dev/test .spacy files."""
    from .prepare import prepare

    try:
        reports = prepare(dataset, assets, output_dir, train=train, dev=dev, test=test, split=split, seed=seed, n_sents=n_sents, limit=limit)
    except (InputError, ValueError, FileNotFoundError) as e:
        _fail(e)
    for report in reports:
        _print_report(report)


def _load_for_scoring(model: str, data_path: Path, gpu_id: int):
    """The pipeline to score on ``data_path``, after checking the file exists and picking the device."""
    import spacy

    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    if not data_path.exists():
        _fail(InputError(data_path, None, "file not found"))
    return spacy.load(model)


def _save(output: Optional[Path], data: Optional[dict], markdown: Optional[Path], table: str, what: str) -> None:
    """Write ``data`` as JSON to ``output`` and ``table`` to ``markdown``, each when given."""
    import srsly

    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(output, data)
        msg.good(f"Saved {what} to {output}")
    if markdown:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(table, encoding="utf8")


@app.command("evaluate")
def evaluate_cli(
    model: str = typer.Argument(..., help="Pipeline directory or installed package name"),
    data_path: Path = typer.Argument(..., help="Gold .spacy file"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Metrics JSON"),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Metrics as a Markdown table"),
    train_log: Optional[Path] = typer.Option(None, "--train-log", help="JSONL training log, for steps and training time"),
    soup: Optional[Path] = typer.Option(None, "--soup", help="soup.json of train-soup, for its members' steps and training time (instead of --train-log)"),
    config_name: Optional[str] = typer.Option(None, "--config-name", help="Config the model was trained with (recorded)"),
    command: Optional[str] = typer.Option(None, "--command", help="The command that reproduces this result (recorded)"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for CPU"),
    batch_size: int = typer.Option(64, "--batch-size", "-b"),
) -> None:
    """Entity-level precision, recall and F1, overall and per label, on gold tokens."""
    from .evaluate import evaluate
    from .scoring import markdown_table

    from .soup import member_logs

    try:
        logs = member_logs(soup) if soup else train_log
    except InputError as error:
        _fail(error)
    nlp = _load_for_scoring(model, data_path, gpu_id)
    result = evaluate(nlp, data_path, batch_size=batch_size, train_log=logs)
    result["model"] = model
    if config_name:
        result["config"] = config_name
    result["command"] = command or " ".join(["spacy-bert-ner"] + sys.argv[1:])
    table = markdown_table(result, title=f"{model} on {data_path}")
    print(table)
    _save(output, result, markdown, table, "metrics")


@app.command("calibrate")
def calibrate_cli(
    model: str = typer.Argument(..., help="Pipeline directory or installed package name, with a bert_ner component"),
    data_path: Path = typer.Argument(..., help="Gold .spacy file (the dev split)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Reliability table and ECE/MCE as JSON"),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Reliability table as Markdown"),
    n_bins: int = typer.Option(10, "--bins", help="Number of equal-width confidence bins"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for CPU"),
    batch_size: int = typer.Option(64, "--batch-size", "-b"),
    skip_without_bert_ner: bool = typer.Option(
        False, "--skip-without-bert-ner", help="A pipeline without bert_ner is not an error: warn, write a note, exit 0 (for workflows that switch heads)"
    ),
    fit: bool = typer.Option(
        False, "--fit-temperature", help="Fit bert_ner's temperature on this data (log loss) and report calibration before and after"
    ),
    update_model: bool = typer.Option(
        False, "--update-model", help="With --fit-temperature: write the fitted temperature into MODEL/config.cfg (MODEL must be a directory)"
    ),
) -> None:
    """How well `bert_ner` entity confidences are calibrated: reliability table, ECE and MCE.

    With --fit-temperature, also fit the temperature that makes them best
    calibrated on this data (use dev, not test); --update-model saves it in the
    pipeline, so it ships with `spacy package`. Entities and F1 do not change.
    """
    from .calibration import calibrate_pipeline

    if update_model and not fit:
        _fail(ValueError("--update-model needs --fit-temperature"))
    if update_model and not (Path(model) / "config.cfg").is_file():
        _fail(ValueError(f"{model}: --update-model needs a pipeline directory with a config.cfg"))
    nlp = _load_for_scoring(model, data_path, gpu_id)
    from .components import BERT_NER_FACTORIES

    if not any(nlp.get_pipe_meta(name).factory in BERT_NER_FACTORIES for name in nlp.pipe_names):
        problem = f"{model}: no bert_ner component in the pipeline {nlp.pipe_names}; only bert_ner gives entity confidences"
        if not skip_without_bert_ner:
            _fail(ValueError(problem))
        msg.warn(f"{problem}: nothing to calibrate")
        _save(output, {"skipped": problem}, markdown, f"Not measured: {problem}.\n", "the note")
        return
    from .scoring import machine_description, today

    if fit:
        data, table = _fit_temperature(nlp, model, data_path, n_bins, batch_size, update_model)
    else:
        report = calibrate_pipeline(nlp, data_path, n_bins=n_bins, batch_size=batch_size)
        table = report.markdown(title=f"Confidence calibration of {model} on {data_path}")
        print(table)
        data = dict(report.to_dict(), model=model, data=str(data_path))
    data.update(machine=machine_description(), date=today(), command=" ".join(["spacy-bert-ner"] + sys.argv[1:]))
    _save(output, data, markdown, table, "calibration")


def _fit_temperature(nlp, model: str, data_path: Path, n_bins: int, batch_size: int, update_model: bool):
    """Fit the temperature; the JSON data (calibration after, plus ``before``) and the Markdown of both tables."""
    from .calibration import collect_entity_probs, fit_temperature, reliability_table, set_model_temperature
    from .components import bert_ner_name
    from .docs import read_docbin

    name = bert_ner_name(nlp)
    current = nlp.get_pipe(name).temperature
    entities = collect_entity_probs(nlp, list(read_docbin(data_path, nlp.vocab)), batch_size)
    if len(entities.correct) == 0:  # e.g. an undertrained model in a smoke test: not an error, nothing to fit
        problem = f"{model} predicted no entities on {data_path}: nothing to fit a temperature on"
        msg.warn(f"{problem}; the temperature stays {current:g}")
        data = dict(reliability_table([], [], n_bins).to_dict(), model=model, data=str(data_path), temperature=current,
                    model_updated=False, skipped=problem)
        return data, f"Not fitted: {problem}.\n"
    temperature, loss_before, loss_after = fit_temperature(entities)
    before = reliability_table(entities.confidences(1.0).tolist(), entities.correct.tolist(), n_bins)
    after = reliability_table(entities.confidences(temperature).tolist(), entities.correct.tolist(), n_bins)
    msg.good(
        f"Temperature {temperature:.3f} (was {current:g}): log loss {loss_before:.4f} -> {loss_after:.4f}, "
        f"ECE {100 * before.ece:.2f} -> {100 * after.ece:.2f}"
    )
    if update_model:
        set_model_temperature(model, temperature, name)
        msg.good(f"Saved temperature {temperature:.3f} in {Path(model) / 'config.cfg'}")
    table = (
        after.markdown(title=f"Confidence calibration of {model} on {data_path}, temperature {temperature:.3f} (fitted)")
        + "\n"
        + before.markdown(title="Before: temperature 1.0 (the model's own probabilities)")
    )
    print(table)
    data = dict(
        after.to_dict(),
        model=model,
        data=str(data_path),
        temperature=temperature,
        log_loss=loss_after,
        before=dict(before.to_dict(), temperature=1.0, log_loss=loss_before),
        model_updated=update_model,
    )
    return data, table


@app.command("package")
def package_cli(
    model: Path = typer.Argument(..., help="Trained pipeline directory (e.g. training/model-best)"),
    output_dir: Path = typer.Argument(..., help="Where the package folder and wheel go"),
    name: str = typer.Option(..., "--name", help="Package name without the language prefix, e.g. bert_ner_wikiann"),
    version: str = typer.Option("0.1.0", "--version"),
    metrics: Optional[Path] = typer.Option(None, "--metrics", help="Metrics JSON from evaluate, stored in the meta; also renders the model card (README)"),
) -> None:
    """Build a pip-installable wheel with `spacy package`, metrics and pinned requirements included."""
    from .packaging import package

    readme = None
    if metrics:
        from .modelcard import model_card

        readme = model_card(model, metrics, name, version)
    wheel = package(model, output_dir, name, version, metrics_path=metrics, readme=readme)
    msg.good(f"Built {wheel}", f"pip install {wheel}")


@app.command("average")
def average_cli(
    output_dir: Path = typer.Argument(..., help="Where to save the averaged pipeline"),
    models: List[Path] = typer.Argument(..., help="Two or more trained pipelines: same config and seed, other settings free"),
) -> None:
    """Average the weights of pipelines fine-tuned from the same start (a model soup): one model, ensemble-like scores."""
    from .averaging import average_pipelines

    try:
        average_pipelines(models, output_dir)
    except (ValueError, OSError) as error:
        _fail(error)
    msg.good(f"Saved the weight average of {len(models)} pipelines to {output_dir}")


@app.command("ensemble")
def ensemble_cli(
    output_dir: Path = typer.Argument(..., help="Where to save the ensemble pipeline"),
    models: List[Path] = typer.Argument(..., help="Two or more trained pipelines ending with bert_ner, with the same labels"),
) -> None:
    """Join trained bert_ner pipelines into one that averages their tag
    probabilities at prediction time (an ensemble: N models' cost)."""
    from .ensemble import ensemble_pipelines

    try:
        ensemble_pipelines(models, output_dir)
    except (ValueError, OSError) as error:
        _fail(error)
    msg.good(f"Saved the ensemble of {len(models)} pipelines to {output_dir}")


@app.command("train-soup", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train_soup_cli(
    ctx: typer.Context,
    config: Path = typer.Argument(..., help="Training config (.cfg)"),
    output_dir: Path = typer.Argument(..., help="Gets member-K/ (each a spacy train output), model-best/ (the average) and soup.json"),
    members: int = typer.Option(2, "--members", "-m", help="Pipelines to train at once and combine (1: plain spacy train)"),
    combine: str = typer.Option("soup", "--combine", help="soup: average the members' weights (one model's cost); ensemble: average their predictions (members x the cost)"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for CPU"),
) -> None:
    """Train several pipelines at once from the same start, each reading the
    data in its own order, and average their weights (a model soup) or join
    them into an ensemble. Other options (--paths.train ...,
    --training.max_steps ...) go to spacy train."""
    from .soup import train_soup

    try:
        best = train_soup(config, output_dir, members, ctx.args, gpu_id, log=msg.info, combine=combine)
    except (ValueError, RuntimeError, OSError) as error:
        _fail(error)
    what = "weight average" if combine == "soup" else "ensemble"
    msg.good(f"Saved {best}" + (f", the {what} of {members} members" if members > 1 else ""))


@app.command("predict")
def predict_cli(
    model: str = typer.Argument(..., help="Pipeline directory or installed package name"),
    input_path: Path = typer.Argument(..., help=".txt (one document per line), .jsonl ({\"text\": ...} per line) or .spacy"),
    output_path: Path = typer.Argument(..., help=".jsonl (input record + entities) or .spacy"),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Documents per nlp.pipe batch"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, -1 for CPU"),
    skip_errors: bool = typer.Option(False, "--skip-errors", help="Skip (and count) bad input lines instead of stopping"),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress", help="Progress bar (default: on a terminal)"),
) -> None:
    """Find entities in raw text and write them as JSON Lines or a .spacy file.

    Output goes to OUTPUT.partial, flushed per record, and is renamed to OUTPUT
    on success; after an error OUTPUT.partial keeps what was done. Empty lines
    of a .txt input are kept as records with no entities, so lines match.
    """
    import spacy

    from .predict import check_paths, predict_file

    try:
        check_paths(input_path, output_path)
    except InputError as e:
        _fail(e)
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    nlp = spacy.load(model)
    try:
        stats = predict_file(nlp, input_path, output_path, batch_size=batch_size, skip_errors=skip_errors, progress=progress)
    except InputError as e:
        msg.warn(f"Records before the error are in {output_path}.partial")
        _fail(e)
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
    import spacy

    from .report import MissingDependency, error_table, require_matplotlib, write_report
    from .scoring import markdown_table

    try:
        if plots:
            require_matplotlib()
        if not data_path.is_file():
            raise InputError(data_path, None, "file not found")
    except (MissingDependency, InputError) as e:
        _fail(e)
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    nlp = spacy.load(model)
    analysis = write_report(nlp, data_path, output_dir, batch_size=batch_size, n_examples=examples, plots=plots, title=f"{model} on {data_path}")
    print(markdown_table(analysis["scores"]))
    print(error_table(analysis))
    msg.good(f"Report in {output_dir}", ", ".join(Path(f).name for f in analysis["files"]))


@app.command("plot-training")
def plot_training_cli(
    train_log: Path = typer.Argument(..., help="train-log.jsonl written by spacy_bert_ner.JsonlLogger.v1"),
    output_path: Path = typer.Argument(..., help="PNG file"),
) -> None:
    """Plot the dev score and the training losses against the step (needs matplotlib)."""
    from .report import MissingDependency, plot_training

    try:
        plot_training(train_log, output_path)
    except (MissingDependency, InputError) as e:
        _fail(e)
    msg.good(f"Saved {output_path}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
