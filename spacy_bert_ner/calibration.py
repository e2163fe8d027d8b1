"""How well entity confidences match how often the entities are right.

Each predicted entity is one ``(confidence, correct)`` pair: ``correct`` when
the gold Doc has an entity with exactly the same start, end and label.
Confidences are grouped into equal-width bins over [0, 1]; bin ``b`` of ``n``
holds confidences in ``[b/n, (b+1)/n)`` (the last bin includes 1.0). For every
bin the table gives the number of entities, their mean confidence and their
accuracy (the fraction correct); the expected calibration error (ECE) is the
mean of ``|accuracy - mean confidence|`` over bins, weighted by bin size, and
the maximum calibration error (MCE) the largest such gap.

This measures the calibration of precision only: gold entities that were not
predicted (or were dropped by a confidence threshold) have no confidence and
do not appear. Confidences are read from ``span._.confidence`` (set by the
``bert_ner`` component), so predictions from other components count as
having no confidence and are skipped.
"""
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc

from .components import CONFIDENCE_ATTR


@dataclass
class CalibrationBin:
    """One row of a reliability table."""

    lower: float
    upper: float
    count: int
    mean_confidence: Optional[float]
    accuracy: Optional[float]

    @property
    def gap(self) -> Optional[float]:
        """``|accuracy - mean confidence|``, None for an empty bin."""
        if self.count == 0 or self.accuracy is None or self.mean_confidence is None:
            return None
        return abs(self.accuracy - self.mean_confidence)


@dataclass
class CalibrationReport:
    """A reliability table with its summary numbers."""

    bins: List[CalibrationBin]
    n_entities: int
    n_correct: int
    ece: float
    mce: float
    skipped: int = 0
    extra: Dict = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return self.n_correct / self.n_entities if self.n_entities else 0.0

    def to_dict(self) -> Dict:
        """A JSON-ready dict, with each bin's gap included."""
        data = asdict(self)
        for row, b in zip(data["bins"], self.bins):
            row["gap"] = b.gap
        data["accuracy"] = self.accuracy
        return data

    def markdown(self, title: str = "") -> str:
        """The table in Markdown, confidences and accuracies in percent."""
        lines = [f"### {title}", ""] if title else []
        lines += ["| confidence | entities | mean confidence | accuracy | gap |", "| --- | ---: | ---: | ---: | ---: |"]
        for b in self.bins:
            if b.count == 0:
                lines.append(f"| {b.lower:.2f}–{b.upper:.2f} | 0 | – | – | – |")
            else:
                lines.append(
                    f"| {b.lower:.2f}–{b.upper:.2f} | {b.count} | {100 * b.mean_confidence:.1f} | "
                    f"{100 * b.accuracy:.1f} | {100 * b.gap:.1f} |"
                )
        lines += [
            "",
            f"{self.n_entities} entities, {self.n_correct} correct ({100 * self.accuracy:.1f}%); "
            f"ECE {100 * self.ece:.2f}, MCE {100 * self.mce:.2f} (percentage points).",
        ]
        return "\n".join(lines) + "\n"


def reliability_table(confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> CalibrationReport:
    """The reliability table and ECE/MCE of ``(confidence, correct)`` pairs."""
    if len(confidences) != len(correct):
        raise ValueError(f"{len(confidences)} confidences but {len(correct)} correctness flags")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    members: List[List[Tuple[float, bool]]] = [[] for _ in range(n_bins)]
    for confidence, ok in zip(confidences, correct):
        c = float(confidence)
        if not 0.0 <= c <= 1.0:
            raise ValueError(f"confidence out of [0, 1]: {c}")
        members[min(int(c * n_bins), n_bins - 1)].append((c, bool(ok)))
    total = len(confidences)
    bins: List[CalibrationBin] = []
    ece = mce = 0.0
    for b, rows in enumerate(members):
        if rows:
            mean_confidence = sum(c for c, _ in rows) / len(rows)
            accuracy = sum(ok for _, ok in rows) / len(rows)
            gap = abs(accuracy - mean_confidence)
            ece += len(rows) / total * gap
            mce = max(mce, gap)
        else:
            mean_confidence = accuracy = None
        bins.append(CalibrationBin(b / n_bins, (b + 1) / n_bins, len(rows), mean_confidence, accuracy))
    return CalibrationReport(bins=bins, n_entities=total, n_correct=sum(bool(ok) for ok in correct), ece=ece, mce=mce)


def entity_outcomes(pred_docs: Iterable[Doc], gold_docs: Iterable[Doc]) -> Tuple[List[float], List[bool], int]:
    """``(confidences, correct, skipped)`` for all predicted entities.

    Predicted and gold Docs must have the same tokens (as from
    :func:`spacy_bert_ner.evaluate.predict_gold_tokens`). ``skipped`` counts
    predicted entities without a confidence.
    """
    confidences: List[float] = []
    correct: List[bool] = []
    skipped = 0
    pred_list, gold_list = list(pred_docs), list(gold_docs)
    if len(pred_list) != len(gold_list):
        raise ValueError(f"{len(pred_list)} predicted docs but {len(gold_list)} gold docs")
    for i, (pred, gold) in enumerate(zip(pred_list, gold_list)):
        if [t.text for t in pred] != [t.text for t in gold]:
            raise ValueError(f"doc {i}: predicted tokens differ from the gold tokens")
        gold_ents = {(e.start, e.end, e.label_) for e in gold.ents}
        for ent in pred.ents:
            confidence = ent._.get(CONFIDENCE_ATTR)
            if confidence is None:
                skipped += 1
                continue
            confidences.append(float(confidence))
            correct.append((ent.start, ent.end, ent.label_) in gold_ents)
    return confidences, correct, skipped


def calibration_report(pred_docs: Iterable[Doc], gold_docs: Iterable[Doc], n_bins: int = 10) -> CalibrationReport:
    """Reliability table of predicted Docs (with ``span._.confidence``) against gold Docs."""
    confidences, correct, skipped = entity_outcomes(pred_docs, gold_docs)
    report = reliability_table(confidences, correct, n_bins)
    report.skipped = skipped
    return report


def calibrate_pipeline(
    nlp: Language,
    gold: Union[str, Path, Iterable[Doc]],
    n_bins: int = 10,
    batch_size: int = 64,
) -> CalibrationReport:
    """Run ``nlp`` over gold-tokenised Docs (or a ``.spacy`` path) and report calibration."""
    from .docs import read_docbin
    from .evaluate import predict_gold_tokens

    if isinstance(gold, (str, Path)):
        gold_docs = list(read_docbin(gold, nlp.vocab))
    else:
        gold_docs = list(gold)
    pred_docs = predict_gold_tokens(nlp, gold_docs, batch_size)
    report = calibration_report(pred_docs, gold_docs, n_bins)
    report.extra["docs"] = len(gold_docs)
    return report
