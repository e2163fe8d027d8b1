"""Every pointer names something that exists: the links of the README and the
docs (files and #anchors), and the repository paths and ``spacy_bert_ner``
modules named in backticks there and in the code's docstrings, configs and
project.yml."""

import glob
import importlib
import importlib.util
import re
from pathlib import Path
from typing import Iterable, List, Set

import pytest

from ..util import REPO

# The folders a backticked path is checked under; others (corpus/, training/,
# packages/, assets/*) are what the workflow writes, not the repository.
TRACKED = ("spacy_bert_ner", "benchmarks", "metrics", "docs", "configs", "scripts", "tests", ".ci")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
TICKED = re.compile(r"`{1,2}([^`\s]+?)`{1,2}")
REGISTERED = re.compile(r"\.v\d+$")  # registry names such as spacy_bert_ner.Adam.v1, not modules


def markdown_files() -> List[Path]:
    return [
        REPO / "README.md",
        REPO / "assets" / "README.md",
        *sorted((REPO / "docs").rglob("*.md")),
        *sorted((REPO / "metrics").rglob("*.md")),
    ]


def code_files() -> List[Path]:
    patterns = ("spacy_bert_ner/**/*.py", "benchmarks/*.py", "scripts/*.py", "configs/*.cfg", "project.yml", ".ci/run")
    return sorted({path for pattern in patterns for path in REPO.glob(pattern)})


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> Set[str]:
    return {github_slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", path.read_text(encoding="utf8"), re.M)}


def module_exists(dotted: str) -> bool:
    """Whether ``dotted`` is a module, or an attribute reached from one."""
    parts = dotted.split(".")
    for k in range(len(parts), 0, -1):
        name = ".".join(parts[:k])
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            continue
        obj = importlib.import_module(name)
        for attribute in parts[k:]:
            if not hasattr(obj, attribute):
                return False
            obj = getattr(obj, attribute)
        return True
    return False


def braces(pattern: str) -> List[str]:
    """A shell brace pattern's expansions: ``a/{b,c}.json`` is ``a/b.json``, ``a/c.json``."""
    match = re.search(r"\{([^{}]*,[^{}]*)\}", pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [expanded for choice in match.group(1).split(",") for expanded in braces(head + choice + tail)]


def dead_ticked(text: str) -> Iterable[str]:
    """The backticked repository paths and ``spacy_bert_ner`` names in ``text`` that do not exist."""
    for match in TICKED.finditer(text):
        target = match.group(1).rstrip(".,:;)")
        first = target.split("/")[0]
        if first in TRACKED and "/" in target:
            path = target.split(":")[0].split("#")[0]
            if re.search(r"[<>$]|\{\w*\}", path):
                continue  # a placeholder, e.g. member-{k}, <name>
            if not all(glob.glob(str(REPO / p)) for p in braces(path)):
                yield target
        elif first.startswith("spacy_bert_ner.") and not REGISTERED.search(target):
            if not module_exists(target.split("(")[0]):
                yield target


def dead_links(path: Path) -> Iterable[str]:
    for match in LINK.finditer(path.read_text(encoding="utf8")):
        target = match.group(1)
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists():
            yield target
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            yield target


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_markdown_links_and_paths_exist(path):
    text = path.read_text(encoding="utf8")
    dead = [*dead_links(path), *dead_ticked(text)]
    assert not dead, f"{path.relative_to(REPO)} points at what does not exist: {dead}"


def test_paths_named_in_code_and_configs_exist():
    dead = [
        f"{path.relative_to(REPO)}: {target}" for path in code_files() for target in dead_ticked(path.read_text(encoding="utf8"))
    ]
    assert not dead, f"dead pointers: {dead}"


def test_the_checker_finds_dead_pointers(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n[ok](page.md#title) [gone](missing.md) [bad anchor](#nowhere)\n"
        "`docs/no-such-page.md` `spacy_bert_ner.no_such_module` `spacy_bert_ner.Adam.v1` `training/x/model-best`\n",
        encoding="utf8",
    )
    assert list(dead_links(page)) == ["missing.md", "#nowhere"]
    assert list(dead_ticked(page.read_text())) == ["docs/no-such-page.md", "spacy_bert_ner.no_such_module"]
    assert braces("metrics/{a,b}-{x,y}.json") == ["metrics/a-x.json", "metrics/a-y.json", "metrics/b-x.json", "metrics/b-y.json"]
