"""Smoke test: the whole `spacy project run all` workflow on real data, cut
down with var overrides (tiny BERT, 100 sentences per split (the least `debug data` accepts), a few steps)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import srsly

from ..util import REPO, toy_sentences, write_conll


def _project_copy(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "project.yml", project / "project.yml")
    shutil.copytree(REPO / "configs", project / "configs")
    shutil.copytree(REPO / "spacy_bert_ner", project / "spacy_bert_ner")  # listed in deps
    return project


def _run(args, cwd: Path, env_extra=None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["HF_HUB_OFFLINE"] = "1"
    env["OMP_NUM_THREADS"] = "1"  # a tiny model; don't oversubscribe a small machine
    env.update(env_extra or {})
    result = subprocess.run([sys.executable, "-m", "spacy", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


@pytest.mark.slow
@pytest.mark.parametrize(
    "config,head,combine",
    [
        ("bert-ner-cpu.cfg", "bert_ner", "average"),
        ("ner-cpu.cfg", "ner", "average"),
        ("bert-ner-cpu.cfg", "bert_ner", "ensemble"),
    ],
)
def test_all_workflow_on_wikiann(tmp_path, tiny_bert, shared_data, config, head, combine):
    """The whole workflow with either NER head, the members averaged or kept as an ensemble: each is one var away."""
    project = _project_copy(tmp_path)
    _run(
        [
            "project",
            "run",
            "all",
            ".",
            "--vars.config",
            config,
            "--vars.transformer",
            str(tiny_bert),
            "--vars.max_steps",
            "6",
            "--vars.eval_frequency",
            "3",
            "--vars.limit",
            "100",
            "--vars.package_name",
            "smoke_test",
            "--vars.combine",
            combine,
        ],
        project,
        {"SPACY_BERT_NER_DATA": str(shared_data)},
    )
    for name in ("train", "dev", "test"):
        assert (project / "corpus" / "wikiann-en" / f"{name}.spacy").exists()
    metrics = srsly.read_json(project / "training" / "wikiann-en" / "test-metrics.json")
    assert 0.0 <= metrics["ents_f"] <= 1.0
    assert metrics["docs"] == 100
    assert metrics["steps"] == 6 and metrics["train_seconds"] is not None
    assert metrics["transformer"] == str(tiny_bert)
    if combine == "ensemble":
        assert metrics["pipeline"] == [head] and metrics["ensemble_members"] == 2
    else:
        assert metrics["pipeline"] == ["transformer", head] and metrics["ensemble_members"] == 1
    assert metrics["config"] == config and combine in metrics["command"]
    assert (project / "training" / "wikiann-en" / "test-metrics.md").read_text().startswith("###")
    calibration = srsly.read_json(project / "training" / "wikiann-en" / "calibration.json")
    if head == "bert_ner":
        assert calibration["n_entities"] == sum(b["count"] for b in calibration["bins"])
    else:
        assert "no bert_ner component" in calibration["skipped"]
    assert (project / "training" / "wikiann-en" / "report" / "report.md").exists()
    wheel = project / "packages" / "en_smoke_test-0.1.0" / "dist" / "en_smoke_test-0.1.0-py3-none-any.whl"
    assert wheel.exists()
    assert list(wheel.parent.glob("spacy_bert_ner-*.whl"))  # the code the model names, beside it


@pytest.mark.slow
def test_distillation_workflow_on_wikiann(tmp_path, tiny_bert, tiny_mpnet, shared_data):
    """The distillation workflow: an MPNet teacher (no token types) taught into the BERT student, then evaluated and packaged."""
    project = _project_copy(tmp_path)
    tiny = ["--vars.max_steps", "6", "--vars.teacher_steps", "6", "--vars.eval_frequency", "3", "--vars.limit", "100"]
    models = [
        "--vars.transformer",
        str(tiny_bert),
        "--vars.teacher_transformer",
        str(tiny_mpnet),
        "--vars.package_name",
        "smoke_distilled",
    ]
    _run(
        ["project", "run", "distillation", ".", *tiny, *models, "--vars.distill_weight", "0.7"],
        project,
        {"SPACY_BERT_NER_DATA": str(shared_data)},
    )
    teacher = srsly.read_json(project / "training" / "wikiann-en-teacher" / "test-metrics.json")
    assert teacher["transformer"] == str(tiny_mpnet) and teacher["docs"] == 100
    student = srsly.read_json(project / "training" / "wikiann-en" / "test-metrics.json")
    assert student["transformer"] == str(tiny_bert) and student["steps"] == 6
    summary = srsly.read_json(project / "training" / "wikiann-en" / "members.json")
    assert summary["distillation"]["weight"] == pytest.approx(0.7) and summary["distillation"]["docs"]["labelled"] == 100
    assert summary["distillation"]["teacher"] == "training/wikiann-en-teacher/model-best"
    wheel = project / "packages" / "en_smoke_distilled-0.1.0" / "dist" / "en_smoke_distilled-0.1.0-py3-none-any.whl"
    assert wheel.exists()


def test_default_config_is_one_of_the_two_heads():
    project = srsly.read_yaml(REPO / "project.yml")
    assert project["vars"]["config"] in ("bert-ner-cpu.cfg", "ner-cpu.cfg")
    assert "calibrate" in project["workflows"]["all"]


@pytest.mark.slow
def test_conll_dataset_prepares_your_own_files(tmp_path):
    project = _project_copy(tmp_path)
    for name, seed in (("train", 1), ("dev", 2), ("test", 3)):
        write_conll(project / "assets" / f"{name}.conll", toy_sentences(12, seed), sep=" ")
    _run(["project", "run", "get-data", ".", "--vars.dataset", "conll"], project)
    _run(["project", "run", "convert", ".", "--vars.dataset", "conll"], project)
    from spacy_bert_ner.formats.docbin import read_docbin

    assert len(list(read_docbin(project / "corpus" / "conll" / "dev.spacy"))) == 12
