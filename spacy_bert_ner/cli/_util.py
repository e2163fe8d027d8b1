"""What every command shares: the typer app, failing with a message, loading a
pipeline for scoring, and saving JSON/Markdown results."""

from pathlib import Path
from typing import Any, NoReturn, Optional

import typer
from wasabi import color, msg
from wasabi.util import locale_escape

from spacy_bert_ner.errors import InputError

app = typer.Typer(
    add_completion=False, help="Transformer NER for spaCy: convert, train, evaluate, package, predict.", no_args_is_help=True
)


def fail(error: Exception) -> NoReturn:
    """Print ``error`` as a failure and exit with code 1 (no traceback).

    The message is printed on one line, never wrapped at the terminal's
    width as wasabi wraps its messages: a ``file:line`` location or a long
    path stays whole for editors, ``grep`` and logs."""
    text = str(error)
    if msg.pretty:
        text = locale_escape(f"{msg.icons['fail']} {text}")
        if msg.show_color:
            text = color(text, fg=msg.colors["fail"])
    print(text, flush=True)
    raise typer.Exit(1)


def use_device(gpu_id: int) -> None:
    """Select GPU ``gpu_id`` for spaCy/thinc; -1 keeps the CPU."""
    if gpu_id >= 0:
        import spacy

        spacy.require_gpu(gpu_id)


RUNTIME_HELP = "How the transformer runs: fp32, int8, onnx or onnx-int8 (default: the pipeline's config)"


def load_pipeline(model: str, data_path: Optional[Path] = None, gpu_id: int = -1, runtime: Optional[str] = None) -> Any:
    """``spacy.load(model)`` on the chosen device and, when given, with the
    transformer ``runtime``, after checking that ``data_path`` exists."""
    import spacy

    from spacy_bert_ner.runtime import set_runtime

    if data_path is not None and not data_path.is_file():
        fail(InputError(data_path, None, "file not found"))
    use_device(gpu_id)
    nlp = spacy.load(model)
    if runtime is not None:
        try:
            set_runtime(nlp, runtime)
        except (ValueError, ImportError) as error:
            fail(error)
    return nlp


def save(output: Optional[Path], data: Any, markdown: Optional[Path], table: str, what: str) -> None:
    """Write ``data`` as JSON to ``output`` and ``table`` to ``markdown``, each when given."""
    import srsly

    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        srsly.write_json(output, data)
        msg.good(f"Saved {what} to {output}")
    if markdown:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(table, encoding="utf8")
