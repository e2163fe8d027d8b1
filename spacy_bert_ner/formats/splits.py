"""Splitting sentences into train/dev/test and grouping sentences into Docs."""

import random
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, TypeVar

T = TypeVar("T")

SPLIT_NAMES = ("train", "dev", "test")


def parse_split(text: str) -> Tuple[float, ...]:
    """``"0.8,0.1,0.1"`` → ``(0.8, 0.1, 0.1)``; the parts must be ≥ 0 and sum to 1."""
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        raise ValueError(f"--split must be comma-separated fractions like 0.8,0.1,0.1, got {text!r}") from None
    if not 2 <= len(parts) <= 3 or any(p < 0 for p in parts) or abs(sum(parts) - 1.0) > 1e-6:
        raise ValueError(f"--split needs 2 or 3 fractions ≥ 0 that sum to 1, got {text!r}")
    return parts


def split_items(items: Sequence[T], fractions: Sequence[float], seed: int = 0) -> Dict[str, List[T]]:
    """Shuffle with a seeded RNG and cut by ``fractions``. Stable: the same input,
    fractions and seed always give the same split. Item order inside a part
    follows the input order."""
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n = len(items)
    bounds = [0]
    acc = 0.0
    for frac in fractions[:-1]:
        acc += frac
        bounds.append(round(acc * n))
    bounds.append(n)
    parts: Dict[str, List[T]] = {}
    for name, lo, hi in zip(SPLIT_NAMES, bounds, bounds[1:]):
        parts[name] = [items[i] for i in sorted(order[lo:hi])]
    return parts


def group(items: Iterable[T], size: int, key=None) -> Iterator[List[T]]:
    """Group consecutive items into lists of at most ``size``.

    With ``key``, a new group also starts whenever the key changes (documents).
    ``size <= 0`` means no size limit.
    """
    current: List[T] = []
    current_key: Optional[object] = None
    for item in items:
        k = key(item) if key else None
        if current and ((size > 0 and len(current) >= size) or (key and k != current_key)):
            yield current
            current = []
        current.append(item)
        current_key = k
    if current:
        yield current
