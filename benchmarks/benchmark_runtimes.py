"""CPU inference by runtime: our pipeline with each transformer runtime against
Hugging Face token classification with the same accelerations, on the same
sentences, the same batch size and the same length-sorted batches, with the
bare transformer forward pass as the floor.

    python benchmarks/benchmark_runtimes.py --model training/wikiann-en/model-best \\
        --data ../shared/data --output metrics/benchmark-runtimes.json

Configurations (each run ``--repeats`` times, every run in its own process,
the repeats interleaved across configurations so that a slow spell of a
shared machine does not fall on one of them; the median reported; all with
``--threads`` torch / ONNX Runtime threads; every run first processes
``--warm-up`` WikiANN-en validation sentences the same way, untimed, so that
each side is timed in the steady state of a long run: its engine built, its
shapes and, for spaCy, its vocabulary's common words seen):
- ``ours/<runtime>``: ``spacy_bert_ner.runtime.load(model, runtime)`` then
  ``pipe_by_length`` (what ``predict`` and ``evaluate`` run), words to entities;
- ``hf/fp32``: tokenizer + ``AutoModelForTokenClassification`` under
  ``torch.inference_mode``, words to BIO entity spans, batches sorted by length;
- ``hf/int8``: the same model after ``torch.ao.quantization.quantize_dynamic``
  of its ``Linear`` layers;
- ``hf/onnx`` and ``hf/onnx-int8``: the same model exported to ONNX, with ONNX
  Runtime's BERT fusions and (``-int8``) its dynamic int8 quantization, per
  channel, the choice of optimum's ORT export and quantizer with per_channel;
- ``floor/<runtime>``: only the encoder (ours: the pipeline's own transformer
  and runtime engine) on the same padded batches: no tokenizer, head or decoding;
- ``floor_grouped/<runtime>``: the same, each batch run the way the pipeline
  runs its transformer at inference (``spacy_bert_ner.runtime.engines.encode``:
  packed tokens for the torch runtimes of a BERT-family encoder, rows in
  wordpiece-length groups for ONNX);
- ``processes``: ours with 2 processes of 1 thread each over halves of the data,
  against 1 process with 2 threads.
The HF head is freshly initialised: speed does not depend on its weights.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data import WIKIANN_LABELS, wikiann  # noqa: E402
from record import cpu_flags, header, in_child, peak_rss_mb, write  # noqa: E402

RUNTIMES = ("fp32", "int8", "onnx", "onnx-int8")


def _sorted_batches(items: List, batch_size: int, key: Callable = len) -> List[List]:
    ordered = sorted(items, key=key)
    return [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]


# --- ours ---------------------------------------------------------------------------------


def run_ours(model: str, runtime: str, sentences, batch_size: int, threads: int, warm_up=()) -> Dict:
    import torch
    from spacy.tokens import Doc

    from spacy_bert_ner.pipeline.batching import pipe_by_length
    from spacy_bert_ner.runtime import load

    torch.set_num_threads(threads)
    nlp = load(model, runtime=runtime)
    words = [w for w, _ in sentences]
    warm = [w for w, _ in warm_up] or words[:batch_size]
    list(pipe_by_length(nlp, (Doc(nlp.vocab, words=w) for w in warm), batch_size=batch_size))  # builds the engine
    start = time.perf_counter()
    n_ents = sum(len(doc.ents) for doc in pipe_by_length(nlp, (Doc(nlp.vocab, words=w) for w in words), batch_size=batch_size))
    seconds = time.perf_counter() - start
    n_words = sum(map(len, words))
    return {
        "words_per_s": n_words / seconds,
        "seconds": seconds,
        "words": n_words,
        "entities": n_ents,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_floor(model: str, runtime: str, sentences, batch_size: int, threads: int, warm_up=(), grouped: bool = False) -> Dict:
    """The pipeline's own encoder (and runtime engine) on pre-tokenized, padded,
    length-sorted batches; ``grouped``: each batch run as the pipeline runs it
    (``encode``: packed tokens or wordpiece-length groups)."""
    import numpy
    import torch

    from spacy_bert_ner.runtime import load

    torch.set_num_threads(threads)
    nlp = load(model, runtime=runtime)
    trf = nlp.get_pipe("transformer").model

    def padded(items):
        batches = []
        for batch in _sorted_batches([" ".join(w) for w, _ in items], batch_size):
            enc = trf.tokenizer(batch, padding=True, truncation=True, max_length=512, return_tensors="np")
            batches.append({k: numpy.asarray(enc[k]) for k in ("input_ids", "attention_mask", "token_type_ids")})
        return batches

    batches = padded(sentences)
    if grouped:
        from spacy_bert_ner.runtime.engines import encode

        engine = trf.attrs["spacy_bert_ner_runtime"].engine(trf.transformer)

        def forward(b):
            return encode(engine, b["input_ids"], b["attention_mask"], b["token_type_ids"])
    elif runtime == "fp32":
        hf = trf.transformer.eval()

        def forward(b):
            with torch.inference_mode():
                return hf(**{k: torch.as_tensor(v) for k, v in b.items()}).last_hidden_state
    else:
        engine = trf.attrs["spacy_bert_ner_runtime"].engine(trf.transformer)

        def forward(b):
            return engine(b["input_ids"], b["attention_mask"], b["token_type_ids"])

    for b in padded(warm_up) or batches[:1]:
        forward(b)
    start = time.perf_counter()
    for b in batches:
        forward(b)
    seconds = time.perf_counter() - start
    n_words = sum(len(w) for w, _ in sentences)
    return {"words_per_s": n_words / seconds, "seconds": seconds, "words": n_words, "peak_rss_mb": peak_rss_mb()}


def run_floor_grouped(model: str, runtime: str, sentences, batch_size: int, threads: int, warm_up=()) -> Dict:
    return run_floor(model, runtime, sentences, batch_size, threads, warm_up, grouped=True)


# --- Hugging Face -----------------------------------------------------------------------------


def _hf_onnx_session(model, quantize: bool, threads: int):
    """Export HF's token classifier and build an ONNX Runtime InferenceSession the way optimum does."""
    import onnxruntime
    import torch

    from spacy_bert_ner.runtime.engines import optimize_onnx

    tmp = Path(tempfile.mkdtemp(prefix="hf-onnx-"))
    ids = torch.ones((2, 8), dtype=torch.int64)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    torch.onnx.export(
        model,
        (ids, ids, torch.zeros_like(ids)),
        str(tmp / "model.onnx"),
        input_names=names,
        output_names=["logits"],
        dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names + ["logits"]},
        opset_version=17,
        dynamo=False,
    )
    final = optimize_onnx(tmp / "model.onnx", tmp / "final.onnx", model.config, quantize, per_channel=True)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return onnxruntime.InferenceSession(str(final), options, providers=["CPUExecutionProvider"])


def run_hf(backbone: str, runtime: str, sentences, batch_size: int, threads: int, warm_up=()) -> Dict:
    import numpy
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from spacy_bert_ner.formats.schemes import tags_to_spans

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = AutoModelForTokenClassification.from_pretrained(backbone, num_labels=len(WIKIANN_LABELS)).eval()
    if runtime == "int8":
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    ort = _hf_onnx_session(model, runtime == "onnx-int8", threads) if runtime.startswith("onnx") else None

    def logits(enc):
        if ort is None:
            with torch.inference_mode():
                return model(**enc).logits.numpy()
        feeds = {i.name: enc[i.name].numpy() for i in ort.get_inputs()}
        return ort.run(["logits"], feeds)[0]

    def run(words):
        n = 0
        for batch in _sorted_batches(words, batch_size):
            enc = tokenizer(batch, is_split_into_words=True, truncation=True, max_length=512, padding=True, return_tensors="pt")
            pred = numpy.argmax(logits(enc), -1).tolist()
            for j, ws in enumerate(batch):
                tags, seen = ["O"] * len(ws), set()
                for k, wid in enumerate(enc.word_ids(j)):
                    if wid is not None and wid not in seen:
                        seen.add(wid)
                        tags[wid] = WIKIANN_LABELS[pred[j][k]]
                n += len(tags_to_spans(tags, "IOB2").spans)
        return n

    words = [w for w, _ in sentences]
    run([w for w, _ in warm_up] or words[:batch_size])
    start = time.perf_counter()
    n_ents = run(words)
    seconds = time.perf_counter() - start
    n_words = sum(map(len, words))
    return {
        "words_per_s": n_words / seconds,
        "seconds": seconds,
        "words": n_words,
        "entities": n_ents,
        "peak_rss_mb": peak_rss_mb(),
    }


# --- processes ---------------------------------------------------------------------------------

PROCESS_WORKER = """
import json, sys, time
sys.path.insert(0, {bench!r})
from benchmark_runtimes import run_ours
sentences, warm_up = json.load(open(sys.argv[1]))
print(json.dumps(run_ours({model!r}, {runtime!r}, sentences, {batch_size}, 1, warm_up)))
"""


def run_two_processes(model: str, runtime: str, sentences, batch_size: int, warm_up=()) -> Dict:
    """Two processes with 1 thread each over the two halves (alternating sentences), started together."""
    bench = str(Path(__file__).resolve().parent)
    code = PROCESS_WORKER.format(bench=bench, model=model, runtime=runtime, batch_size=batch_size)
    tmp = Path(tempfile.mkdtemp(prefix="procs-"))
    halves = [sentences[0::2], sentences[1::2]]
    for k, half in enumerate(halves):
        (tmp / f"{k}.json").write_text(json.dumps([half, list(warm_up)[k::2]]))
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    start = time.perf_counter()
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp / f"{k}.json")], stdout=subprocess.PIPE, env=env) for k in range(2)
    ]
    outs = [json.loads(p.communicate()[0].decode().strip().splitlines()[-1]) for p in procs]
    wall = time.perf_counter() - start  # includes loading the model in each process
    words = sum(o["words"] for o in outs)
    # the steady-state rate: both halves ran over the same span of time
    steady = words / max(o["seconds"] for o in outs)
    return {
        "words_per_s": steady,
        "wall_seconds_with_loading": wall,
        "words": words,
        "peak_rss_mb_per_process": [o["peak_rss_mb"] for o in outs],
    }


# --- driver --------------------------------------------------------------------------------


def medians(repeats: int, configs: Dict[str, tuple]) -> Dict[str, Dict]:
    """Run every configuration ``repeats`` times, round-robin, each run in its own
    process; per configuration the run with the median words/s, and all runs' words/s."""
    runs: Dict[str, List[Dict]] = {name: [] for name in configs}
    for repeat in range(repeats):
        for name, (func, *args) in configs.items():
            runs[name].append(in_child(func, *args))
            print(f"  run {repeat + 1}/{repeats} {name}: {runs[name][-1]['words_per_s']:.0f} words/s", flush=True)
    out = {}
    for name, results in runs.items():
        ordered = sorted(results, key=lambda r: r["words_per_s"])
        row = dict(ordered[len(ordered) // 2])
        row["words_per_s"] = statistics.median(r["words_per_s"] for r in results)
        row["runs_words_per_s"] = [round(r["words_per_s"], 1) for r in results]
        out[name] = row
    return out


def main(argv: Sequence[str] = None) -> Dict:
    from spacy_bert_ner.pipeline.transformer import EMBEDDED_MINILM, resolve_transformer_name

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="Our trained pipeline (directory or package)")
    p.add_argument("--data", default=os.environ.get("SPACY_BERT_NER_DATA", "../shared/data"))
    p.add_argument("--backbone", default=EMBEDDED_MINILM, help="HF backbone of the comparison (the model's)")
    p.add_argument("--sentences", type=int, default=2000, help="WikiANN-en test sentences")
    p.add_argument(
        "--warm-up",
        type=int,
        default=2000,
        help="WikiANN-en validation sentences every configuration runs, untimed, before the test sentences (0: one batch)",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--runtimes", default=",".join(RUNTIMES))
    p.add_argument("--output", default="metrics/benchmark-runtimes.json")
    args = p.parse_args(argv)

    backbone = resolve_transformer_name(args.backbone)
    sentences = wikiann(args.data, "test", args.sentences)
    runtimes = args.runtimes.split(",")
    warm_up = wikiann(args.data, "validation", args.warm_up) if args.warm_up else []
    common = (sentences, args.batch_size, args.threads, warm_up)
    configs = {
        f"{side}/{runtime}": (func, target, runtime, *common)
        for runtime in runtimes
        for side, func, target in (
            ("ours", run_ours, args.model),
            ("hf", run_hf, backbone),
            ("floor", run_floor, args.model),
            ("floor_grouped", run_floor_grouped, args.model),
        )
    }
    rows = medians(args.repeats, configs)
    for name, r in rows.items():
        print(
            f"{name:16s} {r['words_per_s']:8.0f} words/s  runs {r['runs_words_per_s']}  peak {r['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    hf_fp32 = rows["hf/fp32"]["words_per_s"] if "fp32" in runtimes else None
    best_ours = max(runtimes, key=lambda r: rows[f"ours/{r}"]["words_per_s"])
    best_hf = max(runtimes, key=lambda r: rows[f"hf/{r}"]["words_per_s"])
    ratios = {
        "best_ours_runtime": best_ours,
        "best_hf_runtime": best_hf,
        "best_ours_vs_hf_fp32": rows[f"ours/{best_ours}"]["words_per_s"] / hf_fp32 if hf_fp32 else None,
        "best_ours_vs_best_hf": rows[f"ours/{best_ours}"]["words_per_s"] / rows[f"hf/{best_hf}"]["words_per_s"],
        "ours_vs_hf_same_runtime": {r: rows[f"ours/{r}"]["words_per_s"] / rows[f"hf/{r}"]["words_per_s"] for r in runtimes},
        "ours_vs_floor_same_runtime": {r: rows[f"ours/{r}"]["words_per_s"] / rows[f"floor/{r}"]["words_per_s"] for r in runtimes},
        "ours_vs_floor_grouped_same_runtime": {
            r: rows[f"ours/{r}"]["words_per_s"] / rows[f"floor_grouped/{r}"]["words_per_s"] for r in runtimes
        },
    }
    processes = {}
    for runtime in dict.fromkeys(r for r in ("fp32", best_ours) if r in runtimes):
        two = [run_two_processes(args.model, runtime, sentences, args.batch_size, warm_up) for _ in range(args.repeats)]
        best = sorted(two, key=lambda r: r["words_per_s"])[len(two) // 2]
        processes[runtime] = {
            "one_process_2_threads": rows[f"ours/{runtime}"]["words_per_s"],
            "two_processes_1_thread": best["words_per_s"],
            "runs_two_processes": [round(t["words_per_s"], 1) for t in two],
            "detail": best,
        }
        print(
            f"processes {runtime}: 1x{args.threads} threads {rows[f'ours/{runtime}']['words_per_s']:.0f} words/s, "
            f"2x1 thread {best['words_per_s']:.0f} words/s",
            flush=True,
        )
    for k, v in ratios.items():
        print(f"{k}: {v}")
    result = {
        **header("benchmark_runtimes", argv),
        "cpu": cpu_flags(),
        "rows": rows,
        "ratios": ratios,
        "processes": processes,
        "model": args.model,
        "backbone": args.backbone,
        "sentences": len(sentences),
        "warm_up_sentences": len(warm_up),
        "batch_size": args.batch_size,
        "threads": args.threads,
        "repeats": args.repeats,
    }
    return write(result, args.output)


if __name__ == "__main__":
    main()
