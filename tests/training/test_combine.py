"""Weight averaging (model soups) of trained pipelines."""

import numpy
import pytest
import spacy
from typer.testing import CliRunner

from spacy_bert_ner.pipeline.transformer import N_CASE_TYPES
from spacy_bert_ner.training.combine import average_pipelines, average_weights
from spacy_bert_ner.cli import app

from ..util import train_bert_ner as _train


def _weights(nlp):
    """Every weight of the pipeline by a stable name: thinc params and the transformer's tensors."""
    out = {}
    for name in nlp.pipe_names:
        for i, node in enumerate(nlp.get_pipe(name).model.walk()):
            for param in node.param_names:
                if node.has_param(param):
                    out[f"{name}/{i}/{node.name}/{param}"] = numpy.array(node.get_param(param))
            for shim in node.shims:
                for key, value in shim._model.state_dict().items():
                    out[f"{name}/{i}/{key}"] = value.detach().numpy().copy()
    return out


def test_average_is_the_mean_of_every_weight(two_runs, tmp_path):
    a, b = two_runs
    wa, wb = _weights(spacy.load(a)), _weights(spacy.load(b))
    assert wa.keys() == wb.keys()
    assert any("embeddings.word_embeddings" in k for k in wa) and any("/W" in k for k in wa)
    assert any(not numpy.allclose(wa[k], wb[k]) for k in wa if "encoder" in k)  # the runs differ
    out = average_pipelines([a, b], tmp_path / "soup")
    soup = spacy.load(out)
    ws = _weights(soup)
    assert ws.keys() == wa.keys()
    for key in wa:
        if wa[key].dtype.kind == "f":
            numpy.testing.assert_allclose(ws[key], (wa[key] + wb[key]) / 2, rtol=1e-5, atol=1e-6, err_msg=key)
        else:  # integer buffers (position ids) are copied
            numpy.testing.assert_array_equal(ws[key], wa[key])
    # the soup keeps the first pipeline's settings and runs like any pipeline
    assert soup.pipe_names == spacy.load(a).pipe_names
    doc = soup("anna works at acme .")
    assert all(ent.label_ in {"PER", "ORG", "LOC"} for ent in doc.ents)


def test_average_of_a_pipeline_with_itself_changes_nothing(two_runs):
    a, _ = two_runs
    texts = ["anna works at acme .", "i live in paris .", "we met boris and emma yesterday"]
    expected = [[(e.text, e.label_) for e in doc.ents] for doc in spacy.load(a).pipe(texts)]
    soup = average_weights([spacy.load(a), spacy.load(a)])
    assert [[(e.text, e.label_) for e in doc.ents] for doc in soup.pipe(texts)] == expected


def test_average_refuses_pipelines_that_differ(two_runs, trained_ner, tiny_bert, toy_corpus, tmp_path):
    a, _ = two_runs
    with pytest.raises(ValueError, match="components"):
        average_weights([spacy.load(a), spacy.load(trained_ner)])  # bert_ner against ner
    narrow = _train(tiny_bert, toy_corpus, tmp_path / "narrow", **{"components.bert_ner.model.tok2vec.features.width": 32})
    with pytest.raises(ValueError, match="differs in shape"):
        average_weights([spacy.load(a), spacy.load(narrow)])
    with pytest.raises(ValueError, match="at least two pipelines"):
        average_pipelines([a], tmp_path / "one")


def test_average_with_and_without_case_types(two_runs, tiny_bert, toy_corpus, tmp_path):
    """A transformer without case_types counts as one whose case rows all equal its row 0."""
    cased, _ = two_runs  # the default config has case_types
    plain = _train(tiny_bert, toy_corpus, tmp_path / "plain", **{"components.transformer.model.case_types": False})
    key = "embeddings.token_type_embeddings.weight"
    rows_p = spacy.load(plain).get_pipe("transformer").model.transformer.state_dict()[key].numpy()
    rows_c = spacy.load(cased).get_pipe("transformer").model.transformer.state_dict()[key].numpy()
    assert rows_p.shape[0] == 2 and rows_c.shape[0] == N_CASE_TYPES
    soup = spacy.load(average_pipelines([cased, plain], tmp_path / "soup"))
    assert soup.config["components"]["transformer"]["model"]["case_types"] is True
    rows = soup.get_pipe("transformer").model.transformer.state_dict()[key].numpy()
    numpy.testing.assert_allclose(rows, (rows_c + rows_p[0]) / 2, rtol=1e-5, atol=1e-6)
    assert soup("anna works at acme .").text == "anna works at acme ."
    # without case_types on either side, nothing is padded
    both_plain = spacy.load(average_pipelines([plain, plain], tmp_path / "plain-soup"))
    assert both_plain.get_pipe("transformer").model.transformer.state_dict()[key].shape[0] == 2


def test_average_cli(two_runs, tmp_path):
    a, b = two_runs
    result = CliRunner().invoke(app, ["average", str(a), str(b), str(tmp_path / "new" / "soup")])
    assert result.exit_code == 0, result.output
    assert "weight average of 2 pipelines" in result.output
    assert spacy.load(tmp_path / "new" / "soup").pipe_names == ["transformer", "bert_ner"]
    result = CliRunner().invoke(app, ["average", str(a), str(tmp_path / "bad")])
    assert result.exit_code == 1 and "at least two pipelines" in result.output
    result = CliRunner().invoke(app, ["average", str(a), str(tmp_path / "missing"), str(tmp_path / "bad")])
    assert result.exit_code == 1 and not (tmp_path / "bad").exists()
