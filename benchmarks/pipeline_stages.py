"""Where the pipeline's inference time goes, stage by stage: timers around
tokenization, alignment, case ids, the encoder (``encode``), the
lean path's features and head, and decoding with setting entities, over
``pipe_by_length`` on WikiANN-en test sentences, for each runtime.

    python benchmarks/pipeline_stages.py --model training/wikiann-en-student/model-best \\
        --data ../shared/data --output metrics/pipeline-stages.json

Each runtime runs in its own process with ``--threads`` threads: a warm-up
pass over the sentences, then ``--passes`` timed passes; the pass with the
median total is reported with its stages (``rest``: what no timer covers,
from making the Docs to reading the entities).
"""

import argparse
import collections
import functools
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data import wikiann  # noqa: E402
from record import header, in_child, write  # noqa: E402

RUNTIMES = ("fp32", "int8", "onnx", "onnx-int8")


def stages(model: str, runtime: str, sentences, batch_size: int, threads: int, passes: int) -> Dict:
    import spacy_transformers.layers.transformer_model as transformer_model
    import torch
    from spacy.tokens import Doc

    import spacy_bert_ner.pipeline.alignment as alignment
    import spacy_bert_ner.pipeline.bert_ner as bert_ner
    import spacy_bert_ner.pipeline.transformer as transformer
    import spacy_bert_ner.runtime.engines as engines
    from spacy_bert_ner.pipeline.batching import pipe_by_length
    from spacy_bert_ner.runtime import load

    seconds: Dict[str, float] = collections.Counter()

    def timed(owner, name: str, stage: str) -> None:
        function = getattr(owner, name)

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                seconds[stage] += time.perf_counter() - start

        setattr(owner, name, wrapper)

    timed(transformer_model, "huggingface_tokenize", "tokenization")
    timed(alignment, "offset_alignment", "alignment")
    timed(transformer, "case_type_ids", "case ids")
    timed(engines, "encode", "encoder")
    timed(bert_ner, "lean_predict", "features and head")
    timed(bert_ner.BertNER, "set_annotations", "decoding and entities")

    torch.set_num_threads(threads)
    nlp = load(model, runtime=runtime)
    words = [w for w, _ in sentences]

    def one_pass() -> float:
        start = time.perf_counter()
        for doc in pipe_by_length(nlp, (Doc(nlp.vocab, words=w) for w in words), batch_size=batch_size):
            list(doc.ents)
        return time.perf_counter() - start

    one_pass()  # warm-up: the engine built, the shapes and words seen
    runs = []
    for _ in range(passes):
        seconds.clear()
        total = one_pass()
        runs.append({"total": total, **seconds, "rest": total - sum(seconds.values())})
    median = sorted(runs, key=lambda r: r["total"])[len(runs) // 2]
    n_words = sum(map(len, words))
    return {
        "seconds": {k: round(v, 4) for k, v in median.items()},
        "words_per_s": n_words / median["total"],
        "totals": [round(r["total"], 4) for r in runs],
    }


def main(argv: Sequence[str] = None) -> Dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data", default=os.environ.get("SPACY_BERT_NER_DATA", "../shared/data"))
    p.add_argument("--sentences", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--passes", type=int, default=3)
    p.add_argument("--runtimes", default=",".join(RUNTIMES))
    p.add_argument("--output", default="metrics/pipeline-stages.json")
    args = p.parse_args(argv)
    sentences = wikiann(args.data, "test", args.sentences)
    rows = {}
    for runtime in args.runtimes.split(","):
        rows[runtime] = in_child(stages, args.model, runtime, sentences, args.batch_size, args.threads, args.passes)
        share = {k: f"{v:.3f}" for k, v in rows[runtime]["seconds"].items()}
        print(f"{runtime:10s} {rows[runtime]['words_per_s']:8.0f} words/s  {share}", flush=True)
    spread = {r: statistics.pstdev(v["totals"]) / statistics.mean(v["totals"]) for r, v in rows.items()}
    result = {
        **header("pipeline_stages", argv),
        "model": args.model,
        "sentences": len(sentences),
        "batch_size": args.batch_size,
        "threads": args.threads,
        "rows": rows,
        "relative_spread_of_totals": spread,
    }
    return write(result, args.output)


if __name__ == "__main__":
    main()
