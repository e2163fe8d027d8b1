"""Tag schemes: IOB1, IOB2 and BILOU/BIOES. Detection, decoding to entity
spans with counted repairs, and encoding back. Knows nothing about files or spaCy.

Decoding follows conlleval/seqeval's default behaviour for sequences that are
not well formed: an ``I-X`` (or ``L-X``/``E-X``) that does not continue an
``X`` entity starts a new entity.
"""

from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Sequence, Tuple

SCHEMES = ("IOB1", "IOB2", "BILOU")
# prefix letters accepted on input, mapped to BILOU roles
_ROLE = {"B": "B", "I": "I", "L": "L", "E": "L", "U": "U", "S": "U"}

Span = Tuple[int, int, str]  # start, end (exclusive), label


class TagError(ValueError):
    """A tag that cannot be read or a sequence that breaks the scheme (strict mode).

    ``index`` is the token's position in the sentence.
    """

    def __init__(self, index: int, message: str) -> None:
        self.index = index
        super().__init__(message)


def split_tag(tag: str) -> Tuple[str, str]:
    """``"B-PER"`` → ``("B", "PER")``; ``"O"`` → ``("O", "")``."""
    if tag == "O":
        return "O", ""
    if len(tag) > 2 and tag[1] in "-_" and tag[0] in _ROLE:
        return tag[0], tag[2:]
    raise ValueError(f"unknown tag {tag!r}: expected 'O' or a prefix B-, I-, L-, E-, U- or S- followed by a label")


@dataclass
class SchemeStats:
    """What detection saw over a whole file."""

    bilou_prefixes: int = 0
    b_after_outside: int = 0  # B-X at start or after O / another type: IOB2 style
    i_starts: int = 0  # I-X at start or after O / another type: IOB1 style (or IOB2 error)

    def update(self, tags: Sequence[str]) -> None:
        prev_role, prev_label = "O", ""
        for i, tag in enumerate(tags):
            try:
                role, label = split_tag(tag)
            except ValueError as e:
                raise TagError(i, str(e)) from None
            if role in "LEUS":
                self.bilou_prefixes += 1
            continuing = prev_role in ("B", "I") and prev_label == label
            if role == "B" and not continuing:
                self.b_after_outside += 1
            elif role == "I" and not continuing:
                self.i_starts += 1
            prev_role, prev_label = role, label

    def scheme(self) -> str:
        if self.bilou_prefixes:
            return "BILOU"
        if self.i_starts and not self.b_after_outside:
            return "IOB1"
        return "IOB2"


def detect_scheme(tag_sequences: Iterable[Sequence[str]]) -> str:
    stats = SchemeStats()
    for tags in tag_sequences:
        stats.update(tags)
    return stats.scheme()


@dataclass
class DecodeResult:
    spans: List[Span]
    repairs: List[Tuple[int, str]] = field(default_factory=list)  # (token index, what was done)


def tags_to_spans(tags: Sequence[str], scheme: str = "IOB2", strict: bool = False) -> DecodeResult:
    """Decode tags into ``(start, end, label)`` spans.

    With ``strict=True`` a sequence that needs a repair raises :class:`TagError`.
    In IOB1 an ``I-X`` after ``O`` is the normal start of an entity, not a repair.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    spans: List[Span] = []
    repairs: List[Tuple[int, str]] = []
    start: Optional[int] = None
    label = ""

    def close(end: int, ended_by_last: bool = False) -> None:
        nonlocal start
        if start is not None:
            if scheme == "BILOU" and not ended_by_last:
                repair(end - 1, f"{label} entity started at token {start} is not ended by L-/E-; ended it here")
            spans.append((start, end, label))
        start = None

    def repair(i: int, msg: str) -> None:
        if strict:
            raise TagError(i, msg)
        repairs.append((i, msg))

    for i, tag in enumerate(tags):
        try:
            role, lab = split_tag(tag)
        except ValueError as e:
            raise TagError(i, str(e)) from None
        role = _ROLE.get(role, role)
        if scheme != "BILOU" and role in ("L", "U"):
            repair(i, f"{tag} is not an {scheme} tag; read as BILOU")
        inside = start is not None and lab == label
        if role == "O":
            close(i)
        elif role == "B":
            close(i)
            start, label = i, lab
        elif role == "I":
            if not inside:
                close(i)
                if scheme != "IOB1":
                    repair(i, f"{tag} does not continue a {lab} entity; started a new one")
                start, label = i, lab
        elif role == "L":
            if not inside:
                close(i)
                repair(i, f"{tag} does not continue a {lab} entity; started a new one")
                start, label = i, lab
            close(i + 1, ended_by_last=True)
        elif role == "U":
            close(i)
            start, label = i, lab
            close(i + 1, ended_by_last=True)
    close(len(tags))
    return DecodeResult(spans, repairs)


def spans_to_tags(spans: Iterable[Span], length: int, scheme: str = "IOB2") -> List[str]:
    """Encode non-overlapping spans as tags in IOB2 (default), IOB1 or BILOU."""
    tags = ["O"] * length
    prev_end, prev_label = -1, None
    for start, end, label in sorted(spans):
        if scheme == "BILOU":
            if end - start == 1:
                tags[start] = f"U-{label}"
            else:
                tags[start] = f"B-{label}"
                for i in range(start + 1, end - 1):
                    tags[i] = f"I-{label}"
                tags[end - 1] = f"L-{label}"
        else:
            first = "B" if scheme == "IOB2" or (prev_end == start and prev_label == label) else "I"
            tags[start] = f"{first}-{label}"
            for i in range(start + 1, end):
                tags[i] = f"I-{label}"
        prev_end, prev_label = end, label
    return tags
