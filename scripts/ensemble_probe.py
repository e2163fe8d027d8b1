"""How much would an ensemble of trained ``bert_ner`` pipelines score?

A probe, not a product feature: it runs each pipeline over the same
gold-tokenised split once, keeps its tag probabilities, and scores each model
alone and the ensembles that average their probabilities (every combination
of two or more models) with the constrained Viterbi decoding of the first
model. All models must have the same tag set (trained on the same labels).

    python scripts/ensemble_probe.py corpus/wikiann-en/test.spacy \\
        training/exp-a/model-best training/exp-b/model-best \\
        --output metrics/experiments/wikiann-en-ensemble-probe.json
"""
import itertools
import time
from pathlib import Path
from typing import List, Optional

import numpy
import spacy
import srsly
import typer
from wasabi import msg

from spacy_bert_ner.components import bert_ner_name
from spacy_bert_ner.docs import read_docbin
from spacy_bert_ner.evaluate import tag_log_probs
from spacy_bert_ner.decoding import clamped_log, tags_to_entities
from spacy_bert_ner.scoring import doc_entities, machine_description, score_entities, today


def main(
    data: Path = typer.Argument(..., help="A .spacy file with gold entities"),
    models: List[Path] = typer.Argument(..., help="Two or more trained pipelines with a bert_ner component"),
    output: Optional[Path] = typer.Option(None, help="Write the scores here (JSON)"),
    batch_size: int = typer.Option(64, help="Docs per batch"),
) -> None:
    if len(models) < 2:
        msg.fail("Give at least two models", exits=1)
    all_probs: List[List[numpy.ndarray]] = []
    tags = None
    decoder = None
    golds = None
    for path in models:
        start = time.time()
        nlp = spacy.load(path)
        pipe = nlp.get_pipe(bert_ner_name(nlp))
        if tags is None:
            tags, decoder = pipe.tags, pipe.decoder
        elif pipe.tags != tags:
            msg.fail(f"{path}: its tags {pipe.tags} differ from {models[0]}'s {tags}", exits=1)
        gold = list(read_docbin(data, nlp.vocab))
        if golds is None:
            golds = [doc_entities(doc) for doc in gold]
        all_probs.append([numpy.exp(lp) for lp in tag_log_probs(nlp, gold, batch_size)])
        msg.info(f"{path}: tag probabilities of {len(gold)} Docs in {time.time() - start:.0f} s")

    def score(members) -> dict:
        pairs = []
        for i, gold_ents in enumerate(golds):
            probs = numpy.mean([all_probs[m][i] for m in members], axis=0)
            ids = decoder.decode(clamped_log(probs)) if len(probs) else []
            pairs.append((gold_ents, tags_to_entities([tags[j] for j in ids])))
        return score_entities(pairs)

    rows, results = [], []
    for size in range(1, len(models) + 1):
        for members in itertools.combinations(range(len(models)), size):
            s = score(members)
            names = [str(models[m]) for m in members]
            per_type = {label: round(100 * v["f"], 2) for label, v in sorted(s["ents_per_type"].items())}
            results.append({"models": names, "ents_p": s["ents_p"], "ents_r": s["ents_r"], "ents_f": s["ents_f"],
                            "ents_per_type": s["ents_per_type"]})
            rows.append((" + ".join(names), f"{100 * s['ents_p']:.2f}", f"{100 * s['ents_r']:.2f}",
                         f"{100 * s['ents_f']:.2f}", ", ".join(f"{k} {v}" for k, v in per_type.items())))
    msg.table(rows, header=("models (probabilities averaged)", "P", "R", "F1", "F1 per label"), divider=True)
    if output is not None:
        srsly.write_json(output, {"data": str(data), "results": results, "machine": machine_description(),
                                  "date": today()})
        msg.good(f"Saved {output}")


if __name__ == "__main__":
    typer.run(main)
