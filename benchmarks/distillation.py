"""Distillation figures: test F1 (fp32 and onnx-int8), fp32 words/s and
training minutes of a teacher, its distilled student and the student's recipe
trained on gold alone (the baseline), one record each in
``metrics/distillation.json``.

    python benchmarks/distillation.py --dataset wikiann-en \\
        --model teacher=training/wikiann-en-teacher --model student=training/wikiann-en-student \\
        --baseline-from metrics/int8-granularity.json --baseline-train metrics/ablations/wikiann-en-bert-ner-casetypes-2500.json

A ``--model ROLE=DIR`` is a ``spacy-bert-ner train``/``distill`` output
(``model-best`` and ``members.json``). Each evaluation runs in its own process
with ``--threads`` torch threads on gold tokens, length-sorted batches of 64
(``spacy_bert_ner.evaluation.evaluate.evaluate``), so words/s are
comparable within one run. A baseline given by ``--baseline-from`` (the fp32
and onnx-int8 rows of an ``int8_granularity`` run of that model) and
``--baseline-train`` (its training record) is a model measured before, on the
machine those files name. Each record carries the date and machine of its
measurement. Records of other datasets already in ``--output`` are kept, with
the date, machine and command of the run that measured them; those of
``--dataset`` are replaced, except the roles named by ``--keep ROLE`` (a model
measured before and not retrained, say a baseline whose recipe did not change).
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import header, in_child, write  # noqa: E402


def evaluate_one(model: str, data: str, runtime: str, threads: int) -> Dict:
    import torch

    from spacy_bert_ner.evaluation.evaluate import evaluate
    from spacy_bert_ner.runtime import load

    torch.set_num_threads(threads)
    scores = evaluate(load(model, runtime=runtime), data)
    return {
        "f1": round(100 * scores["ents_f"], 2),
        "words_per_s": scores["predict_words_per_s"],
        "transformer": scores.get("transformer"),
    }


def parameters(model: str) -> int:
    import spacy

    nlp = spacy.load(model)
    total = 0
    for _, component in nlp.pipeline:
        for node in component.model.walk():
            for shim in node.shims:
                total += sum(p.numel() for p in shim._model.parameters())
            for name in node.param_names:
                if node.has_param(name):
                    total += node.get_param(name).size
    return total


def model_record(dataset: str, role: str, train_dir: Path, data: str, threads: int) -> Dict:
    best = str(train_dir / "model-best")
    fp32 = in_child(evaluate_one, best, data, "fp32", threads)
    onnx = in_child(evaluate_one, best, data, "onnx-int8", threads)
    summary = json.loads((train_dir / "members.json").read_text())
    seconds = max(m["train_seconds"] or 0 for m in summary["members"])
    distilled = summary.get("distillation")
    overrides = list(summary["overrides"])
    members = f"--members {len(summary['members'])} " + (f"--combine {summary['combine']} " if summary.get("combine") else "")
    if distilled:  # distill passes its teacher corpus as --paths.train: the command names the training data instead
        at = overrides.index("--paths.train")
        del overrides[at : at + 2]
        command = (
            f"spacy-bert-ner distill {distilled['teacher']} {summary['config']} {train_dir} --paths.train {distilled['train']} "
        )
        for option in ("unlabelled", "weight", "temperature", "teacher_runtime"):
            if distilled.get(option) is not None:
                command += f"--{option.replace('_', '-')} {distilled[option]} "
    else:
        command = f"spacy-bert-ner train {summary['config']} {train_dir} "
    command += members + " ".join(overrides)
    return {
        "dataset": dataset,
        "role": role,
        "encoder": fp32["transformer"],
        "parameters": in_child(parameters, best),
        "test_f1": fp32["f1"],
        "test_f1_onnx_int8": onnx["f1"],
        "words_per_s": fp32["words_per_s"],
        "train_minutes": round(seconds / 60, 1),
        "train_steps": max(m["steps"] for m in summary["members"]),
        "command": command.strip(),
        "model": str(train_dir),
        **({"distillation": distilled, "teacher_pass_minutes": _teacher_pass_minutes(train_dir)} if distilled else {}),
    }


def _teacher_pass_minutes(train_dir: Path) -> float:
    """How long the teacher took to annotate the training text (``teacher-corpus.json``)."""
    return round(json.loads((train_dir / "teacher-corpus.json").read_text())["seconds"] / 60, 1)


def baseline_record(dataset: str, measured: Path, trained: Path, encoder: str, parameters_of: str) -> Dict:
    rows = json.loads(measured.read_text())
    row = rows["rows"][dataset]
    train = json.loads(trained.read_text())
    return {
        "dataset": dataset,
        "role": "baseline",
        "encoder": encoder,
        "parameters": in_child(parameters, parameters_of),
        "test_f1": round(row["fp32"]["f1"], 2),
        "test_f1_onnx_int8": round(row["onnx-int8/per-channel"]["f1"], 2),
        "words_per_s": row["fp32"]["words_per_s"],
        "train_minutes": round(train["train_seconds"] / 60, 1),
        "train_steps": train["steps"],
        "command": train["command"],
        "measured_in": [str(measured), str(trained)],
        "machine": {"evaluation": rows["machine"], "training": train["machine"]},
        "date": rows["date"],
    }


def _dated(record: Dict, previous: Dict) -> Dict:
    """A record kept from an earlier run, with that run's date, machine and
    command where it has none of its own, so each record says when and where it
    was measured."""
    return {
        **record,
        "date": record.get("date", previous.get("date")),
        "machine": record.get("machine", previous.get("machine")),
        "measured_by": record.get("measured_by", previous.get("command")),
    }


def main(argv: Sequence[str] = None) -> Dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True)
    p.add_argument("--model", action="append", default=[], help="ROLE=TRAINING_DIR (teacher, student, baseline)")
    p.add_argument("--baseline-from", type=Path, help="an int8_granularity JSON with the baseline's rows")
    p.add_argument("--baseline-train", type=Path, help="the baseline's training record (steps, train_seconds, command, machine)")
    p.add_argument("--keep", action="append", default=[], help="ROLE of --dataset whose record in --output stays as measured")
    p.add_argument("--corpus", default="corpus")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--output", default="metrics/distillation.json")
    args = p.parse_args(argv)
    data = str(Path(args.corpus) / args.dataset / "test.spacy")
    out = Path(args.output)
    previous = json.loads(out.read_text()) if out.exists() else {"records": []}
    measured = {item.partition("=")[0] for item in args.model} | ({"baseline"} if args.baseline_from else set())
    kept_roles = [r for r in previous["records"] if r["dataset"] == args.dataset and r["role"] in args.keep]
    if set(args.keep) & measured or len(kept_roles) < len(set(args.keep)):
        p.error(f"--keep names a role measured now or missing from {out}: {args.keep}")
    records: List[Dict] = []
    for item in args.model:
        role, _, train_dir = item.partition("=")
        records.append(model_record(args.dataset, role, Path(train_dir), data, args.threads))
        r = records[-1]
        print(
            f"{args.dataset} {role:8s} F1 {r['test_f1']:.2f} (onnx-int8 {r['test_f1_onnx_int8']:.2f}) {r['words_per_s']:.0f} words/s",
            flush=True,
        )
    if args.baseline_from:
        student = next((r for r in records if r["role"] == "student"), None)
        if student is None:
            p.error("--baseline-from needs a --model student=... (the baseline is its recipe on gold alone)")
        records.append(
            baseline_record(
                args.dataset,
                args.baseline_from,
                args.baseline_train,
                student["encoder"],
                str(Path(student["model"]) / "model-best"),
            )
        )
    result = {**header("distillation", argv), "threads": args.threads}
    for r in records:
        r.setdefault("date", result["date"])
        r.setdefault("machine", result["machine"])
    order = {"teacher": 0, "student": 1, "baseline": 2}
    these = sorted(records + [_dated(r, previous) for r in kept_roles], key=lambda r: order.get(r["role"], 3))
    others = [_dated(r, previous) for r in previous["records"] if r["dataset"] != args.dataset]
    result["records"] = others + these
    return write(result, args.output)


if __name__ == "__main__":
    main()
