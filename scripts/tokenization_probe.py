"""How much do the entities that spaCy's tokenizer would split cost?

A probe, not a product feature. `spacy train` with `gold_preproc = false`
(spaCy's default, and ours) re-tokenizes every training sentence with spaCy's
tokenizer and aligns the gold tags to the new tokens, so the model never sees
a token such as "Jean-Pierre" or "O'Neill" whole. `spacy-bert-ner evaluate`
scores on the gold tokens (seqeval-compatible), where such tokens do occur.
This script splits a corpus into the sentences with at least one gold entity
that covers a token spaCy's tokenizer splits (or merges) and the rest, and
scores a trained pipeline on each group: on the gold tokens (as `evaluate`
does) and, for the first group, also on spaCy's tokens (as the dev score
during `spacy train` does, through spaCy's aligned NER scorer).

    python scripts/tokenization_probe.py training/wikiann-en/model-best corpus/wikiann-en/dev.spacy \
        --output metrics/experiments/wikiann-en-tokenization-probe.json
"""
import time
from pathlib import Path
from typing import List, Optional, Tuple

import spacy
import srsly
import typer
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc
from spacy.training import Example
from wasabi import msg

from spacy_bert_ner.docs import read_docbin
from spacy_bert_ner.evaluate import predict_gold_tokens
from spacy_bert_ner.scoring import machine_description, score_docs, today


def split_by_retokenization(nlp, gold: List[Doc]) -> Tuple[List[Doc], List[Doc]]:
    """(docs with an entity on a token that spaCy's tokenizer splits or merges, the rest)."""
    touched: List[Doc] = []
    rest: List[Doc] = []
    for doc in gold:
        example = Example(nlp.make_doc(doc.text), doc)
        y2x = example.alignment.y2x
        hit = any(len(y2x[token.i]) != 1 for ent in doc.ents for token in ent)
        (touched if hit else rest).append(doc)
    return touched, rest


def rounded(scores: dict) -> dict:
    return {
        "ents_f": round(scores["ents_f"], 4),
        "ents_p": round(scores["ents_p"], 4),
        "ents_r": round(scores["ents_r"], 4),
    }


def main(
    model: Path = typer.Argument(..., help="Trained pipeline directory"),
    data: Path = typer.Argument(..., help="A .spacy corpus (gold tokens and entities)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the figures as JSON"),
    batch_size: int = typer.Option(64, "--batch-size"),
) -> None:
    start = time.time()
    nlp = spacy.load(model)
    gold = list(read_docbin(data, nlp.vocab))
    touched, rest = split_by_retokenization(nlp, gold)
    n_ents = sum(len(d.ents) for d in gold)
    n_touched = sum(len(d.ents) for d in touched)
    msg.info(f"{len(touched)} of {len(gold)} sentences ({n_touched} of {n_ents} gold entities) are retokenized inside an entity")
    touched_gold_tokens = score_docs(touched, predict_gold_tokens(nlp, touched, batch_size))
    touched_spacy_tokens = get_ner_prf(
        [Example(pred, ref) for pred, ref in zip(nlp.pipe((d.text for d in touched), batch_size=batch_size), touched)]
    )
    rest_gold_tokens = score_docs(rest, predict_gold_tokens(nlp, rest, batch_size))
    result = {
        "model": str(model),
        "data": str(data),
        "sentences": len(gold),
        "gold_entities": n_ents,
        "retokenized_sentences": len(touched),
        "retokenized_sentence_entities": n_touched,
        "retokenized_on_gold_tokens": rounded(touched_gold_tokens),
        "retokenized_on_spacy_tokens": rounded(touched_spacy_tokens),
        "rest_on_gold_tokens": rounded(rest_gold_tokens),
        "seconds": round(time.time() - start, 1),
        "machine": machine_description(),
        "date": today(),
        "command": f"python scripts/tokenization_probe.py {model} {data}",
    }
    msg.table(
        [
            ("retokenized sentences, gold tokens", f"{100 * touched_gold_tokens['ents_f']:.2f}"),
            ("retokenized sentences, spaCy tokens", f"{100 * touched_spacy_tokens['ents_f']:.2f}"),
            ("other sentences, gold tokens", f"{100 * rest_gold_tokens['ents_f']:.2f}"),
        ],
        header=("group", "F1"),
    )
    if output is not None:
        srsly.write_json(output, result)
        msg.good(f"Saved {output}")


if __name__ == "__main__":
    typer.run(main)
