"""Would per-label decision biases, fitted on dev, raise test F1?

A probe, not a product feature: it runs a trained ``bert_ner`` pipeline over
the dev and test splits once, keeps the tag probabilities, then adds a bias
per label to the log-probabilities of that label's entity-start tags (B-, U-)
before the constrained Viterbi decoding, so a positive bias makes entities of
that label more likely. The biases are fitted on dev by coordinate ascent over
a grid and then applied to test.

    python scripts/label_bias_probe.py training/wikiann-en/model-best corpus/wikiann-en \
        --output metrics/experiments/wikiann-en-label-bias-probe.json
"""
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy
import spacy
import srsly
import typer
from wasabi import msg

from spacy_bert_ner.components import bert_ner_name
from spacy_bert_ner.decoding import BiluoDecoder, tags_to_entities
from spacy_bert_ner.docs import read_docbin
from spacy_bert_ner.evaluate import tag_log_probs
from spacy_bert_ner.scoring import Entity, doc_entities, machine_description, score_entities, today


def collect(nlp, path: Path, batch_size: int = 64) -> Tuple[List[numpy.ndarray], List[List[Entity]]]:
    """Log tag probabilities of every gold-tokenised Doc, and its gold entities."""
    gold = list(read_docbin(path, nlp.vocab))
    return tag_log_probs(nlp, gold, batch_size), [doc_entities(doc) for doc in gold]


def bias_vector(tags: Sequence[str], biases: Dict[str, float]) -> numpy.ndarray:
    return numpy.asarray([biases.get(t[2:], 0.0) if t[:2] in ("B-", "U-") else 0.0 for t in tags])


def micro_f1(decoder: BiluoDecoder, log_probs, golds, bias: numpy.ndarray) -> Tuple[float, float, float]:
    """Entity-level micro F1, P and R of the biased decoding."""
    pairs = []
    for lp, gold in zip(log_probs, golds):
        ids = decoder.decode(lp + bias) if len(lp) else []
        pairs.append((gold, tags_to_entities([decoder.tags[i] for i in ids])))
    scores = score_entities(pairs)
    return scores["ents_f"], scores["ents_p"], scores["ents_r"]


def main(
    model: Path = typer.Argument(..., help="A trained pipeline with a bert_ner component"),
    corpus: Path = typer.Argument(..., help="Directory with dev.spacy and test.spacy"),
    output: Optional[Path] = typer.Option(None, help="Write the fitted biases and scores here (JSON)"),
    low: float = typer.Option(-1.5, help="Smallest bias tried"),
    high: float = typer.Option(1.5, help="Largest bias tried"),
    step: float = typer.Option(0.25, help="Grid step"),
    rounds: int = typer.Option(2, help="Coordinate-ascent rounds over the labels"),
) -> None:
    nlp = spacy.load(model)
    pipe = nlp.get_pipe(bert_ner_name(nlp))
    decoder = pipe.decoder
    start = time.time()
    dev = collect(nlp, corpus / "dev.spacy")
    test = collect(nlp, corpus / "test.spacy")
    msg.info(f"Tag probabilities of {len(dev[0])} dev and {len(test[0])} test Docs in {time.time() - start:.0f} s")
    biases = {label: 0.0 for label in pipe.labels}
    before = {"dev": micro_f1(decoder, *dev, bias_vector(pipe.tags, biases)),
              "test": micro_f1(decoder, *test, bias_vector(pipe.tags, biases))}
    best = before["dev"][0]
    for _ in range(rounds):
        for label in pipe.labels:
            for value in numpy.arange(low, high + step / 2, step):
                trial = {**biases, label: round(float(value), 4)}
                score = micro_f1(decoder, *dev, bias_vector(pipe.tags, trial))[0]
                if score > best + 1e-9:
                    best, biases = score, trial
    after = {"dev": micro_f1(decoder, *dev, bias_vector(pipe.tags, biases)),
             "test": micro_f1(decoder, *test, bias_vector(pipe.tags, biases))}
    rows = [(split, f"{100 * before[split][0]:.2f}", f"{100 * after[split][0]:.2f}") for split in ("dev", "test")]
    msg.table(rows, header=("split", "F1 without biases", "F1 with dev-fitted biases"), divider=True)
    msg.info(f"Fitted biases: {biases}")
    if output is not None:
        result = {
            "model": str(model),
            "biases": biases,
            "grid": {"low": low, "high": high, "step": step, "rounds": rounds},
            **{f"{split}_{when}": dict(zip(("f", "p", "r"), scores))
               for when, table in (("before", before), ("after", after)) for split, scores in table.items()},
            "machine": machine_description(),
            "date": today(),
        }
        srsly.write_json(output, result)
        msg.good(f"Saved {output}")


if __name__ == "__main__":
    typer.run(main)
