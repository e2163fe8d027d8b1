"""Errors raised on bad input. They always say where (file and line) and what."""

from pathlib import Path
from typing import Optional, Sequence, Union


class InputError(ValueError):
    """A problem in an input file, located at ``path:line``.

    ``line`` is 1-based. For record formats (JSON Lines, Parquet) it is the
    record's line or row number; ``None`` when the problem is the whole file.
    """

    def __init__(self, path: Union[str, Path], line: Optional[int], message: str) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {message}")


class MissingDependency(ImportError):
    """An optional dependency a feature needs is not installed; the message
    names the feature, the missing modules and the extra that installs them."""


def require_extra(extra: str, modules: Sequence[str], what: str) -> None:
    """Import ``modules``, or raise :class:`MissingDependency` saying that
    ``what`` needs them and that ``pip install 'spacy-bert-ner[EXTRA]'``
    installs them. Cheap once imported (Python caches modules)."""
    missing = []
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            missing.append(module.split(".")[0])
    if missing:
        raise MissingDependency(
            f"{what} needs {', '.join(dict.fromkeys(missing))}, which is not installed: pip install 'spacy-bert-ner[{extra}]'"
        )
