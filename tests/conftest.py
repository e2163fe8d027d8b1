"""Shared fixtures: tiny data written by the tests and a tiny random BERT."""

import os
from pathlib import Path

import pytest
import torch

# Tiny models gain nothing from more threads, and the tests share the machine.
torch.set_num_threads(1)

from .util import CITIES, CONFIG_DIR, ORGS, PEOPLE, REPO, TEMPLATES, tiny_overrides, toy_sentences, train_bert_ner, write_conll  # noqa: E402 (after the thread count is set)


def _shared_data_dir() -> Path:
    env = os.environ.get("SPACY_BERT_NER_DATA")
    # absolute: the workflow tests run `spacy project` in another directory
    return (Path(env) if env else REPO.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real datasets (``$SPACY_BERT_NER_DATA``, default ``../shared/data``).

    Under CI their absence is a failure, not a skip.
    """
    path = _shared_data_dir()
    if not (path / "wikiann-en" / "validation.tsv").exists():
        if os.environ.get("CI"):
            pytest.fail(f"real data not found at {path}; set SPACY_BERT_NER_DATA")
        pytest.skip(f"real data not found at {path}; set SPACY_BERT_NER_DATA")
    return path


@pytest.fixture(scope="session")
def toy_corpus(tmp_path_factory) -> Path:
    """``train.spacy``/``dev.spacy``/``test.spacy`` of the toy task."""
    from spacy_bert_ner.formats.convert import convert

    d = tmp_path_factory.mktemp("toy_corpus")
    for name, n, seed in (("train", 60, 1), ("dev", 20, 2), ("test", 20, 3)):
        convert(write_conll(d / f"{name}.tsv", toy_sentences(n, seed)), d / f"{name}.spacy")
    return d


# --- a tiny random BERT ---------------------------------------------------------------


def _toy_vocab(folder: Path, specials: list) -> list:
    """A WordPiece vocabulary of the toy task (``specials``, characters and their
    ``##`` pieces, the toy words), written to ``folder/vocab.txt``."""
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789.,;:!?'\"()-&/")
    words = sorted(
        {w for group in (CITIES, PEOPLE, ORGS) for w in group} | {w for t, _ in TEMPLATES for w in t if not w.startswith("{")}
    )
    vocab = list(dict.fromkeys(specials + chars + [f"##{c}" for c in chars] + words))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
    return vocab


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer, hidden-64 random BertModel with a small WordPiece vocab, saved
    like a hub model (config, weights, fast tokenizer), loadable by local path."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    d = tmp_path_factory.mktemp("tiny_bert")
    vocab = _toy_vocab(d, ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tokenizer = BertTokenizerFast(vocab_file=str(d / "vocab.txt"), do_lower_case=True, model_max_length=256)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=256,
    )
    BertModel(config).save_pretrained(d)
    tokenizer.save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def tiny_mpnet(tmp_path_factory) -> Path:
    """A 2-layer, hidden-64 random MPNetModel (no token type embeddings, like
    all-mpnet-base-v2) with an uncased fast tokenizer, saved like a hub model."""
    import torch
    from transformers import MPNetConfig, MPNetModel, MPNetTokenizerFast

    d = tmp_path_factory.mktemp("tiny_mpnet")
    vocab = _toy_vocab(
        d, ["<s>", "<pad>", "</s>", "<unk>", "<mask>", "[UNK]"]
    )  # the fast tokenizer's WordPiece model names [UNK]
    tokenizer = MPNetTokenizerFast(vocab_file=str(d / "vocab.txt"), do_lower_case=True, model_max_length=256)
    torch.manual_seed(0)
    config = MPNetConfig(
        vocab_size=len(vocab),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=260,
        pad_token_id=1,
        # all-mpnet-base-v2's; the default 1e-12 reads back as 0.0 from a saved pipeline (JSON with
        # 9 decimals), and MPNet's all-zero padding embeddings then normalise to NaN
        layer_norm_eps=1e-5,
    )
    MPNetModel(config).save_pretrained(d)
    tokenizer.save_pretrained(d)
    return d


@pytest.fixture(scope="session")
def trained_ner(tiny_bert, toy_corpus, tmp_path_factory) -> Path:
    """A transformer + ner pipeline trained on the toy task with the default CPU config."""
    from spacy.cli.train import train

    out = tmp_path_factory.mktemp("trained_ner")
    train(CONFIG_DIR / "ner-cpu.cfg", out, overrides=tiny_overrides(tiny_bert, toy_corpus, steps=40))
    return out / "model-last"


@pytest.fixture(scope="session")
def two_runs(tiny_bert, toy_corpus, tmp_path_factory):
    """Two transformer + bert_ner pipelines from the same start (config and seed) with different learning rates."""
    a = train_bert_ner(tiny_bert, toy_corpus, tmp_path_factory.mktemp("run_a"))
    b = train_bert_ner(
        tiny_bert, toy_corpus, tmp_path_factory.mktemp("run_b"), **{"training.optimizer.learn_rate.initial_rate": 0.001}
    )
    return a, b
