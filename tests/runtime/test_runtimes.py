"""Every runtime gives the fp32 entities (case ids included), never changes what is saved, and refuses training."""

import numpy
import pytest
import spacy
import torch
from spacy.training import Example

from spacy_bert_ner.errors import MissingDependency
from spacy_bert_ner.runtime import RUNTIMES, load, set_runtime, transformer_runtimes
from spacy_bert_ner.runtime.engines import require

# Cased text: the case ids (token type ids) differ between these and their lower-cased forms.
TEXTS = ["Anna works at Acme in Paris .", "We met BORIS and Emma yesterday in Berlin", "the office of Globex is in paris ."]
OTHER_RUNTIMES = [r for r in RUNTIMES if r != "fp32"]


def _ents(nlp, texts=TEXTS):
    return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]


def _hidden(nlp, texts=TEXTS):
    """Each Doc's hidden states at its real wordpieces (padding zeroed: runtimes differ in what they leave there)."""
    nlp.get_pipe("bert_ner").keep_trf_data = True
    hidden = []
    for doc in nlp.pipe(texts):
        mask = numpy.asarray(doc._.trf_data.wordpieces.attention_mask).astype(bool)
        hidden.append(numpy.asarray(doc._.trf_data.model_output.last_hidden_state) * mask[..., None])
    return hidden


def _state_dict(nlp):
    transformer = nlp.get_pipe("transformer").model.transformer
    return {k: v.detach().clone() for k, v in transformer.state_dict().items()}


@pytest.fixture(scope="module")
def cased_model(two_runs):
    """transformer (case_types) + bert_ner trained on the toy task."""
    path = two_runs[0]
    assert spacy.load(path).config["components"]["transformer"]["model"]["case_types"] is True
    return path


@pytest.mark.parametrize("runtime", OTHER_RUNTIMES)
def test_runtime_gives_the_fp32_entities_with_case_ids(cased_model, runtime):
    fp32 = spacy.load(cased_model)
    other = spacy.load(cased_model, config={"components": {"transformer": {"model": {"runtime": runtime}}}})
    assert transformer_runtimes(other) == {"transformer": runtime}
    assert _ents(other) == _ents(fp32)
    assert any(_ents(fp32))
    tolerance = 1e-4 if runtime == "onnx" else 0.25  # int8 matrix products are approximate
    for a, b in zip(_hidden(other), _hidden(fp32)):
        assert a.shape == b.shape
        numpy.testing.assert_allclose(a, b, atol=tolerance, rtol=0)
    # the case ids reach the engine: lower-casing the text changes its output
    lowered = [t.lower() for t in TEXTS]
    assert not numpy.allclose(_hidden(other, lowered)[0], _hidden(other)[0], atol=1e-3)


@pytest.mark.parametrize("runtime", OTHER_RUNTIMES)
def test_saving_after_any_runtime_keeps_the_fp32_weights(cased_model, runtime, tmp_path):
    original = _state_dict(spacy.load(cased_model))
    nlp = load(cased_model, runtime=runtime)
    _ents(nlp)  # the engine is built and used
    nlp.to_disk(tmp_path / "saved")
    reloaded = spacy.load(tmp_path / "saved", config={"components": {"transformer": {"model": {"runtime": "fp32"}}}})
    again = _state_dict(reloaded)
    assert again.keys() == original.keys()
    for key, value in original.items():
        assert again[key].dtype == value.dtype and torch.equal(again[key], value), key
    assert _ents(reloaded) == _ents(spacy.load(cased_model))
    # to_bytes/from_bytes too
    roundtrip = spacy.load(cased_model).from_bytes(nlp.to_bytes())
    assert all(torch.equal(_state_dict(roundtrip)[k], v) for k, v in original.items())


def test_a_loaded_pipeline_switches_runtime_and_back(cased_model):
    nlp = spacy.load(cased_model)
    expected = _ents(nlp)
    assert set_runtime(nlp, "int8") == ["transformer"]
    assert _ents(nlp) == expected
    set_runtime(nlp, "fp32")
    assert _ents(nlp) == expected


def test_training_needs_fp32(cased_model):
    nlp = load(cased_model, runtime="int8")
    doc = nlp.make_doc("Anna works at Acme .")
    example = Example.from_dict(doc, {"entities": [(0, 4, "PER")]})
    with pytest.raises(ValueError, match="runtime 'int8', which is for inference only: train with"):
        nlp.update([example])


def test_unknown_runtime_and_pipelines_without_our_transformer():
    with pytest.raises(ValueError, match="unknown runtime 'fp16'; choose one of fp32, int8, onnx, onnx-int8"):
        set_runtime(spacy.blank("en"), "fp16")
    with pytest.raises(ValueError, match="has no transformer built by spacy_bert_ner.TransformerModel.v1"):
        set_runtime(spacy.blank("en"), "int8")


def test_a_missing_onnx_extra_names_it(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_onnxruntime(name, *args, **kwargs):
        if name.startswith("onnxruntime"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    with pytest.raises(MissingDependency, match=r"pip install 'spacy-bert-ner\[onnx\]'"):
        require("onnx-int8")
    require("int8")  # needs torch only


def test_a_packaged_default_runtime_is_set_in_a_staged_copy(cased_model, tmp_path):
    from spacy_bert_ner.packaging.package import _stage_model

    before = (cased_model / "config.cfg").read_text()
    staged = _stage_model(cased_model, tmp_path, None, "onnx-int8")
    assert (cased_model / "config.cfg").read_text() == before  # the hard-linked original is untouched
    nlp = spacy.load(staged)
    assert transformer_runtimes(nlp) == {"transformer": "onnx-int8"}
    assert _ents(nlp) == _ents(spacy.load(cased_model))


def test_the_cli_takes_a_runtime(cased_model, toy_corpus, tmp_path):
    import srsly
    from typer.testing import CliRunner

    from spacy_bert_ner.cli import app

    runner = CliRunner()
    result = runner.invoke(
        app,
        ["evaluate", str(cased_model), str(toy_corpus / "test.spacy"), "--runtime", "int8", "--output", str(tmp_path / "m.json")],
    )
    assert result.exit_code == 0, result.output
    assert srsly.read_json(tmp_path / "m.json")["runtime"] == ["int8"]
    (tmp_path / "in.txt").write_text("\n".join(TEXTS) + "\n")
    result = runner.invoke(
        app, ["predict", str(cased_model), str(tmp_path / "in.txt"), str(tmp_path / "out.jsonl"), "--runtime", "onnx"]
    )
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == len(TEXTS)
    result = runner.invoke(
        app, ["predict", str(cased_model), str(tmp_path / "in.txt"), str(tmp_path / "x.jsonl"), "--runtime", "fp16"]
    )
    assert result.exit_code == 1 and "unknown runtime 'fp16'" in result.output


@pytest.mark.parametrize("runtime", OTHER_RUNTIMES)
def test_an_encoder_without_token_types_gets_its_inputs_by_name(tiny_mpnet, runtime):
    """MPNet's third ``forward`` argument is ``position_ids``: an engine that
    passed token type ids there would run every position as position 0."""
    from transformers import AutoModel, AutoTokenizer

    from spacy_bert_ner.runtime.engines import build_engine, model_inputs

    model = AutoModel.from_pretrained(str(tiny_mpnet)).eval()
    assert model_inputs(model) == ("input_ids", "attention_mask")
    encoding = AutoTokenizer.from_pretrained(str(tiny_mpnet))([t.lower() for t in TEXTS], return_tensors="np", padding="longest")
    with torch.inference_mode():
        expected = model(
            input_ids=torch.as_tensor(encoding["input_ids"]), attention_mask=torch.as_tensor(encoding["attention_mask"])
        )
    got = build_engine(runtime, model)(encoding["input_ids"], encoding["attention_mask"], None)
    mask = encoding["attention_mask"].astype(bool)
    tolerance = 1e-4 if runtime == "onnx" else 0.25  # int8 matrix products are approximate
    numpy.testing.assert_allclose(numpy.asarray(got)[mask], expected.last_hidden_state.numpy()[mask], atol=tolerance, rtol=0)


def test_int8_activations_take_the_full_range_where_the_kernel_is_exact(tiny_bert):
    """torch's dynamic Linear quantizes activations to 7 bits; where the
    probe finds the full 8 bits exact (VNNI), the int8 engine uses them, and
    its states are closer to fp32's."""
    from transformers import AutoModel, AutoTokenizer

    from spacy_bert_ner.runtime.engines import TorchInt8Engine
    from spacy_bert_ner.runtime.int8 import full_range_is_exact

    model = AutoModel.from_pretrained(str(tiny_bert)).eval()
    encoding = AutoTokenizer.from_pretrained(str(tiny_bert))(TEXTS * 4, return_tensors="np", padding="longest")
    inputs = (encoding["input_ids"], encoding["attention_mask"], None)
    with torch.inference_mode():
        expected = model(
            input_ids=torch.as_tensor(inputs[0]), attention_mask=torch.as_tensor(inputs[1])
        ).last_hidden_state.numpy()
    mask = inputs[1].astype(bool)

    def error(engine):
        return float(numpy.abs(numpy.asarray(engine(*inputs))[mask] - expected[mask]).mean())

    seven_bits = TorchInt8Engine(model, full_range=False)
    assert not seven_bits.full_range
    assert type(seven_bits.model.encoder.layer[0].intermediate.dense).__name__ == "Linear"  # torch's own dynamic Linear
    default = TorchInt8Engine(model)
    assert default.full_range is full_range_is_exact()
    if default.full_range:
        assert error(default) < 0.8 * error(seven_bits)
    else:  # the kernel saturates on this CPU: torch's own 7-bit activations
        assert error(default) == error(seven_bits)
