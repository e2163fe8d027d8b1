"""What every format reader yields: a :class:`Sentence` with its source lines."""

from dataclasses import dataclass, field
from typing import List, Optional


@dataclass
class Sentence:
    """One sentence as read from a file: gold words and their raw tags.

    ``lines`` holds the 1-based source line (or record) of every token so that
    later stages can still point at the input when something is wrong.
    """

    words: List[str]
    tags: List[str]
    path: str = ""
    lines: List[int] = field(default_factory=list)
    doc_id: Optional[str] = None

    def __len__(self) -> int:
        return len(self.words)
