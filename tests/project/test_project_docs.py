"""README.md's workflow section is `spacy project document` output: keep it in sync with project.yml."""

from pathlib import Path

import pytest

from ..util import REPO

START = "<!-- WEASEL: AUTO-GENERATED DOCS START (do not remove) -->"
END = "<!-- WEASEL: AUTO-GENERATED DOCS END (do not remove) -->"
FIX = "python -m spacy project document . --output README.md"


def generated_section(tmp_path: Path) -> str:
    """What `python -m spacy project document .` writes (spaCy's command is weasel's)."""
    from weasel.cli.document import project_document

    out = tmp_path / "section.md"
    project_document(REPO, out)
    return out.read_text(encoding="utf8")


def between_markers(text: str) -> str:
    """The text between the start and end markers, the marker lines excluded."""
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def test_generated_section_has_every_command_and_workflow(tmp_path):
    import srsly

    section = generated_section(tmp_path)
    assert section.startswith(START) and section.rstrip().endswith(END)
    project = srsly.read_yaml(REPO / "project.yml")
    for command in project["commands"]:
        assert f"| `{command['name']}` |" in section
    for name in project["workflows"]:
        assert f"| `{name}` |" in section


def test_readme_section_is_in_sync_with_project_yml(tmp_path):
    readme = REPO / "README.md"
    if not readme.exists():
        pytest.skip("no README.md yet")
    text = readme.read_text(encoding="utf8")
    if START not in text or END not in text:
        pytest.skip(f"README.md has no auto-generated section (markers {START!r} ... {END!r}); add it with: {FIX}")
    expected = between_markers(generated_section(tmp_path))
    if between_markers(text) != expected:
        pytest.fail(
            "README.md's auto-generated project section is out of sync with project.yml. "
            f"Regenerate it (only the part between the markers is replaced) with:\n    {FIX}",
            pytrace=False,
        )


def test_sync_check_ignores_the_hand_written_parts_and_finds_stale_ones(tmp_path):
    section = generated_section(tmp_path)
    readme = f"# My project\n\nHand-written intro.\n\n{section}\n## More prose\n"
    assert between_markers(readme) == between_markers(section)
    stale = readme.replace("| `report` |", "| `old-report` |")
    assert between_markers(stale) != between_markers(section)
