"""docs/logging.md: every logger block on the page is valid, and a chain logs."""
import io
import re

import pytest
import spacy
import srsly
from spacy.util import registry
from thinc.api import Config

from ..util import REPO

DOC = REPO / "docs" / "logging.md"


def ini_blocks():
    return re.findall(r"```ini\n(.*?)```", DOC.read_text(encoding="utf8"), flags=re.S)


def load_block(block: str, train_log: str) -> Config:
    """A block of the page in a minimal config: the paths it refers to and its parent section."""
    return Config().from_str(f'[paths]\ntrain_log = "{train_log}"\n\n[training]\n\n{block}')


def test_the_page_has_the_three_setups():
    loggers = [re.findall(r'@loggers = "([^"]+)"', b) for b in ini_blocks()]
    assert loggers == [
        ["spacy.ChainLogger.v1", "spacy_bert_ner.JsonlLogger.v1", "spacy.MLflowLogger.v2"],
        ["spacy.ChainLogger.v1", "spacy_bert_ner.JsonlLogger.v1", "spacy.WandbLogger.v5"],
        ["spacy.ChainLogger.v1", "spacy_bert_ner.JsonlLogger.v1", "spacy.ConsoleLogger.v3"],
    ]


@pytest.mark.parametrize("name", ["spacy.ChainLogger.v1", "spacy.MLflowLogger.v2", "spacy.WandbLogger.v5", "spacy.ConsoleLogger.v3", "spacy_bert_ner.JsonlLogger.v1"])
def test_loggers_are_registered(name):
    # registry.get fills spaCy's lazily populated registry first; spacy-loggers' come from entry points
    assert callable(registry.get("loggers", name))


@pytest.mark.parametrize("index", [0, 1, 2])
def test_blocks_match_the_logger_signatures(index, tmp_path):
    """Validated against the registered functions without calling them: no mlflow or wandb needed."""
    config = load_block(ini_blocks()[index], str(tmp_path / "log.jsonl"))
    filled = registry.fill(config, validate=True)
    assert filled["training"]["logger"]["@loggers"] == "spacy.ChainLogger.v1"


def test_chain_of_jsonl_and_console_logs(tmp_path):
    log_path = tmp_path / "train-log.jsonl"
    config = load_block(ini_blocks()[2], str(log_path))
    setup = registry.resolve(config, validate=True)["training"]["logger"]
    nlp = spacy.blank("en")
    nlp.add_pipe("ner")
    stdout = io.StringIO()
    log_step, finalize = setup(nlp, stdout, io.StringIO())
    info = {
        "epoch": 1, "step": 200, "score": 0.5, "other_scores": {"ents_f": 0.5, "ents_p": 0.25, "ents_r": 0.75, "ents_per_type": {}},
        "losses": {"ner": 12.5}, "checkpoints": [(0.5, 200)], "seconds": 30, "words": 4000,
    }
    log_step(info)
    log_step(None)
    finalize()
    records = list(srsly.read_jsonl(log_path))
    assert records == [
        {"step": 200, "epoch": 1, "words": 4000, "seconds": 30, "score": 0.5, "losses": {"ner": 12.5},
         "scores": {"ents_f": 0.5, "ents_p": 0.25, "ents_r": 0.75}}
    ]
    table = stdout.getvalue()
    assert table.count("LOSS NER") == 1  # one console table: the JSONL logger's own is off
    assert "12.50" in table


def test_the_merge_recipe_replaces_the_logger(tmp_path, monkeypatch):
    """The page's Python recipe, run on a copy of configs/ner-cpu.cfg."""
    import shutil

    (tmp_path / "configs").mkdir()
    shutil.copy(REPO / "configs" / "ner-cpu.cfg", tmp_path / "configs" / "ner-cpu.cfg")
    (tmp_path / "logger-mlflow.cfg").write_text(ini_blocks()[0], encoding="utf8")
    code = re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf8"), flags=re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(DOC), "exec"), {})
    merged = Config().from_disk(tmp_path / "configs" / "ner-cpu-mlflow.cfg", interpolate=False)
    logger = merged["training"]["logger"]
    assert logger["@loggers"] == "spacy.ChainLogger.v1" and "path" not in logger
    assert logger["logger1"]["path"] == "${paths.train_log}"
    assert logger["logger2"]["@loggers"] == "spacy.MLflowLogger.v2"
    assert merged["training"]["optimizer"]["learn_rate"]["total_steps"] == 2500  # the rest is kept
    registry.fill({"logger": logger}, validate=True)
