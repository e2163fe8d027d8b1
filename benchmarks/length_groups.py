"""The model step on small batches of mixed lengths: one ``nlp.pipe`` batch
per micro-batch (what the service runs; the transformer packs the batch's
wordpieces itself, ``spacy_bert_ner.runtime.engines.encode``), the micro-batch cut first
into word-length groups (``groups_by_length`` on the Docs' lengths, one
``nlp.pipe`` batch each), and ``predict``'s large sorted buffers as the
reference.

WikiANN-en test sentences are shuffled (seed 0) and cut into micro-batches of
``--batch`` documents, as that many one-document clients of the service give
them; each variant runs over all of them in this process, repeats
interleaved, median reported.

    python benchmarks/length_groups.py MODEL --data ../shared/data --output metrics/length-groups.json
"""

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List, Sequence

sys.path.insert(0, str(Path(__file__).parent))
from data import wikiann  # noqa: E402
from record import header, write  # noqa: E402


def main(argv: Sequence[str] = None) -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("SPACY_BERT_NER_DATA", "../shared/data")))
    parser.add_argument("--sentences", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    import torch

    from spacy_bert_ner import runtime
    from spacy_bert_ner.pipeline.batching import groups_by_length, pipe_by_length

    torch.set_num_threads(args.threads)
    nlp = runtime.load(args.model)
    texts = [" ".join(words) for words, _ in wikiann(args.data, "test", args.sentences)]
    random.Random(0).shuffle(texts)
    batches = [texts[i : i + args.batch] for i in range(0, len(texts), args.batch)]
    words = sum(len(nlp.make_doc(t)) for t in texts)

    def one_batch() -> None:
        for batch in batches:
            list(nlp.pipe([nlp.make_doc(t) for t in batch], batch_size=len(batch)))

    def groups() -> None:
        for batch in batches:
            docs = [nlp.make_doc(t) for t in batch]
            for group in groups_by_length([len(doc) for doc in docs], max_padding=0.3, min_size=4):
                list(nlp.pipe([docs[i] for i in group], batch_size=len(group)))

    def sorted_buffers() -> None:
        list(pipe_by_length(nlp, texts, batch_size=64, buffer=2048))

    variants = {
        f"one batch of {args.batch}": one_batch,
        "word-length groups": groups,
        "sorted buffers of 2048, batches of 64": sorted_buffers,
    }
    list(nlp.pipe(texts[:64]))  # warm-up
    runs: Dict[str, List[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, run in variants.items():
            start = time.perf_counter()
            run()
            runs[name].append(words / (time.perf_counter() - start))
    result = {
        **header("length_groups", argv),
        "model": args.model,
        "documents": len(texts),
        "words": words,
        "batch": args.batch,
        "threads": args.threads,
        "words_per_second": {name: statistics.median(values) for name, values in runs.items()},
        "all_words_per_second": runs,
    }
    print(json.dumps(result, indent=2))
    write(result, args.output)
    return result


if __name__ == "__main__":
    main()
