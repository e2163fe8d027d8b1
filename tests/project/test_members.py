"""Training several members at once, each in its own data order, then their average or ensemble."""

import sys
from pathlib import Path

import numpy
import pytest
import spacy
import srsly
from typer.testing import CliRunner

from spacy_bert_ner.cli import app
from spacy_bert_ner.errors import InputError
from spacy_bert_ner.evaluation.evaluate import evaluate
from spacy_bert_ner.project.datasets import sha256_of
from spacy_bert_ner.project.members import (
    check_members,
    finished_member,
    member_command,
    member_env,
    member_logs,
    train_members,
)

from ..util import CONFIG_DIR, tiny_overrides

STEPS = 6


def _cli_overrides(tiny_bert, toy_corpus) -> list:
    overrides = tiny_overrides(tiny_bert, toy_corpus, steps=STEPS)
    del overrides["paths.train_log"]  # each member writes its own
    return [part for key, value in overrides.items() for part in (f"--{key}", str(value))]


def _transformer_weights(path: Path) -> dict:
    nlp = spacy.load(path)
    shim = next(node for node in nlp.get_pipe("transformer").model.walk() if node.shims).shims[0]
    return {key: value.detach().numpy().copy() for key, value in shim._model.state_dict().items() if value.is_floating_point()}


def test_member_command_gives_each_member_its_own_order_and_log(tmp_path):
    cmd = member_command(Path("c.cfg"), tmp_path / "member-1", 1, ["--training.max_steps", "6"], -1)
    assert cmd[:4] == [sys.executable, "-m", "spacy", "train"]
    assert cmd[cmd.index("--output") + 1] == str(tmp_path / "member-1")
    assert cmd[cmd.index("--paths.train_log") + 1] == str(tmp_path / "member-1" / "train-log.jsonl")
    assert cmd[cmd.index("--corpora.train.shuffle_seed") + 1] == "1"
    assert cmd.index("--training.max_steps") < cmd.index("--paths.train_log")  # ours last: they win
    # member 0 is the config as it is: no reader swap, no shuffle_seed override
    first = member_command(Path("c.cfg"), tmp_path / "member-0", 0, [], -1)
    assert "--corpora.train.shuffle_seed" not in first and not any("@readers" in part for part in first)


def test_several_members_need_the_shuffled_reader(tmp_path):
    check_members(CONFIG_DIR / "bert-ner-cpu.cfg", 2, "average")
    config = tmp_path / "plain.cfg"
    config.write_text(
        (CONFIG_DIR / "bert-ner-cpu.cfg")
        .read_text()
        .replace(
            '@readers = "spacy_bert_ner.ShuffledCorpus.v1"\npath = ${paths.train}\nshuffle_seed = 0',
            '@readers = "spacy.Corpus.v1"\npath = ${paths.train}',
        )
    )
    check_members(config, 1, "average")  # one member is plain spacy train: any reader
    with pytest.raises(ValueError, match="needs \\[corpora.train\\] @readers"):
        train_members(config, tmp_path / "out", members=2)


def test_member_env_splits_the_cores_on_cpu_only(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    env = member_env(2, -1, {"PATH": "/bin"})
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "4" and env["PATH"] == "/bin"
    assert member_env(16, -1, {})["OMP_NUM_THREADS"] == "1"
    assert member_env(2, -1, {"OMP_NUM_THREADS": "3"})["OMP_NUM_THREADS"] == "3"  # the user's setting wins
    assert "OMP_NUM_THREADS" not in member_env(2, 0, {})


@pytest.mark.slow
def test_train_members_averages_members_trained_in_their_own_orders(tiny_bert, toy_corpus, tmp_path):
    best = train_members(CONFIG_DIR / "bert-ner-cpu.cfg", tmp_path, 2, _cli_overrides(tiny_bert, toy_corpus))
    summary = srsly.read_json(tmp_path / "members.json")
    assert [m["shuffle_seed"] for m in summary["members"]] == [0, 1]
    assert all(m["steps"] == STEPS and m["best_dev_score"] is not None for m in summary["members"])
    members = [_transformer_weights(tmp_path / f"member-{k}" / "model-best") for k in range(2)]
    soup = _transformer_weights(best)
    assert any(not numpy.array_equal(members[0][k], members[1][k]) for k in soup)  # the orders differ
    for key, value in soup.items():
        numpy.testing.assert_allclose(value, (members[0][key] + members[1][key]) / 2, rtol=1e-5, atol=1e-6)
    assert member_logs(tmp_path / "members.json") == [tmp_path / f"member-{k}" / "train-log.jsonl" for k in range(2)]
    metrics = evaluate(spacy.load(best), toy_corpus / "test.spacy", train_log=member_logs(tmp_path / "members.json"))
    assert metrics["steps"] == STEPS and len(metrics["members"]) == 2
    assert metrics["train_seconds"] == max(m["train_seconds"] for m in metrics["members"])


@pytest.mark.slow
def test_one_member_is_plain_spacy_train(tiny_bert, toy_corpus, tmp_path):
    from spacy.cli.train import train

    overrides = tiny_overrides(tiny_bert, toy_corpus, steps=STEPS)
    overrides["paths.train_log"] = str(tmp_path / "plain-log.jsonl")
    train(CONFIG_DIR / "bert-ner-cpu.cfg", tmp_path / "plain", overrides=overrides)
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(CONFIG_DIR / "bert-ner-cpu.cfg"),
            str(tmp_path / "soup"),
            "--members",
            "1",
            *_cli_overrides(tiny_bert, toy_corpus),
        ],
    )
    assert result.exit_code == 0, result.output
    plain, soup = _transformer_weights(tmp_path / "plain" / "model-best"), _transformer_weights(tmp_path / "soup" / "model-best")
    for key, value in plain.items():
        numpy.testing.assert_allclose(soup[key], value, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_finished_members_are_kept_and_unfinished_ones_train_again(tiny_bert, toy_corpus, tmp_path):
    overrides = _cli_overrides(tiny_bert, toy_corpus)
    train_members(CONFIG_DIR / "bert-ner-cpu.cfg", tmp_path, 1, overrides)
    first = (tmp_path / "member-0" / "model-best" / "meta.json").stat().st_mtime_ns
    logged = []
    best = train_members(CONFIG_DIR / "bert-ner-cpu.cfg", tmp_path, 2, overrides, log=logged.append)
    assert (tmp_path / "member-0" / "model-best" / "meta.json").stat().st_mtime_ns == first  # not trained again
    assert any("Keeping finished member(s) 0" in line for line in logged)
    summary = srsly.read_json(tmp_path / "members.json")
    assert summary["kept"] == [0] and [m["steps"] for m in summary["members"]] == [STEPS, STEPS]
    members = [_transformer_weights(tmp_path / f"member-{k}" / "model-best") for k in range(2)]
    for key, value in _transformer_weights(best).items():  # the average takes in the kept member
        numpy.testing.assert_allclose(value, (members[0][key] + members[1][key]) / 2, rtol=1e-5, atol=1e-6)
    # a member without its finished marker (a run stopped part way) trains again
    (tmp_path / "member-1" / "finished.json").unlink()
    train_members(CONFIG_DIR / "bert-ner-cpu.cfg", tmp_path, 2, overrides)
    assert srsly.read_json(tmp_path / "members.json")["kept"] == [0]
    assert (tmp_path / "member-1" / "finished.json").is_file()
    # other overrides are another training: nothing is kept
    train_members(CONFIG_DIR / "bert-ner-cpu.cfg", tmp_path, 1, [*overrides, "--training.seed", "7"])
    assert srsly.read_json(tmp_path / "members.json")["kept"] == []
    assert (tmp_path / "member-0" / "model-best" / "meta.json").stat().st_mtime_ns != first


def test_finished_member_needs_the_same_command_files_and_model(tmp_path):
    data, member = tmp_path / "train.spacy", tmp_path / "member-0"
    data.write_bytes(b"one")
    command = member_command(Path("c.cfg"), member, 0, ["--paths.train", str(data)], -1)
    assert not finished_member(member, command)
    (member / "model-best").mkdir(parents=True)
    srsly.write_json(member / "finished.json", {"command": command[1:], "files": {str(data): sha256_of(data)}})
    assert finished_member(member, command)
    assert finished_member(member, ["/another/python", *command[1:]])  # another environment, same training
    assert not finished_member(
        member, member_command(Path("c.cfg"), member, 0, ["--paths.train", str(data), "--training.max_steps", "7"], -1)
    )
    data.write_bytes(b"two")
    assert not finished_member(member, command)  # the same command on other data
    (member / "finished.json").write_text("[1, 2")
    assert not finished_member(member, command)


def test_a_failing_member_names_its_log(tiny_bert, toy_corpus, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(CONFIG_DIR / "bert-ner-cpu.cfg"),
            str(tmp_path),
            *_cli_overrides(tiny_bert, toy_corpus),
            "--training.max_steps",
            "many",
        ],
    )
    assert result.exit_code == 1
    assert "failed (exit code" in result.output and "train.log" in result.output
    assert not (tmp_path / "model-best").exists()


def test_train_members_refuses_a_missing_config_and_no_members(tmp_path):
    with pytest.raises(ValueError, match="config file not found"):
        train_members(tmp_path / "nope.cfg", tmp_path / "out")
    with pytest.raises(ValueError, match="at least 1"):
        train_members(CONFIG_DIR / "bert-ner-cpu.cfg", tmp_path / "out", members=0)


def test_member_logs_refuses_what_is_not_a_members_json(tmp_path):
    (tmp_path / "members.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="not a members.json"):
        member_logs(tmp_path / "members.json")
    with pytest.raises(InputError, match="not a members.json"):
        member_logs(tmp_path / "missing.json")
