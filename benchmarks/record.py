"""What every benchmark JSON starts with (which script, the command that
reproduces it, the date and the machine) and how it is written."""
import json
import platform
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from benchmark_runtimes import cpu_flags


def header(script: str, argv: Optional[Sequence[str]]) -> Dict[str, Any]:
    """``benchmark``, ``command``, ``date`` and ``machine`` (CPU flags,
    platform, Python and torch versions) of a run of ``benchmarks/SCRIPT.py``."""
    import torch

    from spacy_bert_ner.tools.scoring import today

    args = list(argv) if argv is not None else sys.argv[1:]
    return {
        "benchmark": script,
        "command": f"python benchmarks/{script}.py " + " ".join(args),
        "date": today(),
        "machine": {"cpu": cpu_flags(), "platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__},
    }


def write(result: Dict[str, Any], output: Optional[Path]) -> None:
    """Write ``result`` as indented JSON to ``output``, when given."""
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2) + "\n")
