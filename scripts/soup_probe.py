"""Greedy model soup: which trained pipelines to average, chosen on dev.

A probe around `spacy-bert-ner average` (spacy_bert_ner.averaging), after
Wortsman et al. (2022), "Model soups". The candidates (pipelines fine-tuned
from the same start: same config structure and seed) are sorted by the best
dev F1 in their training logs. The soup starts as the best one; each next
candidate is added if the weight average with it scores higher dev F1 (gold
tokens, as `spacy-bert-ner evaluate`) than the soup without it. The final soup
is saved and scored on test. Test is never used to choose.

    python scripts/soup_probe.py corpus/wikiann-en training/soup-wikiann \\
        training/exp-a training/exp-b training/exp-c \\
        --output metrics/experiments/wikiann-en-soup-probe.json

Each candidate is a run directory with model-best/ and train-log.jsonl
(as scripts/run_experiment.sh writes them).
"""
import time
from pathlib import Path
from typing import Dict, List, Optional

import spacy
import srsly
import typer
from wasabi import msg

from spacy_bert_ner.averaging import average_weights
from spacy_bert_ner.evaluate import evaluate, load_train_log
from spacy_bert_ner.scoring import machine_description, today


def _scores(scores: Dict) -> Dict:
    return {k: scores[k] for k in ("ents_p", "ents_r", "ents_f", "ents_per_type")}


def _soup(runs: List[Path]):
    return average_weights([spacy.load(run / "model-best") for run in runs])


def main(
    corpus: Path = typer.Argument(..., help="Directory with dev.spacy and test.spacy"),
    output_dir: Path = typer.Argument(..., help="Where to save the final soup"),
    runs: List[Path] = typer.Argument(..., help="Run directories with model-best/ and train-log.jsonl"),
    output: Optional[Path] = typer.Option(None, help="Write the steps and scores here (JSON)"),
) -> None:
    dev, test = corpus / "dev.spacy", corpus / "test.spacy"
    log_dev = {run: max((r.get("score") or 0.0) for r in load_train_log(run / "train-log.jsonl")) for run in runs}
    ranked = sorted(runs, key=lambda run: -log_dev[run])
    msg.info("Candidates by their training log's best dev F1: "
             + ", ".join(f"{run.name} {100 * log_dev[run]:.2f}" for run in ranked))
    start = time.time()
    soup = [ranked[0]]
    best = evaluate(spacy.load(ranked[0] / "model-best"), dev)["ents_f"]
    steps = [{"tried": [str(r) for r in soup], "dev_f": best, "kept": True}]
    msg.info(f"{ranked[0].name} alone: dev F1 {100 * best:.2f}")
    for run in ranked[1:]:
        trial = soup + [run]
        try:
            score = evaluate(_soup(trial), dev)["ents_f"]
        except ValueError as error:  # another architecture: cannot be averaged
            steps.append({"tried": [str(r) for r in trial], "error": str(error), "kept": False})
            msg.warn(f"+ {run.name}: {error} (dropped)")
            continue
        kept = score > best
        steps.append({"tried": [str(r) for r in trial], "dev_f": score, "kept": kept})
        msg.info(f"+ {run.name}: dev F1 {100 * score:.2f} ({'kept' if kept else 'dropped'})")
        if kept:
            soup, best = trial, score
    final = _soup(soup)
    final.to_disk(output_dir)
    final = spacy.load(output_dir)  # score what was saved
    test_scores = _scores(evaluate(final, test))
    per_type = ", ".join(f"{k} {100 * v['f']:.2f}" for k, v in sorted(test_scores["ents_per_type"].items()))
    msg.good(f"Soup of {[r.name for r in soup]}: dev F1 {100 * best:.2f}; test P {100 * test_scores['ents_p']:.2f}, "
             f"R {100 * test_scores['ents_r']:.2f}, F1 {100 * test_scores['ents_f']:.2f} ({per_type}); "
             f"{time.time() - start:.0f} s")
    if output is not None:
        srsly.write_json(output, {
            "corpus": str(corpus), "candidates": {str(r): log_dev[r] for r in ranked}, "steps": steps,
            "soup": [str(r) for r in soup], "dev_f": best, "test": test_scores, "saved_to": str(output_dir),
            "machine": machine_description(), "date": today(),
        })
        msg.good(f"Saved {output}")


if __name__ == "__main__":
    typer.run(main)
