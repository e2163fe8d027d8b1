"""Errors raised on bad input. They always say where (file and line) and what."""
from pathlib import Path
from typing import Optional, Union


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
