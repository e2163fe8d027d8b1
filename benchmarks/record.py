"""What every benchmark shares: the header its JSON starts with (which
script, the command that reproduces it, the date and the machine, CPU flags
included), writing that JSON, peak memory, and running a measurement in a
fresh process."""

import json
import multiprocessing as mp
import os
import platform
import resource
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Union


def cpu_flags() -> Dict[str, Any]:
    """The CPU model and the vector/matrix extensions speedups depend on."""
    flags, model = set(), ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8")
    return {"model": model, "cores": os.cpu_count(), **{f: f in flags for f in wanted}}


def header(script: str, argv: Optional[Sequence[str]]) -> Dict[str, Any]:
    """``benchmark``, ``command``, ``date`` and ``machine`` (CPU flags,
    platform, Python and torch versions) of a run of ``benchmarks/<script>.py``."""
    import torch

    from spacy_bert_ner.evaluation.scoring import today
    from spacy_bert_ner.runtime.int8 import full_range_is_exact

    args = list(argv) if argv is not None else sys.argv[1:]
    return {
        "benchmark": script,
        "command": f"python benchmarks/{script}.py " + " ".join(args),
        "date": today(),
        "machine": {
            "cpu": cpu_flags(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            # the int8 runtime's activations: 8 bits where the CPU's int8 kernel is exact (VNNI), else 7
            "int8_activation_bits": 8 if full_range_is_exact() else 7,
        },
    }


def write(result: Dict[str, Any], output: Optional[Union[str, Path]]) -> Dict[str, Any]:
    """Write ``result`` as indented JSON to ``output``, when given; returns it."""
    if output:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {output}")
    return result


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _child(queue, func, args):
    try:
        queue.put(("ok", func(*args)))
    except BaseException:  # report, don't hang the parent
        import traceback

        queue.put(("error", traceback.format_exc()))


def in_child(func: Callable, *args) -> Dict:
    """``func(*args)`` in a spawned process (a fresh interpreter: no state,
    threads or memory carried over from another measurement)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, func, args))
    proc.start()
    status, value = queue.get()
    proc.join()
    if status != "ok":
        raise RuntimeError(f"{func.__name__} failed in its child process:\n{value}")
    return value
