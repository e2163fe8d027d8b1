"""Distillation: a teacher's probabilities on the training Docs, and a student trained on them."""

import numpy
import pytest
import spacy
import srsly
from typer.testing import CliRunner

from spacy_bert_ner.cli import app
from spacy_bert_ner.errors import InputError
from spacy_bert_ner.evaluation.evaluate import tag_log_probs
from spacy_bert_ner.formats.docbin import make_doc, read_docbin, write_docbin
from spacy_bert_ner.pipeline.soft_targets import teacher_probs
from spacy_bert_ner.project.distill import CORPUS_FILE, teacher_corpus
from spacy_bert_ner.training.combine import ensemble_pipelines
from spacy_bert_ner.training.distillation import read_unlabelled, write_teacher_corpus

from ..util import CONFIG_DIR, tiny_overrides

UNLABELLED = ["emma visited rome with felix .", "", "globex opened an office in vienna"]


def _unlabelled(tmp_path):
    path = tmp_path / "unlabelled.txt"
    path.write_text("\n".join(UNLABELLED) + "\n", encoding="utf8")
    return path


def _probs(doc):
    return teacher_probs(doc)[0]


def test_the_teacher_corpus_holds_the_teachers_probabilities(two_runs, toy_corpus, tmp_path):
    teacher = spacy.load(two_runs[0])
    counts = write_teacher_corpus(teacher, toy_corpus / "train.spacy", tmp_path / "taught.spacy", _unlabelled(tmp_path))
    assert counts == {"labelled": 60, "unlabelled": 2, "written": 62}
    taught = list(read_docbin(tmp_path / "taught.spacy", teacher.vocab))
    gold = list(read_docbin(toy_corpus / "train.spacy", teacher.vocab))
    assert [d.text for d in taught[:60]] == [d.text for d in gold]
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in taught[:60]] == [
        [(e.start, e.end, e.label_) for e in d.ents] for d in gold
    ]
    for doc, log_probs in zip(taught, tag_log_probs(teacher, gold)):
        numpy.testing.assert_allclose(_probs(doc), numpy.exp(log_probs), atol=2e-3)
    assert teacher_probs(taught[0])[1] == teacher.get_pipe("bert_ner").tags
    assert [d.text for d in taught[60:]] == [t for t in UNLABELLED if t]
    assert not any(d.has_annotation("ENT_IOB") for d in taught[60:])  # no gold: the teacher's term alone


def test_an_ensemble_teacher_teaches_its_members_mean(two_runs, toy_corpus, tmp_path):
    ensemble = spacy.load(ensemble_pipelines(two_runs, tmp_path / "ensemble"))
    write_teacher_corpus(ensemble, toy_corpus / "dev.spacy", tmp_path / "taught.spacy")
    gold = list(read_docbin(toy_corpus / "dev.spacy"))
    members = [[numpy.exp(lp) for lp in tag_log_probs(spacy.load(path), gold)] for path in two_runs]
    for doc, a, b in zip(read_docbin(tmp_path / "taught.spacy"), *members):
        numpy.testing.assert_allclose(_probs(doc), (a + b) / 2, atol=2e-3)


def test_the_teacher_corpus_is_made_once_per_teacher_and_data(two_runs, toy_corpus, tmp_path):
    said = []
    corpus = teacher_corpus(two_runs[0], toy_corpus / "dev.spacy", tmp_path, log=said.append)
    made = corpus.stat().st_mtime_ns
    assert teacher_corpus(two_runs[0], toy_corpus / "dev.spacy", tmp_path, log=said.append).stat().st_mtime_ns == made
    assert "reused" in said[-1]
    teacher_corpus(two_runs[1], toy_corpus / "dev.spacy", tmp_path, log=said.append)  # another teacher: made again
    assert "reused" not in said[-1]
    record = srsly.read_json(tmp_path / "teacher-corpus.json")
    assert record["made_from"]["teacher"] == str(two_runs[1]) and record["counts"]["labelled"] == 20


def test_a_teacher_run_by_onnx_runtime_teaches_the_same_probabilities(two_runs, toy_corpus, tmp_path):
    said = []
    torch_corpus = teacher_corpus(two_runs[0], toy_corpus / "dev.spacy", tmp_path / "fp32", log=said.append)
    onnx_corpus = teacher_corpus(
        two_runs[0], toy_corpus / "dev.spacy", tmp_path / "onnx", log=said.append, teacher_runtime="onnx"
    )
    assert srsly.read_json(tmp_path / "onnx" / "teacher-corpus.json")["made_from"]["teacher_runtime"] == "onnx"
    by_torch, by_onnx = list(read_docbin(torch_corpus)), list(read_docbin(onnx_corpus))
    assert len(by_torch) == len(by_onnx) == 20
    for a, b in zip(by_torch, by_onnx):
        numpy.testing.assert_allclose(_probs(a), _probs(b), atol=2e-3)  # float16 storage
    # the same teacher and data under another runtime is another corpus
    teacher_corpus(two_runs[0], toy_corpus / "dev.spacy", tmp_path / "onnx", log=said.append)
    assert "reused" not in said[-1]
    with pytest.raises(ValueError, match="unknown runtime 'fp16'"):
        teacher_corpus(two_runs[0], toy_corpus / "dev.spacy", tmp_path / "bad", teacher_runtime="fp16")


def test_a_teacher_without_the_datas_labels_is_refused(two_runs, tmp_path):
    nlp = spacy.blank("en")
    write_docbin([make_doc(nlp.vocab, [(["acme", "rocks"], [(0, 1, "MISC")])])], tmp_path / "misc.spacy")
    with pytest.raises(ValueError, match="has no label MISC"):
        teacher_corpus(two_runs[0], tmp_path / "misc.spacy", tmp_path / "out")


def test_unlabelled_text_errors_name_the_file_and_line(tmp_path):
    nlp = spacy.blank("en")
    bad = tmp_path / "bad.txt"
    bad.write_text("fine text\nbroken \x00 text\n", encoding="utf8")
    with pytest.raises(InputError, match=r"bad.txt:2: a NUL character"):
        list(read_unlabelled(bad, nlp))
    with pytest.raises(InputError, match="cannot read the unlabelled text"):
        list(read_unlabelled(tmp_path / "missing.txt", nlp))


@pytest.mark.slow
def test_distill_trains_a_student_on_the_teacher(two_runs, tiny_bert, toy_corpus, tmp_path):
    overrides = tiny_overrides(tiny_bert, toy_corpus, steps=12)
    del overrides["paths.train"], overrides["paths.train_log"]
    args = [part for key, value in overrides.items() for part in (f"--{key}", str(value))]
    out = tmp_path / "student"
    result = CliRunner().invoke(
        app,
        [
            "distill",
            str(two_runs[0]),
            str(CONFIG_DIR / "bert-ner-cpu.cfg"),
            str(out),
            "--paths.train",
            str(toy_corpus / "train.spacy"),
            "--unlabelled",
            str(_unlabelled(tmp_path)),
            "--weight",
            "0.8",
            "--temperature",
            "1.5",
            "--members",
            "2",
            *args,
        ],
    )
    assert result.exit_code == 0, result.output
    student = spacy.load(out / "model-best")
    assert student.get_pipe("bert_ner").distillation == {"weight": 0.8, "temperature": 1.5}
    assert student.get_pipe("bert_ner").labels == ("LOC", "ORG", "PER")
    assert student("anna works at acme .").ents is not None
    summary = srsly.read_json(out / "members.json")
    assert summary["distillation"]["docs"] == {"labelled": 60, "unlabelled": 2, "written": 62}
    assert summary["distillation"]["unlabelled"].endswith(".txt")
    assert summary["distillation"]["weight"] == 0.8 and summary["members"][0]["steps"] == 12
    # two students, each reading the teacher's corpus in its own order, averaged
    assert summary["combine"] == "average" and [m["shuffle_seed"] for m in summary["members"]] == [0, 1]
    assert (out / CORPUS_FILE).exists() and (out / "member-1" / "train-log.jsonl").exists()
    assert str(out / CORPUS_FILE) in summary["overrides"]


@pytest.mark.parametrize(
    "option,expected",
    [
        (["--weight", "2"], "weight must be in [0, 1]"),
        (["--combine", "mean"], "combine must be one of average, ensemble, got 'mean'"),
    ],
)
def test_distill_refuses_bad_settings(two_runs, tmp_path, option, expected):
    args = ["distill", str(two_runs[0]), str(CONFIG_DIR / "bert-ner-cpu.cfg"), str(tmp_path), "--paths.train", "x.spacy"]
    result = CliRunner().invoke(app, [*args, *option])
    assert result.exit_code == 1 and expected in result.output


def test_the_students_config_is_checked_before_the_teacher_runs(two_runs, toy_corpus, tmp_path):
    from spacy_bert_ner.project.distill import distill

    text = (CONFIG_DIR / "bert-ner-cpu.cfg").read_text(encoding="utf8")
    block = text[text.index("[components.bert_ner.distillation]") : text.index("[components.bert_ner.model]")]
    (tmp_path / "old.cfg").write_text(text.replace(block, ""), encoding="utf8")
    with pytest.raises(ValueError, match="add \\[components.bert_ner.distillation\\]"):
        distill(two_runs[0], tmp_path / "old.cfg", tmp_path / "out", toy_corpus / "train.spacy")
    (tmp_path / "split.cfg").write_text(
        text.replace("shuffle_seed = 0\nmax_length = 0", "shuffle_seed = 0\nmax_length = 20"), encoding="utf8"
    )
    with pytest.raises(ValueError, match="max_length and augmenter rebuild the reference Docs"):
        distill(two_runs[0], tmp_path / "split.cfg", tmp_path / "out", toy_corpus / "train.spacy")
    assert not (tmp_path / "out" / CORPUS_FILE).exists()
