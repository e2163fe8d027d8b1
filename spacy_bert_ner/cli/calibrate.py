import sys
from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from spacy_bert_ner.cli._util import app, fail, load_pipeline, save


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
        False,
        "--skip-without-bert-ner",
        help="A pipeline without bert_ner is not an error: warn, write a note, exit 0 (for workflows that switch heads)",
    ),
    fit: bool = typer.Option(
        False,
        "--fit-temperature",
        help="Fit bert_ner's temperature on this data (log loss) and report calibration before and after",
    ),
    update_model: bool = typer.Option(
        False,
        "--update-model",
        help="With --fit-temperature: write the fitted temperature into MODEL/config.cfg (MODEL must be a directory)",
    ),
) -> None:
    """How well `bert_ner` entity confidences are calibrated: reliability table, ECE and MCE.

    With --fit-temperature, also fit the temperature that makes them best
    calibrated on this data (use dev, not test); --update-model saves it in the
    pipeline, so it ships with `spacy package`. Entities and F1 do not change.
    """
    from spacy_bert_ner.evaluation.calibrate import calibrate_pipeline, fit_pipeline_temperature, has_bert_ner
    from spacy_bert_ner.evaluation.scoring import machine_description, today

    if update_model and not fit:
        fail(ValueError("--update-model needs --fit-temperature"))
    if update_model and not (Path(model) / "config.cfg").is_file():
        fail(ValueError(f"{model}: --update-model needs a pipeline directory with a config.cfg"))
    nlp = load_pipeline(model, data_path, gpu_id)
    if not has_bert_ner(nlp):
        problem = f"{model}: no bert_ner component in the pipeline {nlp.pipe_names}; only bert_ner gives entity confidences"
        if not skip_without_bert_ner:
            fail(ValueError(problem))
        msg.warn(f"{problem}: nothing to calibrate")
        save(output, {"skipped": problem}, markdown, f"Not measured: {problem}.\n", "the note")
        return
    if fit:
        result = fit_pipeline_temperature(nlp, model, data_path, n_bins, batch_size, update_model)
        (msg.good if result.fitted else msg.warn)(result.summary)
        if result.fitted and update_model:
            msg.good(f"Saved temperature {result.data['temperature']:.3f} in {Path(model) / 'config.cfg'}")
        data, table = result.data, result.markdown
    else:
        report = calibrate_pipeline(nlp, data_path, n_bins=n_bins, batch_size=batch_size)
        table = report.markdown(title=f"Confidence calibration of {model} on {data_path}")
        data = dict(report.to_dict(), model=model, data=str(data_path))
    print(table)
    data.update(machine=machine_description(), date=today(), command=" ".join(["spacy-bert-ner"] + sys.argv[1:]))
    save(output, data, markdown, table, "calibration")
