"""Distillation: a student pipeline trained on a teacher's soft tag
probabilities mixed with the gold tags.

``distill`` runs the teacher over the training Docs (and optional unlabelled
text) once, writing ``OUTPUT/teacher-corpus.spacy``, then trains the student
config on it with ``spacy train`` (through :func:`train_members`: one
member, or several from the same start combined like ``spacy-bert-ner
train``'s), so ``OUTPUT`` looks like any ``spacy-bert-ner train`` output:
``model-best``, ``member-K/``, ``members.json`` (with a ``distillation``
record added). The
teacher corpus is kept with a record of what it was made from and reused when
the teacher and the data are unchanged, so a rerun after a failed training
does not pay for the teacher again.
"""

import time
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence, Union

import srsly

from spacy_bert_ner.pipeline.bert_ner import bert_ner_name, check_distillation
from spacy_bert_ner.project.datasets import sha256_of
from spacy_bert_ner.project.members import SUMMARY_FILE, check_members, train_members

CORPUS_FILE = "teacher-corpus.spacy"
CORPUS_RECORD = "teacher-corpus.json"


def teacher_fingerprint(teacher: Union[str, Path]) -> Dict[str, str]:
    """What identifies a teacher: its path, and the sha256 of its weights' files
    when it is a directory (a package name is its name)."""
    path = Path(teacher)
    if not path.is_dir():
        return {"teacher": str(teacher)}
    weights = sorted(p for p in path.rglob("model") if p.is_file())
    return {"teacher": str(path), **{str(p.relative_to(path)): sha256_of(p) for p in weights}}


def teacher_corpus(
    teacher: Union[str, Path],
    train: Union[str, Path],
    output_dir: Union[str, Path],
    unlabelled: Optional[Union[str, Path]] = None,
    gpu_id: int = -1,
    batch_size: int = 64,
    log: Callable[[str], None] = print,
    teacher_runtime: Optional[str] = None,
) -> Path:
    """``OUTPUT/teacher-corpus.spacy``, written by the teacher unless one made
    from the same teacher, runtime and data is there already. ``teacher_runtime``
    runs the teacher's transformer with that inference runtime
    (:mod:`spacy_bert_ner.runtime`; ``onnx`` gives fp32 probabilities faster on
    a CPU); None keeps the teacher's own."""
    import spacy

    from spacy_bert_ner import runtime
    from spacy_bert_ner.formats.docbin import read_docbin
    from spacy_bert_ner.training.distillation import write_teacher_corpus

    output_dir = Path(output_dir)
    corpus, record_path = output_dir / CORPUS_FILE, output_dir / CORPUS_RECORD
    made_from = {
        **teacher_fingerprint(teacher),
        "train": str(train),
        "train_sha256": sha256_of(train),
        "unlabelled": str(unlabelled) if unlabelled else None,
        "unlabelled_sha256": sha256_of(unlabelled) if unlabelled else None,
        **({"teacher_runtime": teacher_runtime} if teacher_runtime else {}),
    }
    if corpus.exists() and record_path.exists() and srsly.read_json(record_path).get("made_from") == made_from:
        log(f"{corpus}: made from the same teacher and data, reused")
        return corpus
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    nlp = runtime.load(teacher, teacher_runtime)
    labels = set(nlp.get_pipe(bert_ner_name(nlp)).labels)
    gold = {ent.label_ for doc in read_docbin(train) for ent in doc.ents}
    if not gold <= labels:
        raise ValueError(
            f"the teacher {teacher} has no label {', '.join(sorted(gold - labels))} of the training data {train} "
            f"(its labels: {', '.join(sorted(labels))}): train the teacher on the same labels"
        )
    start = time.time()
    counts = write_teacher_corpus(nlp, train, corpus, unlabelled, batch_size, log)
    srsly.write_json(record_path, {"made_from": made_from, "counts": counts, "seconds": round(time.time() - start, 1)})
    if gpu_id >= 0:  # the student trains in another process on the same GPU: give the teacher's memory back
        import gc

        import torch

        del nlp
        gc.collect()
        torch.cuda.empty_cache()
    return corpus


def check_student_config(config: Union[str, Path]) -> None:
    """What the student's training needs of its config, said before the teacher
    runs: a ``bert_ner`` component with a ``distillation`` block, and a
    training reader that keeps the reference Docs' user data (no
    ``max_length`` splitting, no augmenter)."""
    from spacy.util import load_config

    cfg = load_config(config, interpolate=False)
    component = (cfg.get("components") or {}).get("bert_ner") or {}
    if component.get("factory") != "bert_ner":
        raise ValueError(f"{config}: the student needs a component named bert_ner made by the bert_ner factory")
    if "distillation" not in component:
        raise ValueError(
            f"{config}: add [components.bert_ner.distillation] (weight, temperature) to the student's config: "
            "distill sets them there (configs/bert-ner-cpu.cfg has the block)"
        )
    reader = (cfg.get("corpora") or {}).get("train") or {}
    if reader.get("max_length") or reader.get("augmenter"):
        raise ValueError(
            f"{config}: [corpora.train] max_length and augmenter rebuild the reference Docs, which drops the teacher's "
            "probabilities: set max_length = 0 and augmenter = null for distillation"
        )


def distill(
    teacher: Union[str, Path],
    config: Union[str, Path],
    output_dir: Union[str, Path],
    train: Union[str, Path],
    unlabelled: Optional[Union[str, Path]] = None,
    weight: Optional[float] = None,
    temperature: Optional[float] = None,
    overrides: Sequence[str] = (),
    gpu_id: int = -1,
    log: Callable[[str], None] = print,
    teacher_runtime: Optional[str] = None,
    members: int = 1,
    combine: str = "average",
) -> Path:
    """Train the student ``config`` into ``OUTPUT`` on the teacher's
    probabilities for ``train`` (a DocBin) and ``unlabelled`` (plain text, one
    document per line). ``weight`` and ``temperature`` override the config's
    ``[components.bert_ner.distillation]``. Other ``spacy train`` overrides
    (``--paths.dev``, ``--paths.transformer`` ...) pass through; the training
    corpus is the teacher's, run with ``teacher_runtime`` (:func:`teacher_corpus`).
    ``members`` students train at once, each in its own order of that corpus,
    and are combined by ``combine`` (:func:`train_members`)."""
    settings = {k: v for k, v in (("weight", weight), ("temperature", temperature)) if v is not None}
    check_distillation({"weight": 0.5, "temperature": 2.0, **settings})
    if not Path(config).is_file():
        raise ValueError(f"{config}: config file not found")
    check_student_config(config)
    check_members(Path(config), members, combine)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    corpus = teacher_corpus(teacher, train, output_dir, unlabelled, gpu_id, log=log, teacher_runtime=teacher_runtime)
    overrides = [*overrides, "--paths.train", str(corpus)]
    for key, value in settings.items():
        overrides += [f"--components.bert_ner.distillation.{key}", str(value)]
    best = train_members(config, output_dir, members, overrides, gpu_id, log=log, combine=combine)
    summary = srsly.read_json(output_dir / SUMMARY_FILE)
    summary["distillation"] = {
        "teacher": str(teacher),
        "train": str(train),
        "unlabelled": str(unlabelled) if unlabelled else None,
        **({"teacher_runtime": teacher_runtime} if teacher_runtime else {}),
        "docs": srsly.read_json(output_dir / CORPUS_RECORD)["counts"],
        **settings,
    }
    srsly.write_json(output_dir / SUMMARY_FILE, summary)
    return best
