"""int8 weight scales per output channel or per tensor: test F1 and words/s of
the ``int8`` (PyTorch dynamic quantization) and ``onnx-int8`` (ONNX Runtime)
runtimes with each choice, beside fp32, on each dataset's test split.

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

CHOICES = (("fp32", None), ("int8", True), ("int8", False), ("onnx-int8", True), ("onnx-int8", False))
MAX_LOSS = 0.3


def evaluate_one(model: str, data: str, runtime: str, per_channel: Optional[bool], threads: int) -> Dict:
    import torch

    from spacy_bert_ner.evaluation.evaluate import evaluate
    from spacy_bert_ner.runtime import engines, load

    torch.set_num_threads(threads)
    if per_channel is not None:
        engines.INT8_PER_CHANNEL[runtime] = per_channel
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
        for runtime, per_channel in CHOICES:
            name = runtime if per_channel is None else f"{runtime}/{'per-channel' if per_channel else 'per-tensor'}"
            rows[dataset][name] = r = in_child(evaluate_one, model, data, runtime, per_channel, args.threads)
            print(f"{dataset:10s} {name:24s} F1 {r['f1']:6.2f}  {r['words_per_s']:7.0f} words/s", flush=True)
    kept = {}
    for runtime in ("int8", "onnx-int8"):
        ok = [
            g
            for g in ("per-channel", "per-tensor")
            if all(rows[d]["fp32"]["f1"] - rows[d][f"{runtime}/{g}"]["f1"] <= MAX_LOSS for d in rows)
        ]
        speed = {g: min(rows[d][f"{runtime}/{g}"]["words_per_s"] / rows[d]["fp32"]["words_per_s"] for d in rows) for g in ok}
        kept[runtime] = max(ok, key=lambda g: speed[g]) if ok else None
        print(f"{runtime}: within {MAX_LOSS} F1 of fp32: {ok or 'neither'}; kept: {kept[runtime]}")
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
