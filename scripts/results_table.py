"""Render the README's results tables from the committed metrics files.

    python scripts/results_table.py                # the README's tables, in Markdown
    python scripts/results_table.py --experiments  # the table of metrics/EXPERIMENTS.md
Every figure comes from metrics/*.json (written by `spacy-bert-ner evaluate`
and benchmarks/benchmark_cpu.py); nothing is typed in by hand.
"""
import json
import sys
from pathlib import Path

METRICS = Path(__file__).resolve().parent.parent / "metrics"
REFERENCES = {
    "wikiann-en": "distilbert-base-uncased fine-tune (GPU), overall F1 ≈ 83",
    "gmb": "bert-base-cased fine-tune (reference notebook)",
}


def _per_label(per_type: dict) -> str:
    """``"LABEL F1, ..."`` from ``ents_per_type``, most frequent label first."""
    return ", ".join(f"{k} {100 * v['f']:.1f}" for k, v in sorted(per_type.items(), key=lambda kv: -kv[1]["support"]))


def quality_table() -> str:
    rows = []
    for path in sorted(METRICS.glob("*.json")):
        m = json.loads(path.read_text())
        if "ents_f" not in m:
            continue
        labels = _per_label(m.get("ents_per_type") or {})
        minutes = m.get("workflow_seconds", m.get("train_seconds") or 0) / 60
        rows.append(
            f"| {path.stem} | {m.get('pipeline_head', 'ner')} | {100 * m['ents_p']:.1f} | {100 * m['ents_r']:.1f} | **{100 * m['ents_f']:.1f}** "
            f"| {labels} | {m.get('steps')} | {minutes:.0f} min | {m.get('conditions', '')} | {REFERENCES.get(path.stem, '')} |"
        )
    head = (
        "| data (test split) | NER head | P | R | F1 | F1 per label | steps | wall time | how it ran | reference |\n"
        "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | --- | --- |"
    )
    return head + "\n" + "\n".join(rows) + "\n"


def benchmark_table() -> str:
    path = METRICS / "benchmark-cpu.json"
    if not path.exists():
        return ""
    b = json.loads(path.read_text())
    lines = [
        "| batch size | ours, length-sorted (words/s) | HF, input order (words/s) | ours / HF | ours, input order | HF, length-sorted | ours peak RSS | HF peak RSS |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in b["inference"]:
        lines.append(
            f"| {r['batch_size']} | {r['ours']['words_per_s']:.0f} | {r['hf']['words_per_s']:.0f} | **{r['ratio']:.2f}×** "
            f"| {r['ours_input_order']['words_per_s']:.0f} | {r['hf_sorted']['words_per_s']:.0f} "
            f"| {r['ours']['peak_rss_mb']:.0f} MB | {r['hf']['peak_rss_mb']:.0f} MB |"
        )
    t = b["training"]
    lines += [
        "",
        f"Training ({t['updates']} updates of {t['sentences_per_update']} sentences): ours "
        f"{b['train_ours_words_per_s']:.0f} words/s, plain PyTorch loop {b['train_hf_words_per_s']:.0f} words/s "
        f"(ratio {b['train_ratio_vs_hf']:.2f}×).",
    ]
    for name, c in b.get("conversion", {}).items():
        lines.append(f"Conversion of {name}: {c['seconds']:.1f} s for {c['tokens']:,} tokens, {c['peak_rss_mb']:.0f} MB peak RSS.")
    lines.append(f"\nMachine: {b['machine']}; {b['date']}; `{b['command']}`")
    return "\n".join(lines) + "\n"


def heads_table() -> str:
    """`ner` vs `bert_ner`: test F1 at the same budget (from metrics/experiments) and speed (metrics/heads-cpu.json)."""
    path = METRICS / "heads-cpu.json"
    if not path.exists():
        return ""
    h = json.loads(path.read_text())
    lines = [
        "| data | head | test P | test R | test F1 | F1 per label | steps | training wall time | inference words/s (WikiANN / GMB sentences) | training words/s |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for run, m in sorted(h["test_metrics"].items()):
        data, head = run.split(":", 1)
        labels = _per_label(m.get("ents_per_type") or {})
        inf = h["inference"].get(head, {})
        speed = " / ".join(f"{inf[d]['words_per_s']:.0f}" for d in ("wikiann-en", "gmb") if d in inf)
        train = h["training"].get(head, {}).get("words_per_s")
        minutes = (m.get("train_seconds") or 0) / 60
        lines.append(
            f"| {data} | {head} | {100 * m['ents_p']:.1f} | {100 * m['ents_r']:.1f} | **{100 * m['ents_f']:.1f}** | {labels} "
            f"| {m.get('steps')} | {minutes:.0f} min | {speed} | {train:.0f} |"
        )
    lines.append(
        f"\nSpeed: batch {h['batch_size']}, {h['threads']} torch threads, every measurement alone in its own process; "
        f"{h['machine']}; {h['date']}; `{h['command']}`"
    )
    return "\n".join(lines) + "\n"


def experiments_table() -> str:
    """One row per run in metrics/experiments/*.json (scripts/run_experiment.sh outputs;
    other JSONs there, such as probes that trained nothing, have no test scores and are skipped)."""
    lines = [
        "| run | config | data | steps | training time | best dev F1 (step) | test F1 | test F1 per label | conditions |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for path in sorted((METRICS / "experiments").glob("*.json")):
        m = json.loads(path.read_text())
        if "ents_f" not in m:
            continue
        labels = _per_label(m.get("ents_per_type") or {})
        dev = f"{100 * m['best_dev_score']:.1f} ({m.get('best_step')})" if m.get("best_dev_score") is not None else "–"
        lines.append(
            f"| [{path.stem}](experiments/{path.name}) | `{m.get('config')}` | {m.get('dataset', '')} | {m.get('steps')} "
            f"| {(m.get('train_seconds') or 0) / 60:.0f} min | {dev} | **{100 * m['ents_f']:.1f}** | {labels} | {m.get('conditions', '')} |"
        )
    return "\n".join(lines) + "\n"


def calibration_table() -> str:
    """ECE/MCE of bert_ner's confidences on dev, from metrics/calibration/*.json: at
    temperature 1 (the model's probabilities) and, when fitted, at the fitted temperature."""
    lines = [
        "| dev split | entities | correct | ECE at temperature 1 | fitted temperature | ECE fitted | MCE fitted "
        "| top bin (fitted): mean confidence / accuracy | table |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for path in sorted((METRICS / "calibration").glob("*.json")):
        c = json.loads(path.read_text())
        if "ece" not in c:
            continue
        before = c.get("before", c)
        fitted = "before" in c
        top = next((b for b in reversed(c["bins"]) if b["count"]), None)
        top_cell = f"{100 * top['mean_confidence']:.1f}% / {100 * top['accuracy']:.1f}%" if top and fitted else "–"
        lines.append(
            f"| {path.stem} | {c['n_entities']:,} | {100 * c['accuracy']:.1f}% | {100 * before['ece']:.1f} "
            + (f"| {c['temperature']:.2f} | **{100 * c['ece']:.1f}** | {100 * c['mce']:.1f} " if fitted else "| not fitted | – | – ")
            + f"| {top_cell} | [{path.stem}.md](metrics/calibration/{path.stem}.md) |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["--experiments"]:
        sys.stdout.write(experiments_table())
        sys.exit(0)
    sys.stdout.write(quality_table() + "\n" + heads_table() + "\n" + calibration_table() + "\n" + benchmark_table())
