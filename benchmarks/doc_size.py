"""What predicted Docs weigh with and without the transformer's output on them
(``doc._.trf_data``): the ``.spacy`` bytes per 1,000 sentences and the
resident memory of a list that keeps every predicted Doc.

    python benchmarks/doc_size.py --model training/wikiann-en/model-best --data ../shared/data \\
        --output metrics/doc-size.json

``kept`` sets ``keep_trf_data = true`` on ``bert_ner`` (the Docs carry the
wordpieces and hidden states, as every spacy-transformers pipeline's Docs do);
``dropped`` is the default. Each side runs in its own process.
"""

import argparse
import os
import sys
from pathlib import Path
from typing import Dict

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data import wikiann  # noqa: E402
from record import header, in_child, peak_rss_mb, write  # noqa: E402


def measure(model: str, keep: bool, sentences, batch_size: int) -> Dict:
    import resource

    import spacy
    from spacy.tokens import Doc, DocBin

    from spacy_bert_ner.pipeline.batching import pipe_by_length

    nlp = spacy.load(model, config={"components": {"bert_ner": {"keep_trf_data": keep}}})
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    docs = list(pipe_by_length(nlp, (Doc(nlp.vocab, words=w) for w, _ in sentences), batch_size=batch_size))
    peak = peak_rss_mb()
    size = len(DocBin(docs=docs[:1000], store_user_data=True).to_bytes())
    text = sum(len(d.text.encode("utf8")) for d in docs[:1000])
    return {
        "docbin_bytes_per_1000": size,
        "text_bytes_per_1000": text,
        "docs_kept": len(docs),
        "peak_rss_mb_keeping_all_docs": peak,
        "rss_mb_after_loading": base,
    }


def main() -> Dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data", default=os.environ.get("SPACY_BERT_NER_DATA", "../shared/data"))
    p.add_argument("--sentences", type=int, default=10000, help="WikiANN-en test sentences kept as Docs")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--output", default="metrics/doc-size.json")
    args = p.parse_args()
    sentences = wikiann(args.data, "test", args.sentences)
    rows = {
        name: in_child(measure, args.model, keep, sentences, args.batch_size)
        for name, keep in (("kept", True), ("dropped", False))
    }
    for name, r in rows.items():
        print(
            f"{name:8s} {r['docbin_bytes_per_1000'] / 1e6:7.2f} MB per 1,000 sentences in .spacy "
            f"(text: {r['text_bytes_per_1000'] / 1e3:.0f} kB); peak RSS keeping {r['docs_kept']} Docs: "
            f"{r['peak_rss_mb_keeping_all_docs']:.0f} MB",
            flush=True,
        )
    result = {**header("doc_size", None), "rows": rows, "model": args.model, "sentences": len(sentences)}
    return write(result, args.output)


if __name__ == "__main__":
    main()
