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

Temperature scaling (:func:`fit_temperature`): the ``bert_ner`` confidence is
the mean probability of each entity token's chosen tag, and the component can
compute it from ``softmax(log p / T)`` instead of ``p``. ``T`` is fitted on
dev by minimising the log loss of the entity confidences against
correctness, a one-parameter fit that leaves the predicted entities
unchanged (the decoder's path does not depend on ``T``).
"""

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy
from spacy.language import Language
from spacy.tokens import Doc

from spacy_bert_ner.pipeline.bert_ner import CONFIDENCE_ATTR, chosen_tag_probs
from spacy_bert_ner.pipeline.decoding import tags_to_entities


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
    :func:`spacy_bert_ner.evaluation.evaluate.predict_gold_tokens`). ``skipped`` counts
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
    from spacy_bert_ner.evaluation.evaluate import predict_gold_tokens
    from spacy_bert_ner.formats.docbin import read_docbin

    if isinstance(gold, (str, Path)):
        gold_docs = list(read_docbin(gold, nlp.vocab))
    else:
        gold_docs = list(gold)
    pred_docs = predict_gold_tokens(nlp, gold_docs, batch_size)
    report = calibration_report(pred_docs, gold_docs, n_bins)
    report.extra["docs"] = len(gold_docs)
    return report


@dataclass
class EntityProbs:
    """The model's tag probabilities behind a set of predicted entities, for refitting confidences.

    ``rows`` stacks the probability rows of every entity token, ``ids`` the
    tag chosen for each row, ``entity`` the index of the entity each row
    belongs to; ``correct`` has one flag per entity.
    """

    rows: numpy.ndarray
    ids: numpy.ndarray
    entity: numpy.ndarray
    correct: numpy.ndarray

    def confidences(self, temperature: float = 1.0) -> numpy.ndarray:
        """Each entity's confidence at ``temperature`` (what ``bert_ner`` would assign)."""
        n = len(self.correct)
        if n == 0:
            return numpy.zeros((0,))
        chosen = chosen_tag_probs(self.rows, self.ids, temperature)
        lengths = numpy.bincount(self.entity, minlength=n)
        return numpy.clip(numpy.bincount(self.entity, weights=chosen, minlength=n) / lengths, 0.0, 1.0)


def collect_entity_probs(nlp: Language, gold_docs: Sequence[Doc], batch_size: int = 64) -> EntityProbs:
    """Run ``nlp`` up to its ``bert_ner`` over gold-tokenised copies of ``gold_docs`` and
    keep, for every predicted entity, its tokens' probability rows and correctness."""
    from spacy_bert_ner.evaluation.evaluate import predict_before_bert_ner

    gold_docs = list(gold_docs)
    pipe, docs = predict_before_bert_ner(nlp, gold_docs, batch_size)
    rows: List[numpy.ndarray] = []
    ids: List[numpy.ndarray] = []
    entity: List[numpy.ndarray] = []
    correct: List[bool] = []
    for i in range(0, len(docs), batch_size):
        batch = docs[i : i + batch_size]
        for doc, gold, probs in zip(batch, gold_docs[i : i + batch_size], pipe.predict(batch)):
            probs_np, tag_ids = pipe.decode_ids(doc, probs)
            gold_ents = {(e.start, e.end, e.label_) for e in gold.ents}
            for start, end, label in tags_to_entities([pipe.tags[t] for t in tag_ids]):
                rows.append(probs_np[start:end])
                ids.append(numpy.asarray(tag_ids[start:end], dtype="int64"))
                entity.append(numpy.full(end - start, len(correct), dtype="int64"))
                correct.append((start, end, label) in gold_ents)
    n_tags = len(pipe.tags)
    return EntityProbs(
        rows=numpy.concatenate(rows) if rows else numpy.zeros((0, n_tags)),
        ids=numpy.concatenate(ids) if ids else numpy.zeros((0,), dtype="int64"),
        entity=numpy.concatenate(entity) if entity else numpy.zeros((0,), dtype="int64"),
        correct=numpy.asarray(correct, dtype=bool),
    )


def log_loss(confidences: numpy.ndarray, correct: numpy.ndarray) -> float:
    """Mean binary log loss of confidences against correctness (clipped away from 0 and 1)."""
    if len(confidences) == 0:
        return 0.0
    c = numpy.clip(confidences, 1e-6, 1.0 - 1e-6)
    return float(-numpy.mean(numpy.where(correct, numpy.log(c), numpy.log1p(-c))))


def fit_temperature(entities: EntityProbs, low: float = 0.05, high: float = 20.0, steps: int = 241) -> Tuple[float, float, float]:
    """The temperature in ``[low, high]`` (a log-spaced grid, then a finer one around the
    best point) minimising the log loss. Returns ``(temperature, loss at 1.0, loss at it)``."""
    if len(entities.correct) == 0:
        raise ValueError("no predicted entities to fit a temperature on")
    if not 0 < low < 1 < high:
        raise ValueError(f"need 0 < low < 1 < high, got {low}, {high}")

    def loss(t: float) -> float:
        return log_loss(entities.confidences(t), entities.correct)

    grid = numpy.geomspace(low, high, steps)
    losses = [loss(t) for t in grid]
    best = int(numpy.argmin(losses))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    fine = numpy.geomspace(lo, hi, 41)
    fine_losses = [loss(t) for t in fine]
    k = int(numpy.argmin(fine_losses))
    temperature, fitted = float(fine[k]), fine_losses[k]
    base = loss(1.0)
    if base <= fitted:  # never worse than leaving the probabilities alone
        return 1.0, base, base
    return temperature, base, fitted


def set_model_temperature(model_dir: Union[str, Path], temperature: float, component: Optional[str] = None) -> str:
    """Write ``temperature`` into a saved pipeline's ``config.cfg`` (its first enabled ``bert_ner``
    or ``bert_ner_ensemble`` component, or ``component``). Returns the component's name. The
    weights are not touched."""
    from spacy_bert_ner.pipeline.bert_ner import BERT_NER_FACTORIES, enabled_components
    from spacy_bert_ner.pipeline.config import edit_config

    if not math.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a positive number, got {temperature}")

    def edit(config, path: Path) -> str:
        components = config.get("components", {})
        name = component
        if name is None:
            names = [n for n, _ in enabled_components(config, BERT_NER_FACTORIES)]
            if not names:
                raise ValueError(f"{path}: no enabled bert_ner component")
            name = names[0]
        elif components.get(name, {}).get("factory") not in BERT_NER_FACTORIES:
            raise ValueError(f"{path}: {name!r} is not a bert_ner component")
        components[name]["temperature"] = float(temperature)
        return name

    return edit_config(model_dir, edit)


def has_bert_ner(nlp: Language) -> bool:
    """Whether the pipeline has a component that gives entity confidences (``bert_ner`` or its ensemble)."""
    from spacy_bert_ner.pipeline.bert_ner import BERT_NER_FACTORIES

    return any(nlp.get_pipe_meta(name).factory in BERT_NER_FACTORIES for name in nlp.pipe_names)


@dataclass
class TemperatureFit:
    """What :func:`fit_pipeline_temperature` found: the JSON record, its Markdown and a one-line summary."""

    data: Dict
    markdown: str
    summary: str
    fitted: bool


def fit_pipeline_temperature(
    nlp: Language,
    model: str,
    data_path: Union[str, Path],
    n_bins: int = 10,
    batch_size: int = 64,
    update_model: bool = False,
) -> TemperatureFit:
    """Fit the temperature of the pipeline's ``bert_ner`` on ``data_path`` and
    report calibration before (temperature 1) and after; with ``update_model``
    write it into ``model``'s ``config.cfg``. A pipeline that predicts no entity
    there (an undertrained model) is not an error: nothing is fitted."""
    from spacy_bert_ner.formats.docbin import read_docbin
    from spacy_bert_ner.pipeline.bert_ner import bert_ner_name

    name = bert_ner_name(nlp)
    current = nlp.get_pipe(name).temperature
    entities = collect_entity_probs(nlp, list(read_docbin(data_path, nlp.vocab)), batch_size)
    if len(entities.correct) == 0:
        problem = f"{model} predicted no entities on {data_path}: nothing to fit a temperature on"
        data = dict(
            reliability_table([], [], n_bins).to_dict(),
            model=model,
            data=str(data_path),
            temperature=current,
            model_updated=False,
            skipped=problem,
        )
        return TemperatureFit(data, f"Not fitted: {problem}.\n", f"{problem}; the temperature stays {current:g}", False)
    temperature, loss_before, loss_after = fit_temperature(entities)
    before = reliability_table(entities.confidences(1.0).tolist(), entities.correct.tolist(), n_bins)
    after = reliability_table(entities.confidences(temperature).tolist(), entities.correct.tolist(), n_bins)
    if update_model:
        set_model_temperature(model, temperature, name)
    table = (
        after.markdown(title=f"Confidence calibration of {model} on {data_path}, temperature {temperature:.3f} (fitted)")
        + "\n"
        + before.markdown(title="Before: temperature 1.0 (the model's own probabilities)")
    )
    data = dict(
        after.to_dict(),
        model=model,
        data=str(data_path),
        temperature=temperature,
        log_loss=loss_after,
        before=dict(before.to_dict(), temperature=1.0, log_loss=loss_before),
        model_updated=update_model,
    )
    summary = (
        f"Temperature {temperature:.3f} (was {current:g}): log loss {loss_before:.4f} -> {loss_after:.4f}, "
        f"ECE {100 * before.ece:.2f} -> {100 * after.ece:.2f}"
    )
    return TemperatureFit(data, table, summary, True)
