"""The ``bert_ner`` pipeline component: token-classification NER with confidences.

A transformer listener (optionally with casing features) feeds a per-token
softmax over BILUO tags; constrained Viterbi turns the probabilities into a
valid tag sequence, so ``doc.ents`` is always well formed. Every entity gets a
confidence in [0, 1].
"""

from itertools import islice
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model
from thinc.types import Floats2d

from spacy_bert_ner.pipeline import layers  # noqa: F401  (registers the architectures DEFAULT_MODEL names)
from spacy_bert_ner.pipeline.decoding import OUTSIDE, BiluoDecoder, make_tags, tag_index, tags_to_entities
from spacy_bert_ner.pipeline.lean import LazyDocData, lean_plan, lean_predict
from spacy_bert_ner.pipeline.soft_targets import aligned_targets, distillation_term

CONFIDENCE_ATTR = "confidence"
# span group attrs: the least confident token's probability of its tag, and an ensemble's members' disagreement
LEAST_ATTR = "least_token_confidence"
DISAGREEMENT_ATTR = "disagreement"
# Factories whose components decode BILUO tag probabilities like bert_ner (ensemble.py adds the second).
BERT_NER_FACTORIES = ("bert_ner", "bert_ner_ensemble")
DEFAULT_SPANS_KEY = "bert_ner"
_MISSING_TAGS = (None, "-", "")

DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "spacy_bert_ner.TokenClassifier.v1"
dropout = 0.1
nO = null

[model.tok2vec]
@architectures = "spacy-transformers.TransformerListener.v1"
grad_factor = 1.0
upstream = "*"
pooling = {"@layers":"reduce_mean.v1"}
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]


def register_extensions() -> None:
    """Register ``Span._.confidence`` unless it already exists (safe to call repeatedly).

    An existing extension of that name made by someone else with a getter or
    method (so not assignable) is an error, not silently replaced.
    """
    if Span.has_extension(CONFIDENCE_ATTR):
        default, method, getter, setter = Span.get_extension(CONFIDENCE_ATTR)
        if (getter is not None and setter is None) or method is not None:
            raise ValueError(
                f"Span._.{CONFIDENCE_ATTR} is already registered as a read-only getter or method; "
                "the bert_ner component needs to assign it"
            )
        return
    Span.set_extension(CONFIDENCE_ATTR, default=None)


register_extensions()


# What bert_ner and bert_ner_ensemble set, their decoding settings and how spaCy weighs their scores.
ASSIGNS = ["doc.ents", "token.ent_iob", "token.ent_type", "doc.spans", f"span._.{CONFIDENCE_ATTR}"]
DECODING_CONFIG = {
    "threshold": 0.0,
    "temperature": 1.0,
    "spans_key": DEFAULT_SPANS_KEY,
    "keep_trf_data": False,
    "scorer": {"@scorers": "spacy.ner_scorer.v1"},
}
# How a teacher's probabilities on the training Docs enter the loss (spacy_bert_ner.pipeline.soft_targets)
DISTILLATION_CONFIG = {"weight": 0.5, "temperature": 2.0}
SCORE_WEIGHTS = {"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None}


@Language.factory(
    "bert_ner",
    assigns=ASSIGNS,
    default_config={"model": DEFAULT_MODEL, **DECODING_CONFIG, "distillation": DISTILLATION_CONFIG},
    default_score_weights=SCORE_WEIGHTS,
)
def make_bert_ner(
    nlp: Language,
    name: str,
    model: Model[List[Doc], List[Floats2d]],
    threshold: float,
    spans_key: Optional[str],
    scorer: Optional[Callable],
    temperature: float = 1.0,
    keep_trf_data: bool = False,
    distillation: Optional[Dict[str, float]] = None,
) -> "BertNER":
    """Create a ``bert_ner`` component (see :class:`BertNER`)."""
    return BertNER(
        nlp.vocab,
        model,
        name,
        threshold=threshold,
        temperature=temperature,
        spans_key=spans_key,
        keep_trf_data=keep_trf_data,
        scorer=scorer,
        distillation=distillation,
    )


class BertNER(TrainablePipe):
    """Token-classification NER over BILUO tags with constrained Viterbi decoding.

    * The tag set is ``O`` plus ``B/I/L/U-<label>`` for every entity label;
      labels come from the training data in :meth:`initialize` (or its
      ``labels`` argument) and are saved in ``cfg["labels"]``.
    * Decoding: constrained Viterbi on the log-probabilities, so the tag
      sequence is always valid BILUO; when the Doc has sentence boundaries
      each sentence is decoded separately, so no entity crosses one.
    * Confidence: the mean, over the entity's tokens, of the softmax
      probability of the tag Viterbi chose for that token (each token's
      marginal probability of its tag under the model's independent
      per-token softmax output). It lies in [0, 1].
    * Temperature: confidences are computed from the probabilities
      softened (``temperature`` > 1) or sharpened (< 1) as
      ``softmax(log p / temperature)``, the temperature scaling of Guo et
      al. (2017). It changes the confidences only: the Viterbi path is the
      same at every temperature (each token's normaliser is shared by all its
      tags). ``spacy-bert-ner calibrate --fit-temperature`` fits it on dev.
    * Output: ``doc.ents`` (replacing any previous entities), each entity's
      confidence as ``span._.confidence``, and, unless ``spans_key`` is None,
      the same entities in ``doc.spans[spans_key]`` with their confidences in
      ``doc.spans[spans_key].attrs["scores"]`` (spancat's convention), and
      the least confident token's probability of its tag (entity or ``O``)
      in ``attrs["least_token_confidence"]``, what ``predict --rank`` orders by.
      Entities whose confidence is below ``threshold`` are dropped from both.
    * ``doc._.trf_data`` (the transformer's wordpieces and hidden states,
      about 900 times the size of the text) is emptied once the entities are
      set, so predicted Docs stay small in memory and on disk; set
      ``keep_trf_data`` when something after this component reads it.
    * Training: softmax cross-entropy against the gold BILUO tags of
      ``example.reference``, aligned to the predicted tokens; tokens with
      no gold tag (missing or misaligned) are left out of the loss, which is
      the mean over the labelled tokens of the batch. On a corpus that
      carries a teacher's probabilities (``spacy-bert-ner distill``) it is
      mixed with the distillation term: ``distillation`` holds its ``weight``
      (0 turns it off) and ``temperature``.
    """

    def __init__(
        self,
        vocab: Vocab,
        model: Model[List[Doc], List[Floats2d]],
        name: str = "bert_ner",
        *,
        threshold: float = 0.0,
        temperature: float = 1.0,
        spans_key: Optional[str] = DEFAULT_SPANS_KEY,
        keep_trf_data: bool = False,
        scorer: Optional[Callable] = None,
        distillation: Optional[Dict[str, float]] = None,
    ) -> None:
        register_extensions()
        self.vocab = vocab
        self.keep_trf_data = keep_trf_data
        self.distillation = check_distillation({**DISTILLATION_CONFIG, **(distillation or {})})
        self._teacher_columns: Dict = {}
        self.model = model
        self.name = name
        self.cfg: Dict[str, Any] = {"labels": []}
        self.threshold = threshold
        self.temperature = temperature
        self.spans_key = spans_key
        self.scorer = scorer
        self._decoder: Optional[BiluoDecoder] = None
        self._tags: Tuple[Tuple[str, ...], Tuple[str, ...]] = ((), ())
        self._decoder_tags: Tuple[str, ...] = ()
        # the lean inference path (spacy_bert_ner.pipeline.lean) where it applies; False always runs the model
        self.lean = True
        self._lean_plan: Any = False  # computed on first use: a LeanPlan, or None when the model has none
        self.lean_batches = 0  # batches predicted by the lean path

    # --- labels and tags -------------------------------------------------------

    @property
    def threshold(self) -> float:
        """Entities with a confidence below this are dropped (0.0 keeps all)."""
        return self._threshold

    @threshold.setter
    def threshold(self, value: float) -> None:
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {value}")
        self._threshold = float(value)

    @property
    def temperature(self) -> float:
        """Confidences use ``softmax(log p / temperature)``; 1.0 leaves the model's probabilities as they are."""
        return self._temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        if not float(value) > 0.0 or not numpy.isfinite(float(value)):
            raise ValueError(f"temperature must be a positive number, got {value}")
        self._temperature = float(value)

    @property
    def labels(self) -> Tuple[str, ...]:
        """The entity labels (sorted)."""
        return tuple(self.cfg["labels"])

    @property
    def label_data(self) -> List[str]:
        return list(self.labels)

    @property
    def tags(self) -> Tuple[str, ...]:
        """The BILUO tag set: ``O``, then ``B/I/L/U-`` for each label; index = model output column."""
        labels = self.labels
        cached = getattr(self, "_tags", None)  # subclasses (the ensemble) have their own __init__
        if cached is None or cached[0] != labels:
            cached = self._tags = (labels, tuple(make_tags(labels)))
        return cached[1]

    @property
    def decoder(self) -> BiluoDecoder:
        tags = self.tags
        if self._decoder is None or getattr(self, "_decoder_tags", None) is not tags:
            self._decoder, self._decoder_tags = BiluoDecoder(tags), tags
        return self._decoder

    def add_label(self, label: str) -> int:
        """Add an entity label before the model is initialized. Returns 1 if added, 0 if known."""
        if not isinstance(label, str) or not label or label == OUTSIDE:
            raise ValueError(f"invalid entity label: {label!r}")
        if label in self.cfg["labels"]:
            return 0
        if self._output_layer().has_param("W"):
            raise ValueError(
                f"cannot add label {label!r} to the initialized component {self.name!r}; pass all labels to initialize() instead"
            )
        self.cfg["labels"] = sorted(set(self.cfg["labels"]) | {label})
        self.vocab.strings.add(label)
        return 1

    def _output_layer(self) -> Model:
        if self.model.has_ref("output_layer"):
            return self.model.get_ref("output_layer")
        return self.model.layers[-1]

    # --- prediction -----------------------------------------------------------

    def predict(self, docs: Iterable[Doc]) -> List[Floats2d]:
        """Tag probabilities, one ``(len(doc), n_tags)`` array per Doc (not decoded yet).

        Empty Docs are kept out of the model (some token-vector layers fail
        on them) and get a ``(0, n_tags)`` array.
        """
        docs = list(docs)
        non_empty = [doc for doc in docs if len(doc)]
        predicted_list = self._predict_non_empty(non_empty) if non_empty else []
        if len(non_empty) == len(docs):
            return predicted_list
        predicted = iter(predicted_list)
        n_tags = len(self.tags)
        return [next(predicted) if len(doc) else self.model.ops.alloc2f(0, n_tags) for doc in docs]

    def _predict_non_empty(self, docs: List[Doc]) -> List[Floats2d]:
        """The model's output for non-empty Docs: by the lean path when the
        transformer's output for them is in lazy views (the same values, see
        :mod:`spacy_bert_ner.pipeline.lean`), else by running the model."""
        if self._lean_plan is False:
            self._lean_plan = lean_plan(self.model)
        scores = lean_predict(self._lean_plan, docs) if self.lean else None
        if scores is None:
            return self.model.predict(docs)
        self.lean_batches += 1
        return scores

    def decode(self, doc: Doc, probs: Floats2d) -> List[Tuple[int, int, str, float]]:
        """``(start, end, label, confidence)`` for every entity of the best valid tag sequence."""
        return self.decode_with_tokens(doc, probs)[0]

    def decode_with_tokens(self, doc: Doc, probs: Floats2d) -> Tuple[List[Tuple[int, int, str, float]], numpy.ndarray]:
        """:meth:`decode`'s entities, and each token's tempered probability of
        the tag chosen for it (entities and ``O`` alike)."""
        probs_np, ids = self.decode_ids(doc, probs)
        chosen = chosen_tag_probs(probs_np, ids, self.temperature)
        entities = []
        for start, end, label in tags_to_entities([self.tags[i] for i in ids]):
            confidence = float(numpy.clip(chosen[start:end].mean(), 0.0, 1.0))
            entities.append((start, end, label, confidence))
        return entities, chosen

    def decode_ids(self, doc: Doc, probs: Floats2d) -> Tuple[numpy.ndarray, List[int]]:
        """The probabilities as a float64 numpy array, and the tag ids of the best valid sequence."""
        probs_np = numpy.asarray(self.model.ops.to_numpy(probs), dtype="float64")
        if probs_np.shape != (len(doc), len(self.tags)):
            raise ValueError(f"{self.name}: expected scores of shape {(len(doc), len(self.tags))}, got {probs_np.shape}")
        sent_starts = [bool(t.is_sent_start) for t in doc] if doc.has_annotation("SENT_START") else None
        return probs_np, self.decoder.decode_probs(probs_np, sent_starts)

    def set_annotations(self, docs: Iterable[Doc], scores: Sequence[Floats2d]) -> None:
        """Decode, then set ``doc.ents``, ``span._.confidence`` and the span group."""
        for doc, probs in zip(docs, scores):
            entities, chosen = self.decode_with_tokens(doc, probs)
            kept = [e for e in entities if e[3] >= self.threshold]
            spans = [Span(doc, start, end, label=label) for start, end, label, _ in kept]
            confidences = [confidence for _, _, _, confidence in kept]
            _forget_confidences(doc)
            doc.ents = spans
            for span, confidence in zip(spans, confidences):
                span._.set(CONFIDENCE_ATTR, confidence)
            if self.spans_key is not None:
                least = float(numpy.clip(chosen.min(), 0.0, 1.0)) if len(chosen) else 1.0
                group = SpanGroup(doc, name=self.spans_key, spans=spans, attrs={"scores": confidences, LEAST_ATTR: least})
                doc.spans[self.spans_key] = group
            if not self.keep_trf_data:
                drop_trf_data(doc)

    # --- training -------------------------------------------------------------

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Sequence[str]] = None,
    ) -> None:
        """Collect the labels (from ``labels`` or the reference entities), size
        the output layer to the tag set and initialize the model."""
        validate_get_examples(get_examples, "BertNER.initialize")
        if labels is None:
            found = set()
            for example in get_examples():
                found.update(ent.label_ for ent in example.reference.ents)
            labels = sorted(found)
        self.cfg["labels"] = []
        for label in sorted(set(labels)):
            self._add_label(label)
        self._require_labels()
        output_layer = self._output_layer()
        output_layer.set_dim("nO", len(self.tags), force=True)
        doc_sample = [example.predicted for example in islice(get_examples(), 10)]
        self.model.initialize(X=doc_sample)

    def _add_label(self, label: str) -> None:
        """Add a label without the is-initialized check (used by :meth:`initialize`)."""
        if not label or label == OUTSIDE:
            raise ValueError(f"invalid entity label: {label!r}")
        if label not in self.cfg["labels"]:
            self.cfg["labels"] = sorted(set(self.cfg["labels"]) | {label})
            self.vocab.strings.add(label)

    def get_loss(self, examples: Iterable[Example], scores: Sequence[Floats2d]) -> Tuple[float, List[Floats2d]]:
        """Mean softmax cross-entropy over tokens with a known gold tag, and its
        gradient with respect to the logits (``probs - truth``, 0 on masked tokens).

        When reference Docs carry a teacher's tag probabilities (a corpus
        written by ``spacy-bert-ner distill``) and ``distillation["weight"]`` is
        above 0, the loss is ``(1 - weight)`` times that plus ``weight`` times
        the mean distillation term over the tokens with teacher probabilities
        (see :mod:`spacy_bert_ner.pipeline.soft_targets`).
        """
        validate_examples(examples, "BertNER.get_loss")
        examples = list(examples)
        ops = self.model.ops
        tags = self.tags
        tag_ids = tag_index(tags)
        weight = float(self.distillation.get("weight", 0.0))
        temperature = float(self.distillation.get("temperature", 1.0))
        rows_per_doc: List[Tuple[numpy.ndarray, numpy.ndarray]] = []
        teacher_per_doc: List[Optional[Tuple[numpy.ndarray, numpy.ndarray]]] = []
        n_labelled = n_taught = 0
        for example in examples:
            gold = example.get_aligned_ner()
            rows = [i for i, tag in enumerate(gold) if tag not in _MISSING_TAGS and tag in tag_ids]
            cols = [tag_ids[gold[i]] for i in rows]
            rows_per_doc.append((numpy.asarray(rows, dtype="int32"), numpy.asarray(cols, dtype="int32")))
            n_labelled += len(rows)
            taught = aligned_targets(example, tags, self._teacher_columns) if weight > 0.0 else None
            teacher_per_doc.append(taught)
            n_taught += len(taught[0]) if taught is not None else 0
        if not n_taught:
            weight = 0.0
        gold_loss = taught_loss = 0.0
        d_scores: List[Floats2d] = []
        for (rows, cols), taught, probs in zip(rows_per_doc, teacher_per_doc, scores):
            truth = numpy.zeros(probs.shape, dtype="float32")
            mask = numpy.zeros((probs.shape[0], 1), dtype="float32")
            truth[rows, cols] = 1.0
            mask[rows] = 1.0
            truth_x = ops.asarray2f(truth)
            d_probs = (probs - truth_x) * ops.asarray2f(mask)
            if n_labelled:
                d_probs = d_probs / n_labelled
                if len(rows):
                    log_probs = ops.xp.log(ops.xp.maximum(probs, 1e-12))
                    gold_loss -= float((truth_x * log_probs).sum()) / n_labelled
            if weight:
                d_probs = d_probs * (1.0 - weight)
                if taught is not None:
                    term, grad = distillation_term(ops.to_numpy(probs), taught[0], taught[1], temperature)
                    d_probs = d_probs + ops.asarray2f(grad) * (weight / n_taught)
                    taught_loss += weight * term / n_taught
            d_scores.append(d_probs)
        if not weight:
            return gold_loss, d_scores
        return (1.0 - weight) * gold_loss + taught_loss, d_scores


def check_distillation(settings: Dict[str, float]) -> Dict[str, float]:
    """The distillation settings, checked: ``weight`` in [0, 1], ``temperature`` > 0, nothing else."""
    unknown = sorted(set(settings) - set(DISTILLATION_CONFIG))
    if unknown:
        raise ValueError(f"unknown distillation settings {unknown}; expected {sorted(DISTILLATION_CONFIG)}")
    weight, temperature = float(settings["weight"]), float(settings["temperature"])
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"distillation weight must be in [0, 1], got {weight}")
    if not temperature > 0.0 or not numpy.isfinite(temperature):
        raise ValueError(f"distillation temperature must be a positive number, got {temperature}")
    return {"weight": weight, "temperature": temperature}


def enabled_components(config: Optional[Dict[str, Any]], factories: Sequence[str]) -> List[Tuple[str, Dict[str, Any]]]:
    """``(name, settings)`` of a pipeline config's enabled components made by one of ``factories``, in order."""
    disabled = set(((config or {}).get("nlp") or {}).get("disabled") or [])
    components = (config or {}).get("components") or {}
    return [(n, c) for n, c in components.items() if (c or {}).get("factory") in factories and n not in disabled]


def bert_ner_name(nlp: Language) -> str:
    """The name of the pipeline's enabled ``bert_ner`` (or ``bert_ner_ensemble``) component (the first, if several)."""
    for name in nlp.pipe_names:
        if nlp.get_pipe_meta(name).factory in BERT_NER_FACTORIES:
            return name
    raise ValueError(f"no bert_ner component in the pipeline {nlp.pipe_names}")


def tempered_probs(probs: numpy.ndarray, temperature: float) -> numpy.ndarray:
    """``softmax(log probs / temperature)`` row by row (``probs`` itself at temperature 1)."""
    if temperature == 1.0 or probs.size == 0:
        return probs
    logits = numpy.log(numpy.maximum(probs, 1e-300)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = numpy.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def chosen_tag_probs(probs: numpy.ndarray, ids: Sequence[int], temperature: float = 1.0) -> numpy.ndarray:
    """Each row's tempered probability of its chosen tag ``ids[i]``: the per-token
    terms that an entity's confidence is the mean of."""
    if len(ids) == 0:
        return numpy.zeros((0,))
    return tempered_probs(probs, temperature)[numpy.arange(len(ids)), numpy.asarray(ids)]


def drop_trf_data(doc: Doc) -> None:
    """Replace ``doc._.trf_data`` (if the transformer set it) by an empty one."""
    if not Doc.has_extension("trf_data"):
        return
    data = doc._.trf_data
    if data is not None and (isinstance(data, LazyDocData) or len(data.tensors)):
        from spacy_transformers.data_classes import TransformerData

        doc._.trf_data = TransformerData.empty()


def _forget_confidences(doc: Doc) -> None:
    """Drop confidences stored for this Doc by an earlier run (they would be stale)."""
    stale = [k for k in doc.user_data if isinstance(k, tuple) and len(k) >= 2 and k[0] == "._." and k[1] == CONFIDENCE_ATTR]
    for key in stale:
        del doc.user_data[key]
