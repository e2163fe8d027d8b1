"""PyTorch CPU work on a second thread: the MiniLM encoder's forward pass on one
sentence, timed on the thread that first ran PyTorch work and then on a new
thread of the same process (what a thread-pool endpoint does), with the same
torch threads.

With OpenMP every thread that runs parallel work keeps its own team of
threads; once the teams outnumber the cores, their threads sleep between
operations. This is why the service runs its model on one thread.

    python benchmarks/thread_teams.py --output metrics/thread-teams.json
"""

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Sequence

sys.path.insert(0, str(Path(__file__).parent))
from record import header, write  # noqa: E402

SENTENCE = "Angela Merkel met Emmanuel Macron in Paris ."


def main(argv: Sequence[str] = None) -> Dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    import torch
    from transformers import AutoModel, AutoTokenizer

    from spacy_bert_ner.pipeline.transformer import resolve_transformer_name

    torch.set_num_threads(args.threads)
    name = resolve_transformer_name("sentence-transformers/all-MiniLM-L6-v2")
    tokenizer, model = AutoTokenizer.from_pretrained(name), AutoModel.from_pretrained(name).eval()
    inputs = tokenizer([SENTENCE], return_tensors="pt")
    timings: Dict[str, List[float]] = {}

    def run(label: str) -> None:
        torch.set_num_threads(args.threads)
        with torch.inference_mode():
            for _ in range(10):
                model(**inputs)
            times = []
            for _ in range(args.calls):
                start = time.perf_counter()
                model(**inputs)
                times.append(1000 * (time.perf_counter() - start))
        timings[label] = times

    run("first thread")
    second = threading.Thread(target=run, args=("second thread",))
    second.start()
    second.join()
    result = {
        **header("thread_teams", argv),
        "threads": args.threads,
        "calls": args.calls,
        "median_ms": {label: statistics.median(t) for label, t in timings.items()},
    }
    print(json.dumps(result, indent=2))
    write(result, args.output)
    return result


if __name__ == "__main__":
    main()
