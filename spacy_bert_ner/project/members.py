"""Training several members at once: pipelines fine-tuned side by side from the
same start, each reading the training data in its own order, then combined
into one pipeline by the mean of their weights (``combine="average"``) or as a
prediction-time ensemble (``combine="ensemble"``), both from
``spacy_bert_ner.training.combine``.

The members share the config and ``[training] seed`` (so the same initial
head). The config's training reader is ``spacy_bert_ner.ShuffledCorpus.v1``,
and member ``k`` runs with ``--corpora.train.shuffle_seed k``: member 0 reads
the file's order, so one member is exactly ``spacy train`` with the config as
it is. spaCy's ``spacy train`` has no notion of several runs, hence this. On a CPU
the members run at once with the cores split between them: one transformer
fine-tune does not keep two cores busy, so two members cost little more wall
time than one.

An ensemble costs one model per member at prediction time; the average
costs one model.

A member that exits cleanly gets ``member-K/finished.json`` with its command
line and the checksums of the files it names. Running the same training
again (same command, same files) keeps such a member instead of training
it anew, so a run stopped part way loses only the unfinished members, and
``--members 3`` after ``--members 2`` (same config and overrides) trains only
``member-2``. A member whose command or data changed, or that never
finished, trains again from the start.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import srsly

from spacy_bert_ner.errors import InputError
from spacy_bert_ner.evaluation.evaluate import load_train_log, train_log_summary
from spacy_bert_ner.project.datasets import sha256_of
from spacy_bert_ner.training.combine import average_pipelines, ensemble_pipelines

SHUFFLED_READER = "spacy_bert_ner.ShuffledCorpus.v1"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
COMBINE = ("average", "ensemble")
SUMMARY_FILE = "members.json"
FINISHED_FILE = "finished.json"


def member_command(config: Path, member_dir: Path, shuffle_seed: int, overrides: Sequence[str], gpu_id: int) -> List[str]:
    """The ``spacy train`` command line of one member (the config's own
    ``shuffle_seed`` for member 0, ``--corpora.train.shuffle_seed k`` for the others)."""
    command = [
        sys.executable,
        "-m",
        "spacy",
        "train",
        str(config),
        "--output",
        str(member_dir),
        "--gpu-id",
        str(gpu_id),
        *overrides,
        "--paths.train_log",
        str(member_dir / "train-log.jsonl"),
    ]
    if shuffle_seed:
        command += ["--corpora.train.shuffle_seed", str(shuffle_seed)]
    return command


def _training_record(member_dir: Path, command: Sequence[str], checksums: Optional[Dict[str, str]] = None) -> Dict:
    """What a member's training is: its command line without the Python
    executable (which may differ between environments), and the sha256 of each
    file the command names outside the member's directory (the config, the
    corpora), so changed data is another training under the same command.
    ``checksums`` (path → sha256) is filled and reused, so the members of one
    run hash each shared file once."""
    checksums = {} if checksums is None else checksums
    files = {}
    for part in command[1:]:
        path = Path(part)
        if path.is_file() and member_dir.resolve() not in path.resolve().parents:
            if part not in checksums:
                checksums[part] = sha256_of(path)
            files[part] = checksums[part]
    return {"command": list(command[1:]), "files": files}


def finished_member(member_dir: Path, command: Sequence[str], checksums: Optional[Dict[str, str]] = None) -> bool:
    """Whether ``member_dir`` holds a member that finished training with
    ``command`` on the same files (:func:`_training_record`) and still has its
    ``model-best``."""
    marker = member_dir / FINISHED_FILE
    if not marker.is_file() or not (member_dir / "model-best").is_dir():
        return False
    try:
        return srsly.read_json(marker) == _training_record(member_dir, command, checksums)
    except ValueError:
        return False


def schedule_overrides(max_steps: int = 0, eval_frequency: int = 0) -> List[str]:
    """``spacy train`` overrides for the schedule's length (``max_steps``: the
    learning-rate schedule's ``total_steps``, which the configs' ``[training]
    max_steps`` follows) and the dev evaluation interval; 0 keeps the config's
    own value, so a workflow that leaves them at 0 trains exactly the config."""
    for name, value in (("max_steps", max_steps), ("eval_frequency", eval_frequency)):
        if value < 0:
            raise ValueError(f"{name} must be 0 (the config's) or positive, got {value}")
    overrides = []
    if max_steps:
        overrides += ["--training.optimizer.learn_rate.total_steps", str(max_steps)]
    if eval_frequency:
        overrides += ["--training.eval_frequency", str(eval_frequency)]
    return overrides


def check_members(config: Path, members: int, combine: str) -> None:
    """What training ``members`` combined by ``combine`` needs, said before
    anything trains: at least one member, a known way to combine them, and
    for several a training reader with a ``shuffle_seed``."""
    if members < 1:
        raise ValueError(f"members must be at least 1, got {members}")
    if combine not in COMBINE:
        raise ValueError(f"combine must be one of {', '.join(COMBINE)}, got {combine!r}")
    if members < 2:
        return
    from spacy.util import load_config

    reader = (load_config(config, interpolate=False).get("corpora", {}).get("train") or {}).get("@readers")
    if reader != SHUFFLED_READER:
        raise ValueError(
            f'{config}: training {members} members needs [corpora.train] @readers = "{SHUFFLED_READER}" '
            f"(each member reads the data with its own shuffle_seed), got {reader!r}"
        )


def member_env(members: int, gpu_id: int, environ: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The members' environment: on CPU, each gets an equal share of the cores as
    torch threads, unless the thread variables are set already."""
    env = dict(os.environ if environ is None else environ)
    if gpu_id < 0:
        threads = str(max(1, (os.cpu_count() or 1) // members))
        for name in THREAD_VARIABLES:
            env.setdefault(name, threads)
    return env


def train_members(
    config: Union[str, Path],
    output_dir: Union[str, Path],
    members: int = 2,
    overrides: Sequence[str] = (),
    gpu_id: int = -1,
    log: Callable[[str], None] = print,
    combine: str = "average",
) -> Path:
    """Train ``members`` pipelines at once into ``OUTPUT/member-K`` and save the
    average of their ``model-best`` weights (``combine="average"``) or their
    ensemble (``combine="ensemble"``) as ``OUTPUT/model-best`` (a copy for one
    member), with ``OUTPUT/members.json`` describing the members. Raises
    ``RuntimeError`` naming the member's log when a member fails (the others
    are stopped). Members that finished with the same command before are
    kept, not trained again (:func:`finished_member`)."""
    config, output_dir = Path(config), Path(output_dir)
    if not config.is_file():
        raise ValueError(f"{config}: config file not found")
    check_members(config, members, combine)
    output_dir.mkdir(parents=True, exist_ok=True)
    member_dirs = [output_dir / f"member-{k}" for k in range(members)]
    commands = [member_command(config, member_dir, k, overrides, gpu_id) for k, member_dir in enumerate(member_dirs)]
    checksums: Dict[str, str] = {}  # the files as the members read them, hashed once
    to_train = [k for k in range(members) if not finished_member(member_dirs[k], commands[k], checksums)]
    records = {k: _training_record(member_dirs[k], commands[k], checksums) for k in to_train}
    kept = [k for k in range(members) if k not in records]
    if kept:
        log(f"Keeping finished member(s) {', '.join(map(str, kept))} (same command and files, {FINISHED_FILE} present)")
    env = member_env(max(1, len(to_train)), gpu_id)
    start = time.time()
    running = []
    try:
        for k in to_train:
            member_dirs[k].mkdir(parents=True, exist_ok=True)
            (member_dirs[k] / FINISHED_FILE).unlink(missing_ok=True)
            out = open(member_dirs[k] / "train.log", "w")
            running.append((k, subprocess.Popen(commands[k], stdout=out, stderr=subprocess.STDOUT, env=env), out))
        if to_train:
            logs = ", ".join(str(member_dirs[k] / "train.log") for k in to_train)
            log(f"Training {len(to_train)} member(s) at once; their logs: {logs}")
        pending = list(running)
        while pending:
            for k, process, out in list(pending):
                code = process.poll()
                if code is None:
                    continue
                pending.remove((k, process, out))
                if code != 0:
                    tail = "".join((member_dirs[k] / "train.log").read_text(errors="replace").splitlines(True)[-20:])
                    raise RuntimeError(
                        f"member {k} failed (exit code {code}); the end of {member_dirs[k] / 'train.log'}:\n{tail}"
                    )
                srsly.write_json(member_dirs[k] / FINISHED_FILE, records[k])
                log(f"member {k} done after {time.time() - start:.0f} s")
            time.sleep(1)
    finally:
        for _, process, out in running:
            if process.poll() is None:
                process.terminate()
                process.wait()
            out.close()
    seconds = time.time() - start
    best = [member_dir / "model-best" for member_dir in member_dirs]
    if members == 1:
        shutil.rmtree(output_dir / "model-best", ignore_errors=True)
        shutil.copytree(best[0], output_dir / "model-best")
    else:
        shutil.rmtree(output_dir / "model-best", ignore_errors=True)
        combined = average_pipelines if combine == "average" else ensemble_pipelines
        combined(best, output_dir / "model-best")
    summary = {
        "combine": combine if members > 1 else None,
        "kept": kept,
        "members": [_member_summary(member_dir, k) for k, member_dir in enumerate(member_dirs)],
        "seconds": round(seconds, 1),
        "config": str(config),
        "overrides": list(overrides),
    }
    srsly.write_json(output_dir / SUMMARY_FILE, summary)
    return output_dir / "model-best"


def member_logs(summary: Union[str, Path]) -> List[Path]:
    """The training logs of the members listed in a ``members.json`` (their
    directories are relative to it)."""
    summary = Path(summary)
    try:
        members = srsly.read_json(summary)["members"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(summary, None, f"not a members.json written by spacy-bert-ner train ({type(error).__name__}: {error})")
    return [summary.parent / member["path"] / "train-log.jsonl" for member in members]


def _member_summary(member_dir: Path, shuffle_seed: int) -> Dict:
    log = load_train_log(member_dir / "train-log.jsonl")
    return {"path": member_dir.name, "shuffle_seed": shuffle_seed, **(train_log_summary(log) if log else {})}
