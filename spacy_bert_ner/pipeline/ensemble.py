"""Prediction-time ensembles of trained ``bert_ner`` pipelines.

An ensemble pipeline holds every member's components under prefixed names
(``member0_transformer``, ``member0_bert_ner``, ``member1_transformer``, ...),
all disabled, and one enabled ``bert_ner_ensemble`` component. For each batch
that component runs each member's components in turn, averages the members'
``bert_ner`` tag probabilities and decodes the mean exactly like ``bert_ner``
(constrained Viterbi, confidences, temperature, threshold, span group). So
``nlp.pipe_names`` is ``["bert_ner"]``, ``spacy package`` ships the members
with it, and the evaluation, calibration and report commands treat it as a
``bert_ner``. Building one from trained pipelines is
``spacy_bert_ner.training.combine.ensemble_pipelines``.

Unlike a weight average (``spacy_bert_ner.training.combine``, one model's cost), an ensemble of
N members costs N times one model at prediction time; the members need not
share a start.
"""

import weakref
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

import numpy
import srsly
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import ensure_path
from thinc.api import Model
from thinc.types import Floats2d

from spacy_bert_ner.pipeline.bert_ner import (
    ASSIGNS,
    DECODING_CONFIG,
    DEFAULT_SPANS_KEY,
    DISAGREEMENT_ATTR,
    SCORE_WEIGHTS,
    BertNER,
    register_extensions,
)

ENSEMBLE_FACTORY = "bert_ner_ensemble"
MEMBER_PREFIX = "member{k}_"


@Language.factory(
    ENSEMBLE_FACTORY,
    assigns=ASSIGNS,
    default_config={"members": [], **DECODING_CONFIG},
    default_score_weights=SCORE_WEIGHTS,
)
def make_bert_ner_ensemble(
    nlp: Language,
    name: str,
    members: List[List[str]],
    threshold: float,
    temperature: float,
    spans_key: Optional[str],
    scorer: Optional[Callable],
    keep_trf_data: bool = False,
) -> "BertNEREnsemble":
    """Create a ``bert_ner_ensemble`` component (see :class:`BertNEREnsemble`)."""
    return BertNEREnsemble(
        nlp,
        name,
        members,
        threshold=threshold,
        temperature=temperature,
        spans_key=spans_key,
        scorer=scorer,
        keep_trf_data=keep_trf_data,
    )


class BertNEREnsemble(BertNER):
    """Decodes the mean of several ``bert_ner`` components' tag probabilities.

    ``members`` lists, for each member, the names of the pipeline components
    to run in order, the last one a ``bert_ner`` (for example
    ``["member0_transformer", "member0_bert_ner"]``). They must be in the same
    pipeline (usually disabled, so that only the ensemble runs them) and have
    the same tag set. Prediction: each member's components before its
    ``bert_ner`` annotate the batch (``predict`` + ``set_annotations``), its
    ``bert_ner`` gives tag probabilities, and the ensemble decodes their
    arithmetic mean with its own ``threshold``, ``temperature`` and
    ``spans_key``. Not trainable: train the members, then build the ensemble
    with :func:`ensemble_pipelines`.
    """

    def __init__(
        self,
        nlp: Language,
        name: str,
        members: Sequence[Sequence[str]],
        *,
        threshold: float = 0.0,
        temperature: float = 1.0,
        spans_key: Optional[str] = DEFAULT_SPANS_KEY,
        scorer: Optional[Callable] = None,
        keep_trf_data: bool = False,
    ) -> None:
        register_extensions()
        if not members or any(not m or not all(isinstance(n, str) and n for n in m) for m in members):
            raise ValueError(f"{name}: members must be a non-empty list of non-empty lists of component names, got {members!r}")
        self.vocab = nlp.vocab
        self.name = name
        self.members = [list(m) for m in members]
        self._nlp = weakref.ref(nlp)
        self.cfg: Dict[str, Any] = {"labels": []}
        self.threshold = threshold
        self.temperature = temperature
        self.spans_key = spans_key
        self.keep_trf_data = keep_trf_data
        self.scorer = scorer
        self._decoder = None

    @property
    def is_trainable(self) -> bool:
        return False

    @property
    def model(self) -> Model:
        """The first member's ``bert_ner`` model (for its ops); the ensemble has no weights of its own.
        A single lookup: ``decode_ids`` asks for it once per Doc."""
        return self._pipeline().get_pipe(self.members[0][-1]).model

    def _pipeline(self) -> Language:
        nlp = self._nlp()
        if nlp is None:
            raise RuntimeError(f"{self.name}: the pipeline this ensemble belongs to no longer exists")
        return nlp

    def member_pipes(self) -> List[List[Any]]:
        """Each member's components, in order, looked up in the pipeline by name."""
        nlp = self._pipeline()
        pipes = []
        for names in self.members:
            missing = [n for n in names if n not in nlp.component_names]
            if missing:
                raise ValueError(f"{self.name}: member components {missing} are not in the pipeline {nlp.component_names}")
            components = [nlp.get_pipe(n) for n in names]
            if not isinstance(components[-1], BertNER) or isinstance(components[-1], BertNEREnsemble):
                raise ValueError(f"{self.name}: a member must end with a bert_ner component, {names[-1]!r} is not one")
            for n, component in zip(names[:-1], components[:-1]):
                if not annotates_batches(component):
                    raise ValueError(f"{self.name}: member component {n!r} has no predict/set_annotations")
            pipes.append(components)
        return pipes

    def add_label(self, label: str) -> int:
        raise NotImplementedError(f"{self.name}: an ensemble takes its labels from its members")

    def initialize(self, get_examples: Callable[[], Iterable], *, nlp: Optional[Language] = None, labels=None) -> None:
        """Take the labels from the members (which must be trained already and agree)."""
        self.cfg["labels"] = list(member_labels(self.member_pipes(), self.name))

    def update(self, examples, *, drop: float = 0.0, sgd=None, losses=None) -> Dict[str, float]:
        raise NotImplementedError(f"{self.name}: an ensemble is not trained; train its members")

    def predict(self, docs: Iterable[Doc]) -> List[Floats2d]:
        """The mean of the members' tag probabilities, one ``(len(doc), n_tags)`` array per Doc."""
        docs = list(docs)
        if not self.labels:
            self.cfg["labels"] = list(member_labels(self.member_pipes(), self.name))
        non_empty = [doc for doc in docs if len(doc)]
        total: Optional[List[Floats2d]] = None
        pipes = self.member_pipes()
        ops = pipes[0][-1].model.ops
        votes: List[List[numpy.ndarray]] = []
        if non_empty:
            for components in pipes:
                for component in components[:-1]:
                    component.set_annotations(non_empty, component.predict(non_empty))
                probs = components[-1].predict(non_empty)
                votes.append([ops.to_numpy(p).argmax(axis=1) for p in probs])
                total = list(probs) if total is None else [t + p for t, p in zip(total, probs)]
        means = [t / len(pipes) for t in total] if total is not None else []
        # each Doc's disagreement, for set_annotations of the same batch (spaCy calls it right after predict)
        self._disagreement = {
            id(doc): disagreement(ops.to_numpy(mean).argmax(axis=1), [member[i] for member in votes])
            for i, (doc, mean) in enumerate(zip(non_empty, means))
        }
        mean_iter = iter(means)
        n_tags = len(self.tags)
        return [next(mean_iter) if len(doc) else ops.alloc2f(0, n_tags) for doc in docs]

    def set_annotations(self, docs: Iterable[Doc], scores: Sequence[Floats2d]) -> None:
        """``bert_ner``'s annotations, and in the span group's attrs the members'
        ``disagreement`` (see :func:`disagreement`)."""
        docs = list(docs)
        super().set_annotations(docs, scores)
        found = getattr(self, "_disagreement", {})
        if self.spans_key is None:
            return
        for doc in docs:
            if self.spans_key in doc.spans:
                doc.spans[self.spans_key].attrs[DISAGREEMENT_ATTR] = float(found.pop(id(doc), 0.0))

    # The members' weights are saved as their own components: only the labels here.

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        return srsly.msgpack_dumps({"cfg": self.cfg})

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "BertNEREnsemble":
        self.cfg.update(srsly.msgpack_loads(bytes_data)["cfg"])
        self._decoder = None
        return self

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        path = ensure_path(path)
        path.mkdir(parents=True, exist_ok=True)
        srsly.write_json(path / "cfg", self.cfg)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "BertNEREnsemble":
        self.cfg.update(srsly.read_json(ensure_path(path) / "cfg"))
        self._decoder = None
        return self


def disagreement(chosen: numpy.ndarray, member_tags: Sequence[numpy.ndarray]) -> float:
    """The largest share, over a Doc's tokens, of members whose most probable
    tag differs from the ensemble's most probable tag (0: all agree everywhere; 1: on some
    token no member picks the ensemble's tag)."""
    if not len(chosen) or not member_tags:
        return 0.0
    return float(numpy.mean([tags != chosen for tags in member_tags], axis=0).max())


def member_labels(pipes: Sequence[Sequence[Any]], name: str = "ensemble") -> Sequence[str]:
    """The members' common labels; ``ValueError`` when they differ."""
    labels = [tuple(components[-1].labels) for components in pipes]
    if len(set(labels)) != 1:
        raise ValueError(f"{name}: the members' labels differ: {labels}")
    return labels[0]


def annotates_batches(component: Any) -> bool:
    """Whether a member's component can annotate a batch the way the ensemble runs it."""
    return hasattr(component, "predict") and hasattr(component, "set_annotations")


def ensemble_size(nlp: Language) -> int:
    """How many members the pipeline's ensemble component has (1 for a pipeline without one)."""
    for name in nlp.pipe_names:
        if nlp.get_pipe_meta(name).factory == ENSEMBLE_FACTORY:
            return len(nlp.get_pipe(name).members)
    return 1
