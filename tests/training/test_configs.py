"""Training the default config (tiny BERT) and the pieces it registers."""
import numpy
import pytest
import spacy
from spacy.util import registry

from spacy_bert_ner.pipeline.transformer import EMBEDDED_MINILM, resolve_transformer_name

from ..util import CONFIG_DIR, tiny_overrides


def test_trained_pipeline_learns_the_toy_task(trained_ner, toy_corpus):
    from spacy_bert_ner.evaluation.evaluate import evaluate

    nlp = spacy.load(trained_ner)
    assert nlp.pipe_names == ["transformer", "ner"]
    result = evaluate(nlp, toy_corpus / "test.spacy")
    assert result["ents_f"] > 0.8, result


def test_train_log_is_written(trained_ner, toy_corpus):
    import srsly

    log = list(srsly.read_jsonl(toy_corpus.parent / f"log-{toy_corpus.name}.jsonl"))
    assert [r["step"] for r in log][-1] == 40
    assert all({"step", "epoch", "words", "seconds", "score", "losses"} <= set(r) for r in log)


def test_embedded_minilm_resolves_to_local_copy():
    path = resolve_transformer_name(EMBEDDED_MINILM)
    assert path.endswith("model")
    assert resolve_transformer_name("minilm") == path
    assert resolve_transformer_name("bert-base-cased") == "bert-base-cased"
    assert registry.misc.get("spacy_bert_ner.transformer_name.v1")("roberta-base") == "roberta-base"


def test_casing_features_are_one_switch(tiny_bert):
    """features = null gives the transformer listener alone."""
    from thinc.api import Config

    config = Config().from_disk(CONFIG_DIR / "ner-cpu.cfg", overrides={"paths.transformer": str(tiny_bert)})
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    names = [n.name for n in nlp.get_pipe("ner").model.walk()]
    assert "cased_listener" in names
    config = Config().from_disk(
        CONFIG_DIR / "ner-cpu.cfg",
        overrides={"paths.transformer": str(tiny_bert), "components.ner.model.tok2vec.features": None},
    )
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    names = [n.name for n in nlp.get_pipe("ner").model.walk()]
    assert "cased_listener" not in names


def test_cased_listener_handles_empty_docs_in_a_batch(trained_ner):
    nlp = spacy.load(trained_ner)
    docs = list(nlp.pipe(["", "anna works at acme .", "   ", "paris"]))
    assert [len(d) for d in docs] == [0, 5, 1, 1]
    assert [e.text for e in docs[1].ents] == ["anna", "acme"]


def test_jsonl_logger_resolves_outside_training(tmp_path):
    from spacy.util import registry

    setup = registry.get("loggers", "spacy_bert_ner.JsonlLogger.v1")(path=str(tmp_path / "log.jsonl"), console=False)
    log_step, finalize = setup(spacy.blank("en"))
    log_step({"step": 3, "epoch": 0, "words": 10, "seconds": 1, "score": 0.5, "losses": {"ner": 1.0}, "other_scores": {"ents_f": 0.5}, "checkpoints": []})
    finalize()
    assert '"step":3' in (tmp_path / "log.jsonl").read_text()


def test_pipe_by_length_keeps_order_and_results(trained_ner):
    from spacy_bert_ner.pipeline.batching import pipe_by_length

    nlp = spacy.load(trained_ner)
    texts = ["we met boris and emma yesterday in paris and london", "anna", "the office of acme is in rome", "felix works at globex ."] * 3
    plain = [[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe(texts, batch_size=2)]
    sorted_ = [[(e.start, e.end, e.label_) for e in d.ents] for d in pipe_by_length(nlp, texts, batch_size=2, buffer=5)]
    assert sorted_ == plain
    pairs = list(pipe_by_length(nlp, [(t, i) for i, t in enumerate(texts)], batch_size=3, as_tuples=True))
    assert [ctx for _, ctx in pairs] == list(range(len(texts)))
    assert [d.text for d, _ in pairs] == texts


def test_length_sorted_corpus_sorts_and_keeps_every_example(toy_corpus):
    from spacy.training import Corpus

    read = registry.readers.get("spacy_bert_ner.LengthSortedCorpus.v1")(toy_corpus / "dev.spacy")
    nlp = spacy.blank("en")
    examples = list(read(nlp))
    lengths = [len(eg.reference) for eg in examples]
    assert lengths == sorted(lengths)
    plain = sorted(eg.reference.text for eg in Corpus(toy_corpus / "dev.spacy")(nlp))
    assert sorted(eg.reference.text for eg in examples) == plain


def test_shuffled_corpus_orders_by_its_own_seed_and_keeps_every_example(toy_corpus):
    import random

    from spacy.training import Corpus

    nlp = spacy.blank("en")
    texts = lambda read: [eg.reference.text for eg in read(nlp)]  # noqa: E731
    make = registry.readers.get("spacy_bert_ner.ShuffledCorpus.v1")
    plain = texts(Corpus(toy_corpus / "train.spacy"))
    assert texts(make(toy_corpus / "train.spacy")) == plain  # seed 0: the file's order
    one, two = texts(make(toy_corpus / "train.spacy", shuffle_seed=1)), texts(make(toy_corpus / "train.spacy", shuffle_seed=2))
    assert one != plain and one != two and sorted(one) == sorted(two) == sorted(plain)
    assert texts(make(toy_corpus / "train.spacy", shuffle_seed=1)) == one  # stable
    # the global RNG (spaCy's epoch shuffle, seeded by [training] seed) is left alone
    random.seed(7)
    expected = random.random()
    random.seed(7)
    texts(make(toy_corpus / "train.spacy", shuffle_seed=3))
    assert random.random() == expected


def test_every_shipped_config_builds_and_validates(tiny_bert):
    """configs/*.cfg (CPU and GPU, ner and bert_ner) fill, validate and build with a local transformer."""
    from thinc.api import Config

    names = sorted(p.name for p in CONFIG_DIR.glob("*.cfg"))
    assert {"ner-cpu.cfg", "bert-ner-cpu.cfg", "ner-gpu.cfg", "bert-ner-gpu.cfg"} <= set(names)
    for name in names:
        config = Config().from_disk(CONFIG_DIR / name, overrides={"paths.transformer": str(tiny_bert)})
        nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
        head = "bert_ner" if name.startswith("bert-ner") else "ner"
        assert nlp.pipe_names == ["transformer", head], name
        assert config["training"]["logger"]["@loggers"] == "spacy_bert_ner.JsonlLogger.v1", name


@pytest.mark.parametrize("name", ["bert-ner-cpu.cfg", "ner-cpu.cfg", "bert-ner-gpu.cfg", "ner-gpu.cfg"])
def test_config_is_the_whole_recipe(name):
    """One override sets the training length and its schedule; the training
    reader reads the file's order (member 0 of `spacy-bert-ner train`)."""
    from spacy.util import load_config

    config = load_config(CONFIG_DIR / name, overrides={"training.optimizer.learn_rate.total_steps": 1234}, interpolate=True)
    assert config["training"]["max_steps"] == 1234
    assert config["corpora"]["train"]["@readers"] == "spacy_bert_ner.ShuffledCorpus.v1"
    assert config["corpora"]["train"]["shuffle_seed"] == 0


def test_a_pipeline_from_the_default_config_creates_its_own_optimizer(tiny_bert, toy_corpus):
    """`nlp.initialize()` and `nlp.update()` without an optimizer (and `spacy debug data`)
    resolve [training.optimizer] from the uninterpolated config: it must hold no variable."""
    import spacy
    from spacy.training import Corpus
    from spacy.util import load_config

    config = load_config(CONFIG_DIR / "bert-ner-cpu.cfg", overrides={"paths.transformer": str(tiny_bert)})
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    examples = list(Corpus(str(toy_corpus / "train.spacy"))(nlp))[:4]
    nlp.initialize(lambda: examples)
    assert nlp.create_optimizer() is not None


@pytest.mark.slow
def test_the_base_recipe_gives_an_encoder_without_token_types_the_casing(tiny_mpnet, toy_corpus, tmp_path):
    """bert-ner-base-cpu.cfg on an MPNet (no token type embeddings, uncased):
    it trains, and the casing reaches the model beside the listener."""
    from spacy.cli.train import train

    from spacy_bert_ner.pipeline.transformer import token_type_embeddings

    overrides = tiny_overrides(tiny_mpnet, toy_corpus, steps=6)
    overrides["paths.train_log"] = str(tmp_path / "log.jsonl")
    train(CONFIG_DIR / "bert-ner-base-cpu.cfg", tmp_path, overrides=overrides)
    nlp = spacy.load(tmp_path / "model-last")
    shim = next(node for node in nlp.get_pipe("transformer").model.walk() if node.shims).shims[0]
    assert type(shim._model).__name__ == "MPNetModel" and token_type_embeddings(shim._model) is None
    tokenizer = nlp.get_pipe("transformer").model.tokenizer
    assert tokenizer("anna lives in paris")["input_ids"] == tokenizer("Anna lives in Paris")["input_ids"]  # uncased
    lower, title = nlp.get_pipe("transformer").pipe([nlp.make_doc("anna lives in paris"), nlp.make_doc("Anna lives in Paris")])
    probs = nlp.get_pipe("bert_ner").predict([lower, title])
    assert not numpy.allclose(probs[0], probs[1])  # the casing features tell them apart


def test_case_types_on_an_encoder_without_token_types_is_refused(tiny_mpnet, toy_corpus, tmp_path):
    from spacy.cli.train import train

    overrides = tiny_overrides(tiny_mpnet, toy_corpus, steps=2)
    overrides.update({"paths.train_log": str(tmp_path / "log.jsonl"), "components.transformer.model.case_types": True})
    with pytest.raises(ValueError, match="case_types needs a transformer with token type embeddings.*MPNetModel has none"):
        train(CONFIG_DIR / "bert-ner-base-cpu.cfg", tmp_path, overrides=overrides)


@pytest.mark.slow
def test_the_gpu_recipe_runs_a_few_steps_on_the_cpu(tiny_mpnet, toy_corpus, tmp_path):
    """bert-ner-gpu.cfg (base MPNet by default) trains on the CPU with gpu_id -1, so its one GPU command is known to run."""
    from spacy.cli.train import train

    overrides = tiny_overrides(tiny_mpnet, toy_corpus, steps=4)
    overrides.update({"paths.train_log": str(tmp_path / "log.jsonl"), "training.accumulate_gradient": 1, "training.batcher.size": 200})
    train(CONFIG_DIR / "bert-ner-gpu.cfg", tmp_path, overrides=overrides, use_gpu=-1)
    nlp = spacy.load(tmp_path / "model-last")
    assert nlp.pipe_names == ["transformer", "bert_ner"] and nlp("anna works at acme .") is not None


def test_the_mpnet_name_resolves_to_the_downloaded_folder(tmp_path, monkeypatch):
    from spacy_bert_ner.pipeline.transformer import BASE_MPNET

    monkeypatch.setattr("pathlib.Path.home", lambda: tmp_path)
    assert resolve_transformer_name(BASE_MPNET) == BASE_MPNET  # nothing downloaded: the hub name
    folder = tmp_path / ".cache" / "spacy-bert-ner" / "all-mpnet-base-v2"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}", encoding="utf8")
    (folder / "model.safetensors").write_bytes(b"")
    assert resolve_transformer_name(BASE_MPNET) == resolve_transformer_name("all-mpnet-base-v2") == str(folder)
