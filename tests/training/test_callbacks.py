"""The memory-releasing training callback and what it calls."""
import pytest
from spacy.util import registry

from spacy_bert_ner.runtime import memory


def test_release_memory_calls_malloc_trim_on_glibc():
    assert memory.release_memory() is True  # the CI machines run glibc


def test_the_callback_releases_every_n_steps(monkeypatch):
    calls = []
    monkeypatch.setattr("spacy_bert_ner.training.callbacks.release_memory", lambda: calls.append(1) or True)
    before_update = registry.callbacks.get("spacy_bert_ner.release_memory.v1")(every=50)
    for step in range(0, 201):
        before_update(None, {"step": step, "epoch": 0})
    assert len(calls) == 5  # steps 0, 50, 100, 150, 200
    with pytest.raises(ValueError, match="every must be at least 1"):
        registry.callbacks.get("spacy_bert_ner.release_memory.v1")(every=0)


def test_the_configs_release_memory_while_training():
    from spacy.util import load_config

    from ..util import CONFIG_DIR

    for path in sorted(CONFIG_DIR.glob("*.cfg")):
        config = load_config(path, interpolate=False)
        assert config["training"]["before_update"]["@callbacks"] == "spacy_bert_ner.release_memory.v1", path.name
