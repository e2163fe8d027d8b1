"""What every command shares: a failure is one unwrapped line and exit code 1."""

import os
import subprocess
import sys

import pytest
import typer

from spacy_bert_ner.cli._util import fail
from spacy_bert_ner.errors import InputError


def test_fail_prints_the_whole_message_on_one_line_and_exits_1(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    long_path = "data/" + "a-rather-long-folder-name/" * 6 + "train.conll"
    with pytest.raises(typer.Exit) as raised:
        fail(InputError(long_path, 12, "tag 'B-' has no label"))
    assert raised.value.exit_code == 1
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and f"{long_path}:12: tag 'B-' has no label" in lines[0]


def test_a_command_fails_with_one_line_in_a_narrow_terminal(tmp_path):
    missing = tmp_path / ("x" * 80) / "nope"
    result = subprocess.run(
        [sys.executable, "-m", "spacy_bert_ner", "serve", str(missing)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "30"},
    )
    assert result.returncode == 1
    assert f"{missing}: no such pipeline directory or installed package" in result.stdout
