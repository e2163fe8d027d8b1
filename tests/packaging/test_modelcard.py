"""The model card: rendered from meta, config and test metrics; it is the built wheel's README."""

import zipfile

import pytest
import srsly

from spacy_bert_ner.packaging.modelcard import model_card, render_model_card, transformer_license
from spacy_bert_ner.project.datasets import DATASET_CARDS, dataset_card, detect_dataset

META = {
    "lang": "en",
    "name": "bert_ner",
    "version": "0.1.0",
    "spacy_version": ">=3.8.0,<3.9.0",
    "pipeline": ["transformer", "ner"],
    "labels": {"transformer": [], "ner": ["LOC", "ORG", "PER"]},
    "license": "MIT",
}
CONFIG = {
    "paths": {
        "train": "corpus/wikiann-en/train.spacy",
        "dev": "corpus/wikiann-en/dev.spacy",
        "transformer": "sentence-transformers/all-MiniLM-L6-v2",
    },
    "components": {
        "transformer": {"model": {"get_spans": {"window": 128, "stride": 96}}},
        "ner": {"model": {"tok2vec": {"@architectures": "spacy_bert_ner.CasedListener.v1", "features": {"width": 64}}}},
    },
}


def _metrics(per_type, data="corpus/wikiann-en/test.spacy", transformer="sentence-transformers/all-MiniLM-L6-v2"):
    return {
        "ents_p": 0.81,
        "ents_r": 0.79,
        "ents_f": 0.8,
        "ents_per_type": per_type,
        "transformer": transformer,
        "steps": 2500,
        "train_seconds": 3600.0,
        "machine": "Linux x86_64, 2 CPU cores",
        "date": "2025-01-01",
        "data": data,
        "docs": 10000,
        "words": 80000,
        "n_gold": sum(s["support"] for s in per_type.values()),
    }


def test_wikiann_minilm_card():
    per_type = {
        "PER": {"p": 0.9, "r": 0.9, "f": 0.9, "support": 4600},
        "ORG": {"p": 0.7, "r": 0.7, "f": 0.7, "support": 4700},
        "LOC": {"p": 0.8, "r": 0.8, "f": 0.8, "support": 4900},
    }
    card = render_model_card(META, _metrics(per_type), CONFIG, do_lower_case=True, dataset=DATASET_CARDS["wikiann-en"])
    assert card.startswith("# en_bert_ner 0.1.0")
    assert "| **Transformer licence** | Apache-2.0 |" in card
    assert "WikiANN English" in card and "silver" in card
    assert "| PER | 90.00 | 90.00 | 90.00 | 4600 |" in card
    assert "| **overall** | **81.00** | **79.00** | **80.00** | 14200 |" in card
    assert "Uncased backbone" in card and "casing features" in card
    assert 'spacy.load("en_bert_ner")' in card and "pip install en_bert_ner-0.1.0-py3-none-any.whl" in card
    assert "spacy-bert-ner predict en_bert_ner" in card
    assert "`LOC`, `ORG`, `PER`" in card
    assert "2500 optimizer steps in 60 min" in card
    assert "fewer than" not in card  # no rare label
    assert "GMB" not in card and "artefacts" not in card
    assert "_.confidence" not in card  # spaCy's ner gives none


def test_bert_ner_card_shows_confidences():
    meta = dict(META, pipeline=["transformer", "bert_ner"], labels={"transformer": [], "bert_ner": ["LOC", "ORG", "PER"]})
    per_type = {"PER": {"p": 0.9, "r": 0.9, "f": 0.9, "support": 10}}
    card = render_model_card(meta, _metrics(per_type), CONFIG, do_lower_case=True)
    assert "ent._.confidence" in card and 'doc.spans["bert_ner"]' in card
    assert "`LOC`, `ORG`, `PER`" in card
    assert "temperature" not in card  # the default, 1.0, goes unmentioned
    config = dict(CONFIG, components=dict(CONFIG["components"], bert_ner={"factory": "bert_ner", "temperature": 1.734}))
    assert "computed at temperature 1.73" in render_model_card(meta, _metrics(per_type), config, do_lower_case=True)


def test_gmb_card_warns_about_rare_classes_and_cased_backbone():
    per_type = {
        label: {"p": 0.5, "r": 0.5, "f": 0.5, "support": n}
        for label, n in (("geo", 7000), ("per", 3000), ("art", 40), ("eve", 30), ("nat", 20))
    }
    config = {"paths": {"train": "corpus/gmb/train.spacy", "transformer": "bert-base-cased"}}
    card = render_model_card(
        META,
        _metrics(per_type, "corpus/gmb/test.spacy", "bert-base-cased"),
        config,
        do_lower_case=False,
        dataset=dataset_card("corpus/gmb/test.spacy"),
    )
    assert "GMB" in card and "art (artefacts), eve (events) and nat (natural phenomena)" in card
    assert "(`art`, `eve`, `nat`)" in card
    assert "Uncased" not in card
    assert "https://huggingface.co/bert-base-cased" in card


def test_helpers():
    assert detect_dataset("corpus/gmb/test.spacy") == "gmb"
    assert detect_dataset(None, "corpus/wikiann-en/train.spacy") == "wikiann-en"
    assert detect_dataset("corpus/conll/test.spacy") is None
    assert dataset_card("corpus/gmb/test.spacy") is DATASET_CARDS["gmb"] and dataset_card("x.spacy") is None
    assert transformer_license("sentence-transformers/all-MiniLM-L6-v2") == "Apache-2.0"
    assert transformer_license("minilm") == "Apache-2.0"
    assert "hub page" in transformer_license("roberta-base")
    assert transformer_license(None) == "unknown"


def test_card_of_a_trained_pipeline(trained_ner, toy_corpus, tmp_path):
    import spacy

    from spacy_bert_ner.evaluation.evaluate import evaluate

    metrics = evaluate(spacy.load(trained_ner), toy_corpus / "test.spacy")
    srsly.write_json(tmp_path / "metrics.json", metrics)
    card = model_card(trained_ner, tmp_path / "metrics.json", "toy_ner", "1.2.3")
    assert card.startswith("# en_toy_ner 1.2.3")
    assert "Uncased backbone" in card  # the tiny BERT's tokenizer lower-cases
    assert "| **overall** |" in card and "| PER |" in card


@pytest.mark.slow
def test_card_is_the_wheel_readme(trained_ner, toy_corpus, tmp_path):
    """`package --metrics` puts the card next to setup.py, into the wheel's
    METADATA (long description) and into the packaged model directory."""
    from typer.testing import CliRunner

    from spacy_bert_ner.cli import app

    runner = CliRunner()
    metrics = tmp_path / "metrics.json"
    result = runner.invoke(app, ["evaluate", str(trained_ner), str(toy_corpus / "test.spacy"), "--output", str(metrics)])
    assert result.exit_code == 0, result.output
    before = sorted(p.name for p in trained_ner.iterdir())
    result = runner.invoke(
        app,
        [
            "package",
            str(trained_ner),
            str(tmp_path / "pkg"),
            "--name",
            "toy_ner",
            "--version",
            "0.0.1",
            "--metrics",
            str(metrics),
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in trained_ner.iterdir()) == before  # the pipeline directory is untouched
    pkg = tmp_path / "pkg" / "en_toy_ner-0.0.1"
    card = (pkg / "README.md").read_text(encoding="utf8")
    assert card.startswith("# en_toy_ner 0.0.1")
    wheel = zipfile.ZipFile(next((pkg / "dist").glob("en_toy_ner-*.whl")))
    names = wheel.namelist()
    assert wheel.read("en_toy_ner/en_toy_ner-0.0.1/README.md").decode("utf8") == card
    metadata = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode("utf8")
    assert "# en_toy_ner 0.0.1" in metadata and "## Known limitations" in metadata
    assert not list((tmp_path / "pkg").glob(".staging-*"))


def test_card_shows_runtimes_and_their_measured_speed():
    speed = {
        "rows": {
            "ours/fp32": {"words_per_s": 1500.4},
            "ours/onnx-int8": {"words_per_s": 4100.0},
            "hf/fp32": {"words_per_s": 1400},
        },
        "sentences": 2000,
        "batch_size": 64,
        "threads": 2,
        "cpu": {"model": "Test CPU"},
        "date": "2026-01-01",
    }
    card = render_model_card(
        META, _metrics({"PER": {"p": 0.9, "r": 0.9, "f": 0.9, "support": 10}}), CONFIG, do_lower_case=True, speed=speed
    )
    assert 'load("en_bert_ner", runtime="onnx-int8")' in card
    assert "| fp32 | 1,500 |" in card and "| onnx-int8 | 4,100 |" in card and "hf/fp32" not in card
    assert "Test CPU" in card
    assert "| runtime | words/s |" not in render_model_card(META, _metrics({}), CONFIG, do_lower_case=True)
