"""``predict`` end to end with 1 process of N threads against worker processes
of fewer threads each, on the same input: wall time from the command's start
(model loading included) and the words/s it reports.

    python benchmarks/predict_processes.py MODEL --data ../shared/data --output metrics/predict-processes.json
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
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
    parser.add_argument("--sentences", type=int, default=10000)
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--runtime", default="fp32")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="predict-processes-"))
    texts = [" ".join(words) for words, _ in wikiann(args.data, "test", args.sentences)]
    src = work / "in.txt"
    src.write_text("\n".join(texts) + "\n", encoding="utf8")
    cores = os.cpu_count() or 1
    runs: Dict[str, List[Dict]] = {}
    for repeat in range(args.repeats):
        for p in (int(x) for x in args.processes.split(",")):
            out = work / f"out-{p}-{repeat}.jsonl"
            env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
            command = [
                sys.executable,
                "-m",
                "spacy_bert_ner",
                "predict",
                args.model,
                str(src),
                str(out),
                "--processes",
                str(p),
                "--runtime",
                args.runtime,
                "--no-progress",
            ]
            start = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
            wall = time.perf_counter() - start
            reported = float(re.search(r"\(([\d.]+) words/s\)", " ".join(result.stdout.split())).group(1))
            records = sum(1 for _ in out.open())  # records written
            name = f"{p} x {max(1, cores // p)} threads"
            runs.setdefault(name, []).append({"wall_seconds": wall, "reported_words_per_second": reported, "records": records})
            print(f"repeat {repeat}: {name}: {wall:.1f} s wall, {reported:.0f} words/s reported", flush=True)
    result = {
        **header("predict_processes", argv),
        "model": args.model,
        "runtime": args.runtime,
        "sentences": len(texts),
        "median": {
            name: {
                "wall_seconds": statistics.median(r["wall_seconds"] for r in rs),
                "reported_words_per_second": statistics.median(r["reported_words_per_second"] for r in rs),
            }
            for name, rs in runs.items()
        },
        "runs": runs,
    }
    print(json.dumps(result["median"], indent=2))
    write(result, args.output)
    return result


if __name__ == "__main__":
    main()
