"""BILUO tag sets and constrained Viterbi decoding for token-classification NER.

A tag set is ``["O"]`` followed by ``B-``, ``I-``, ``L-``, ``U-`` for every
entity label (labels sorted). Which tag may follow which is fixed by BILUO:

* after ``O``, ``L-X`` or ``U-X`` (or at the start): ``O``, ``B-Y``, ``U-Y``
* after ``B-X`` or ``I-X``: ``I-X``, ``L-X`` (same label)
* at the end: ``O``, ``L-X``, ``U-X``

:func:`viterbi` finds the highest-scoring sequence under these constraints,
so every decoded sequence converts to a well-formed list of entities.
Everything here is plain numpy on the CPU; callers convert device arrays
first (``model.ops.to_numpy``).
"""

from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy

OUTSIDE = "O"
PREFIXES = ("B", "I", "L", "U")
# Probabilities are floored at this value before taking the log, so that every
# valid path keeps a finite score and only forbidden transitions are -inf.
MIN_PROB = 1e-30

TagSpan = Tuple[int, int, str]


def make_tags(labels: Iterable[str]) -> List[str]:
    """The BILUO tag set for entity ``labels``: ``O`` first, then B/I/L/U per sorted label."""
    tags = [OUTSIDE]
    for label in sorted(set(labels)):
        if not label:
            raise ValueError(f"invalid entity label: {label!r}")
        tags.extend(f"{prefix}-{label}" for prefix in PREFIXES)
    return tags


def split_tag(tag: str) -> Tuple[str, Optional[str]]:
    """``"B-PER"`` → ``("B", "PER")``; ``"O"`` → ``("O", None)``."""
    if tag == OUTSIDE:
        return OUTSIDE, None
    prefix, sep, label = tag.partition("-")
    if not sep or prefix not in PREFIXES or not label:
        raise ValueError(f"not a BILUO tag: {tag!r}")
    return prefix, label


def transition_constraints(tags: Sequence[str]) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Boolean masks of what BILUO allows: ``(transitions, start, end)``.

    ``transitions[i, j]`` is True when tag ``j`` may follow tag ``i``;
    ``start[j]`` / ``end[j]`` when tag ``j`` may begin / end a sequence.
    """
    parsed = [split_tag(t) for t in tags]
    n = len(tags)
    transitions = numpy.zeros((n, n), dtype=bool)
    start = numpy.zeros((n,), dtype=bool)
    end = numpy.zeros((n,), dtype=bool)
    for j, (prefix_j, label_j) in enumerate(parsed):
        start[j] = prefix_j in (OUTSIDE, "B", "U")
        end[j] = prefix_j in (OUTSIDE, "L", "U")
        for i, (prefix_i, label_i) in enumerate(parsed):
            if prefix_i in ("B", "I"):
                # inside an entity: continue or close the same label
                transitions[i, j] = prefix_j in ("I", "L") and label_j == label_i
            else:
                # outside an entity: anything that may start a sequence
                transitions[i, j] = bool(start[j])
    return transitions, start, end


def additive_mask(allowed: numpy.ndarray) -> numpy.ndarray:
    """0.0 where allowed, -inf where forbidden (to add to log-scores)."""
    return numpy.where(allowed, 0.0, -numpy.inf)


class BiluoDecoder:
    """Constrained Viterbi over a fixed BILUO tag set (masks built once)."""

    def __init__(self, tags: Sequence[str]):
        if not tags or tags[0] != OUTSIDE:
            raise ValueError("the tag set must start with 'O'")
        self.tags = list(tags)
        allowed, start, end = transition_constraints(self.tags)
        self.allowed, self.start_allowed, self.end_allowed = allowed, start, end
        self.transitions = additive_mask(allowed)
        self.start = additive_mask(start)
        self.end = additive_mask(end)

    def decode(self, log_probs: numpy.ndarray) -> List[int]:
        """The best valid tag-id sequence for an ``(n_tokens, n_tags)`` score matrix.

        The scores are per token and the constraints only forbid, so when each
        token's own best tag already makes a valid sequence, that sequence is
        the Viterbi path: it is returned without running Viterbi (most
        sentences of a trained model).
        """
        scores = numpy.asarray(log_probs)
        if scores.ndim == 2 and len(scores) and numpy.isfinite(scores).all():
            path = scores.argmax(axis=1)
            if (
                self.start_allowed[path[0]]
                and self.end_allowed[path[-1]]
                and self.allowed[path[:-1], path[1:]].all()
                and _unique_maxima(scores, path)
            ):
                return path.tolist()
        return viterbi(log_probs, self.transitions, self.start, self.end)

    def decode_probs(self, probs: numpy.ndarray, sent_starts: Optional[Sequence[bool]] = None) -> List[int]:
        """Decode a probability matrix, each sentence on its own.

        ``sent_starts[i]`` marks token ``i`` as a sentence start; entities then
        never cross a sentence boundary. ``None`` decodes the whole sequence.
        """
        log_probs = clamped_log(probs)
        bounds = segment_bounds(len(log_probs), sent_starts)
        ids: List[int] = []
        for start, end in bounds:
            ids.extend(self.decode(log_probs[start:end]))
        return ids


def _unique_maxima(scores: numpy.ndarray, path: numpy.ndarray) -> bool:
    """Whether each token's best score is strictly above its others (no tie for
    Viterbi to break another way)."""
    best = scores[numpy.arange(len(path)), path]
    return int((scores == best[:, None]).sum()) == len(path)


def clamped_log(probs: numpy.ndarray) -> numpy.ndarray:
    """The float64 log of a probability matrix, probabilities below ``MIN_PROB``
    raised to it first, so no score is ``-inf``."""
    return numpy.log(numpy.maximum(numpy.asarray(probs, dtype="float64"), MIN_PROB))


def segment_bounds(n: int, sent_starts: Optional[Sequence[bool]] = None) -> List[Tuple[int, int]]:
    """``(start, end)`` token ranges that begin at each sentence start (one range if none)."""
    if n == 0:
        return []
    starts = [0]
    if sent_starts is not None:
        starts += [i for i in range(1, n) if sent_starts[i]]
    return list(zip(starts, starts[1:] + [n]))


def viterbi(
    log_probs: numpy.ndarray,
    transitions: numpy.ndarray,
    start: numpy.ndarray,
    end: numpy.ndarray,
) -> List[int]:
    """Highest-scoring tag sequence under additive transition/start/end scores.

    ``log_probs`` is ``(n_tokens, n_tags)``; ``transitions[i, j]`` is added when
    tag ``j`` follows tag ``i`` (``-inf`` forbids it); ``start``/``end`` are added
    at the first/last token. A path's score is the sum of its emissions and
    those terms. ``-inf`` (or NaN) emissions are treated as a very low finite
    score, so whenever any allowed path exists the result is an allowed path.
    """
    scores = numpy.asarray(log_probs, dtype="float64")
    n, n_tags = scores.shape if scores.ndim == 2 else (0, len(start))
    if n == 0:
        return []
    scores = numpy.nan_to_num(scores, nan=-1e30, neginf=-1e30, posinf=1e30)
    best = scores[0] + start
    backpointers = numpy.zeros((n, n_tags), dtype="int64")
    columns = numpy.arange(n_tags)
    for i in range(1, n):
        # candidates[p, c]: best path ending in p at i-1, then c at i
        candidates = best[:, None] + transitions
        backpointers[i] = candidates.argmax(axis=0)
        best = candidates[backpointers[i], columns] + scores[i]
    best = best + end
    path = [int(best.argmax())]
    for i in range(n - 1, 0, -1):
        path.append(int(backpointers[i, path[-1]]))
    path.reverse()
    return path


def tags_to_entities(tags: Sequence[str]) -> List[TagSpan]:
    """``(start, end, label)`` token spans of a valid BILUO sequence.

    Raises ``ValueError`` on an invalid sequence (which constrained decoding
    never produces).
    """
    entities: List[TagSpan] = []
    open_start: Optional[int] = None
    open_label: Optional[str] = None
    for i, tag in enumerate(tags):
        prefix, label = split_tag(tag)
        if open_label is not None:
            if prefix not in ("I", "L") or label != open_label:
                raise ValueError(f"invalid BILUO sequence at token {i}: {tag!r} after an open {open_label!r}")
            if prefix == "L":
                entities.append((open_start, i + 1, open_label))  # type: ignore[arg-type]
                open_start = open_label = None
        elif prefix == "B":
            open_start, open_label = i, label
        elif prefix == "U":
            entities.append((i, i + 1, label))  # type: ignore[arg-type]
        elif prefix != OUTSIDE:
            raise ValueError(f"invalid BILUO sequence at token {i}: {tag!r} outside an entity")
    if open_label is not None:
        raise ValueError(f"invalid BILUO sequence: entity {open_label!r} not closed")
    return entities


def tag_index(tags: Sequence[str]) -> Dict[str, int]:
    return {tag: i for i, tag in enumerate(tags)}
