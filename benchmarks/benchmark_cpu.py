"""Side-by-side CPU benchmark: our spaCy pipeline vs Hugging Face transformers
token classification on the same backbone, the same sentences and batch sizes.

    python benchmarks/benchmark_cpu.py --model training/wikiann-en/model-best \\
        --data ../shared/data --output metrics/benchmark-cpu.json

Every measurement runs in its own child process, so its peak memory (RSS) is its
own. Reported:
- inference: words/s from words to entity spans (Doc creation, transformer,
  NER head, decoding) for each batch size; HF: tokenise, forward pass under
  ``torch.inference_mode``, argmax, first-subword tags → BIO spans. Each side
  runs both in input order and with length-sorted batches; the headline ratio
  is ours as shipped (length-sorted, ``pipe_by_length``) over HF in input order;
- training: words/s of optimizer updates on identical batches (our spaCy
  config vs a plain PyTorch loop over ``AutoModelForTokenClassification``);
- conversion: seconds and peak memory to convert the full GMB file and WikiANN train.
The HF token-classification head is freshly initialised (speed does not depend
on its weights); both sides run with the same number of torch threads.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data import WIKIANN_LABELS, train_sentences, wikiann  # noqa: E402
from record import header, in_child, peak_rss_mb, write  # noqa: E402

# --- inference --------------------------------------------------------------------------


def infer_ours(model: str, sentences, batch_size: int, threads: int, by_length: bool) -> Dict:
    import spacy
    import torch
    from spacy.tokens import Doc

    from spacy_bert_ner.pipeline.batching import pipe_by_length

    torch.set_num_threads(threads)
    nlp = spacy.load(model)
    words = [w for w, _ in sentences]

    def pipe(ws):
        docs = (Doc(nlp.vocab, words=w) for w in ws)
        return pipe_by_length(nlp, docs, batch_size=batch_size) if by_length else nlp.pipe(docs, batch_size=batch_size)

    list(pipe(words[:64]))  # warm-up
    n_words = sum(len(w) for w in words)
    start = time.perf_counter()
    n_ents = 0
    for doc in pipe(words):
        n_ents += len([(e.start, e.end, e.label_) for e in doc.ents])
    seconds = time.perf_counter() - start
    return {
        "words_per_s": n_words / seconds,
        "seconds": seconds,
        "words": n_words,
        "entities": n_ents,
        "peak_rss_mb": peak_rss_mb(),
    }


def infer_hf(backbone: str, sentences, batch_size: int, threads: int, by_length: bool) -> Dict:
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from spacy_bert_ner.formats.schemes import tags_to_spans

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = AutoModelForTokenClassification.from_pretrained(backbone, num_labels=len(WIKIANN_LABELS)).eval()
    words = [w for w, _ in sentences]

    def run(batch_words):
        if by_length:  # the same length-sorted batches as ours; output order does not matter for speed
            batch_words = sorted(batch_words, key=len)
        n = 0
        with torch.inference_mode():
            for i in range(0, len(batch_words), batch_size):
                batch = batch_words[i : i + batch_size]
                enc = tokenizer(
                    batch, is_split_into_words=True, truncation=True, max_length=512, padding=True, return_tensors="pt"
                )
                pred = model(**enc).logits.argmax(-1).tolist()
                for j, ws in enumerate(batch):
                    tags = ["O"] * len(ws)
                    seen = set()
                    for k, wid in enumerate(enc.word_ids(j)):
                        if wid is not None and wid not in seen:
                            seen.add(wid)
                            tags[wid] = WIKIANN_LABELS[pred[j][k]]
                    n += len(tags_to_spans(tags, "IOB2").spans)
        return n

    run(words[:64])  # warm-up
    n_words = sum(len(w) for w in words)
    start = time.perf_counter()
    n_ents = run(words)
    seconds = time.perf_counter() - start
    return {
        "words_per_s": n_words / seconds,
        "seconds": seconds,
        "words": n_words,
        "entities": n_ents,
        "peak_rss_mb": peak_rss_mb(),
    }


# --- training ---------------------------------------------------------------------------


def _batches(sentences, batch_size: int, n_batches: int):
    batches = [sentences[i : i + batch_size] for i in range(0, len(sentences), batch_size)]
    return (batches * (n_batches // max(1, len(batches)) + 1))[:n_batches]


def init_training(config: str, backbone: str, sentences, threads: int):
    """``(nlp, examples, optimizer)``: the config's pipeline on ``backbone``, initialized on
    the first 500 of ``sentences`` (``(words, IOB2 tags)`` pairs) made into Examples."""
    import torch
    from spacy.tokens import Doc
    from spacy.training import Example
    from spacy.util import load_config, load_model_from_config

    from spacy_bert_ner.formats.docbin import make_doc
    from spacy_bert_ner.formats.schemes import tags_to_spans

    torch.set_num_threads(threads)
    cfg = load_config(config, overrides={"paths.transformer": backbone}, interpolate=False)
    nlp = load_model_from_config(cfg, auto_fill=True, validate=True)
    examples = []
    for words, tags in sentences:
        ref = make_doc(nlp.vocab, [(words, tags_to_spans(tags, "IOB2").spans)])
        # the predicted side must carry no entity annotation (not even "O"), as spaCy's Corpus gives it
        examples.append(Example(Doc(nlp.vocab, words=words), ref))
    return nlp, examples, nlp.initialize(lambda: examples[:500])


def train_ours(config: str, backbone: str, sentences, batch_size: int, updates: int, threads: int) -> Dict:
    nlp, examples, optimizer = init_training(config, backbone, sentences, threads)
    batches = _batches(examples, batch_size, updates + 2)
    for batch in batches[:2]:  # warm-up
        nlp.update(batch, sgd=optimizer, drop=0.1)
    start = time.perf_counter()
    n_words = 0
    for batch in batches[2:]:
        nlp.update(batch, sgd=optimizer, drop=0.1)
        n_words += sum(len(e.reference) for e in batch)
    seconds = time.perf_counter() - start
    return {
        "words_per_s": n_words / seconds,
        "seconds": seconds,
        "words": n_words,
        "updates": updates,
        "peak_rss_mb": peak_rss_mb(),
    }


def train_hf(backbone: str, sentences, batch_size: int, updates: int, threads: int) -> Dict:
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(backbone)
    model = AutoModelForTokenClassification.from_pretrained(backbone, num_labels=len(WIKIANN_LABELS))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4, weight_decay=0.01)
    label_id = {label: i for i, label in enumerate(WIKIANN_LABELS)}

    def step(batch):
        words = [w for w, _ in batch]
        enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=512, padding=True, return_tensors="pt")
        labels = torch.full(enc["input_ids"].shape, -100, dtype=torch.long)
        for j, (_, tags) in enumerate(batch):
            seen = set()
            for k, wid in enumerate(enc.word_ids(j)):
                if wid is not None and wid not in seen:
                    seen.add(wid)
                    labels[j, k] = label_id[tags[wid]]
        loss = model(**enc, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()
        return sum(len(w) for w in words)

    batches = _batches(sentences, batch_size, updates + 2)
    for batch in batches[:2]:
        step(batch)
    start = time.perf_counter()
    n_words = sum(step(batch) for batch in batches[2:])
    seconds = time.perf_counter() - start
    return {
        "words_per_s": n_words / seconds,
        "seconds": seconds,
        "words": n_words,
        "updates": updates,
        "peak_rss_mb": peak_rss_mb(),
    }


# --- conversion -------------------------------------------------------------------------


def convert_file(path: str, split: bool) -> Dict:
    from spacy_bert_ner.formats.convert import convert

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        report = convert(path, Path(tmp) / ("out" if split else "out.spacy"), split=(0.8, 0.1, 0.1) if split else None)
        seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "sentences": report.sentences,
        "tokens": report.tokens,
        "tokens_per_s": report.tokens / seconds,
        "peak_rss_mb": peak_rss_mb(),
    }


# --- driver -----------------------------------------------------------------------------


def main(argv: Sequence[str] = None) -> Dict:
    from spacy_bert_ner.pipeline.transformer import EMBEDDED_MINILM, resolve_transformer_name

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="Our trained pipeline (directory or package)")
    p.add_argument("--data", default=os.environ.get("SPACY_BERT_NER_DATA", "../shared/data"))
    p.add_argument("--backbone", default=EMBEDDED_MINILM, help="HF backbone for the comparison (same as the model's)")
    p.add_argument("--config", default="configs/ner-cpu.cfg", help="Config for the training comparison")
    p.add_argument("--sentences", type=int, default=3000, help="WikiANN test sentences for inference")
    p.add_argument("--batch-sizes", default="16,64,128")
    p.add_argument("--batch-size", type=int, default=64, help="The batch size of the headline numbers")
    p.add_argument("--train-updates", type=int, default=30)
    p.add_argument("--train-batch", type=int, default=32, help="Sentences per training update")
    p.add_argument(
        "--train-max-words",
        type=int,
        default=60,
        help="Train on sentences of at most this many words (both sides): a plain HF loop pads a batch to its "
        "longest sentence and runs out of memory on WikiANN's 400-word lists",
    )
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--skip-conversion", action="store_true")
    p.add_argument("--output", default="metrics/benchmark-cpu.json")
    args = p.parse_args(argv)

    backbone = resolve_transformer_name(args.backbone)
    data = Path(args.data)
    test = wikiann(data, "test", args.sentences)
    train = train_sentences(data, args.train_max_words, args.train_batch, args.train_updates)
    batch_sizes = sorted({int(b) for b in args.batch_sizes.split(",")} | {args.batch_size})

    inference = []
    for bs in batch_sizes:
        row = {"batch_size": bs}
        for side, func in (("ours", infer_ours), ("hf", infer_hf)):
            for by_length in (False, True):
                key = side if by_length == (side == "ours") else f"{side}_{'sorted' if by_length else 'input_order'}"
                row[key] = in_child(func, args.model if side == "ours" else backbone, test, bs, args.threads, by_length)
        # headline: each side as it runs by default -- ours through pipe_by_length (what
        # `predict` and `evaluate` use), HF as a plain loop in input order
        row["ratio"] = row["ours"]["words_per_s"] / row["hf"]["words_per_s"]
        row["ratio_same_batching_input_order"] = row["ours_input_order"]["words_per_s"] / row["hf"]["words_per_s"]
        row["ratio_same_batching_sorted"] = row["ours"]["words_per_s"] / row["hf_sorted"]["words_per_s"]
        inference.append(row)
        print(
            f"inference bs={bs:4d}: ours {row['ours']['words_per_s']:7.0f} w/s ({row['ours']['peak_rss_mb']:.0f} MB) | "
            f"HF {row['hf']['words_per_s']:7.0f} w/s ({row['hf']['peak_rss_mb']:.0f} MB) | ratio {row['ratio']:.2f} || "
            f"input order: ours {row['ours_input_order']['words_per_s']:7.0f} / HF {row['hf']['words_per_s']:7.0f} = "
            f"{row['ratio_same_batching_input_order']:.2f} | sorted: ours {row['ours']['words_per_s']:7.0f} / "
            f"HF {row['hf_sorted']['words_per_s']:7.0f} = {row['ratio_same_batching_sorted']:.2f}",
            flush=True,
        )
    train_ours_r = in_child(train_ours, args.config, backbone, train, args.train_batch, args.train_updates, args.threads)
    train_hf_r = in_child(train_hf, backbone, train, args.train_batch, args.train_updates, args.threads)
    train_ratio = train_ours_r["words_per_s"] / train_hf_r["words_per_s"]
    print(
        f"training ({args.train_updates} updates of {args.train_batch} sentences): ours {train_ours_r['words_per_s']:.0f} w/s "
        f"({train_ours_r['peak_rss_mb']:.0f} MB)  HF {train_hf_r['words_per_s']:.0f} w/s ({train_hf_r['peak_rss_mb']:.0f} MB)  "
        f"ratio {train_ratio:.2f}",
        flush=True,
    )
    conversion = {}
    if not args.skip_conversion:
        conversion["gmb"] = in_child(convert_file, str(data / "gmb-kaggle" / "ner_dataset.csv.gz"), True)
        conversion["wikiann-en-train"] = in_child(convert_file, str(data / "wikiann-en" / "train.tsv"), False)
        for name, r in conversion.items():
            print(f"conversion {name}: {r['seconds']:.1f} s, {r['tokens']} tokens, {r['peak_rss_mb']:.0f} MB peak", flush=True)

    head = next(r for r in inference if r["batch_size"] == args.batch_size)
    result = {
        "ours_words_per_s": head["ours"]["words_per_s"],
        "hf_words_per_s": head["hf"]["words_per_s"],
        "inference_ratio_vs_hf": head["ratio"],
        "inference_ratio_same_batching_input_order": head["ratio_same_batching_input_order"],
        "inference_ratio_same_batching_sorted": head["ratio_same_batching_sorted"],
        "inference_note": "ours = spacy.load(model) through spacy_bert_ner.pipeline.batching.pipe_by_length (length-sorted buffers, "
        "as `predict` and `evaluate` run); hf = tokenizer + AutoModelForTokenClassification in input order under "
        "torch.inference_mode; both from words to entity spans; the *_same_batching_* ratios give each side the other's batching",
        "ours_peak_rss_mb": head["ours"]["peak_rss_mb"],
        "hf_peak_rss_mb": head["hf"]["peak_rss_mb"],
        "train_ours_words_per_s": train_ours_r["words_per_s"],
        "train_hf_words_per_s": train_hf_r["words_per_s"],
        "train_ratio_vs_hf": train_ratio,
        "batch_size": args.batch_size,
        "inference": inference,
        "training": {
            "ours": train_ours_r,
            "hf": train_hf_r,
            "updates": args.train_updates,
            "sentences_per_update": args.train_batch,
            "max_words_per_sentence": args.train_max_words,
        },
        "conversion": conversion,
        "model": args.model,
        "backbone": args.backbone,
        "sentences": len(test),
        "threads": args.threads,
    }
    return write({**header("benchmark_cpu", argv), **result}, args.output)


if __name__ == "__main__":
    main()
