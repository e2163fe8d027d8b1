"""int8 weight scales per output channel or per tensor, and (``int8``)
activations on 8 or 7 bits: test F1 and words/s of the ``int8`` (PyTorch
dynamic quantization) and ``onnx-int8`` (ONNX Runtime) runtimes with each
choice, beside fp32, on each dataset's test split. PyTorch's own dynamic
``Linear`` quantizes activations to 7 bits; 8 bits need a CPU whose int8
kernel sums without saturating (``full_range_is_exact``: VNNI).

    python benchmarks/int8_granularity.py --model wikiann-en=training/wikiann-en/model-best \\
        --model gmb=training/gmb/model-best --output metrics/int8-granularity.json

Each evaluation runs in its own process with ``--threads`` torch threads
(``spacy_bert_ner.evaluation.evaluate.evaluate``: gold tokens, length-sorted
batches of 64; words/s is that evaluation's). The choice kept for a runtime
is the faster one whose F1 is within 0.3 of fp32 on every dataset.
"""

import argparse
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import header, in_child, write  # noqa: E402

# (runtime, per channel, int8 activations on the full 8 bits); None: not a choice of that runtime
CHOICES = (
    ("fp32", None, None),
    ("int8", True, True),
    ("int8", True, False),
    ("int8", False, True),
    ("int8", False, False),
    ("onnx-int8", True, None),
    ("onnx-int8", False, None),
)
MAX_LOSS = 0.3


def choice_name(runtime: str, per_channel: Optional[bool], full_range: Optional[bool]) -> str:
    if per_channel is None:
        return runtime
    name = f"{runtime}/{'per-channel' if per_channel else 'per-tensor'}"
    return name if full_range is None else f"{name}/{'8' if full_range else '7'}-bit"


def evaluate_one(
    model: str, data: str, runtime: str, per_channel: Optional[bool], full_range: Optional[bool], threads: int
) -> Dict:
    import torch

    from spacy_bert_ner.evaluation.evaluate import evaluate
    from spacy_bert_ner.runtime import engines, load

    torch.set_num_threads(threads)
    if per_channel is not None:
        engines.INT8_PER_CHANNEL[runtime] = per_channel
    if full_range is not None:
        from spacy_bert_ner.runtime.int8 import full_range_is_exact

        if full_range and not full_range_is_exact():
            return {"f1": None, "words_per_s": None, "skipped": "this CPU's int8 kernel saturates on 8-bit activations"}
        engines.INT8_FULL_RANGE = full_range
    nlp = load(model, runtime=runtime)
    scores = evaluate(nlp, data)
    return {"f1": 100 * scores["ents_f"], "words_per_s": scores["predict_words_per_s"]}


def main(argv: Sequence[str] = None) -> Dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", required=True, help="DATASET=PIPELINE (its test split: corpus/DATASET/test.spacy)")
    p.add_argument("--corpus", default="corpus")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--output", default="metrics/int8-granularity.json")
    args = p.parse_args(argv)
    rows: Dict[str, Dict[str, Dict]] = {}
    for item in args.model:
        dataset, _, model = item.partition("=")
        data = str(Path(args.corpus) / dataset / "test.spacy")
        rows[dataset] = {}
        for choice in CHOICES:
            name = choice_name(*choice)
            rows[dataset][name] = r = in_child(evaluate_one, model, data, *choice, args.threads)
            if r["f1"] is None:
                print(f"{dataset:10s} {name:32s} skipped: {r['skipped']}", flush=True)
            else:
                print(f"{dataset:10s} {name:32s} F1 {r['f1']:6.2f}  {r['words_per_s']:7.0f} words/s", flush=True)
    kept = {}
    for runtime in ("int8", "onnx-int8"):
        names = [choice_name(*c) for c in CHOICES if c[0] == runtime]
        ok = [
            g
            for g in names
            if all(rows[d][g]["f1"] is not None and rows[d]["fp32"]["f1"] - rows[d][g]["f1"] <= MAX_LOSS for d in rows)
        ]
        speed = {g: min(rows[d][g]["words_per_s"] / rows[d]["fp32"]["words_per_s"] for d in rows) for g in ok}
        kept[runtime] = max(ok, key=lambda g: speed[g]) if ok else None
        print(f"{runtime}: within {MAX_LOSS} F1 of fp32: {ok or 'none'}; kept: {kept[runtime]}")
    result = {
        **header("int8_granularity", argv),
        "rows": rows,
        "kept": kept,
        "max_f1_loss": MAX_LOSS,
        "threads": args.threads,
        "models": dict(item.partition("=")[::2] for item in args.model),
    }
    return write(result, args.output)


if __name__ == "__main__":
    main()
