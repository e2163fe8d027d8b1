"""A training logger that keeps spaCy's console table and also writes one JSON
line per evaluation (step, epoch, words, seconds, losses, scores), the record
that evaluation metadata and training-curve plots are made from.

spaCy's ``ConsoleLogger.v3`` can write JSON lines too (``output_file``), but
without the words and seconds that the training time and speed come from,
and it stops logging when the file exists already (a rerun)."""
from pathlib import Path
from typing import IO, Any, Callable, Dict, Optional, Tuple, Union

import srsly
from spacy.util import registry


@registry.loggers("spacy_bert_ner.JsonlLogger.v1")
def jsonl_logger_v1(path: Union[str, Path], console: bool = True, progress_bar: Optional[str] = None):
    console_setup = registry.get("loggers", "spacy.ConsoleLogger.v3")(
        progress_bar=progress_bar, console_output=console, output_file=None
    )

    def setup(nlp, stdout: IO = None, stderr: IO = None) -> Tuple[Callable[[Optional[Dict[str, Any]]], None], Callable[[], None]]:
        import sys

        log_console, finalize_console = console_setup(nlp, stdout or sys.stdout, stderr or sys.stderr)
        out_path = Path(path)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        stream = out_path.open("w", encoding="utf8")

        def log_step(info: Optional[Dict[str, Any]]) -> None:
            log_console(info)
            if info is None:
                return
            record = {
                "step": info["step"],
                "epoch": info["epoch"],
                "words": info.get("words"),
                "seconds": info.get("seconds"),
                "score": info.get("score"),
                "losses": {k: float(v) for k, v in info.get("losses", {}).items()},
                "scores": {k: v for k, v in (info.get("other_scores") or {}).items() if not isinstance(v, dict)},
            }
            stream.write(srsly.json_dumps(record) + "\n")
            stream.flush()

        def finalize() -> None:
            finalize_console()
            stream.close()

        return log_step, finalize

    return setup
