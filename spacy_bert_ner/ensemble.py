"""Prediction-time ensembles of trained ``bert_ner`` pipelines.

An ensemble pipeline holds every member's components under prefixed names
(``member0_transformer``, ``member0_bert_ner``, ``member1_transformer``, ...),
all disabled, and one enabled ``bert_ner_ensemble`` component. For each batch
that component runs each member's components in turn, averages the members'
``bert_ner`` tag probabilities and decodes the mean exactly like ``bert_ner``
(constrained Viterbi, confidences, temperature, threshold, span group). So
``nlp.pipe_names`` is ``["bert_ner"]``, ``spacy package`` ships the members
with it, and the evaluation, calibration and report commands treat it as a
``bert_ner``.

Unlike a weight average (``averaging.py``, one model's cost), an ensemble of
N members costs N times one model at prediction time; the members need not
share a start.
"""
import weakref
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

import spacy
import srsly
from spacy.language import Language
from spacy.tokens import Doc
from spacy.util import ensure_path
from thinc.api import Model
from thinc.types import Floats2d

from .components import ASSIGNS, DECODING_CONFIG, DEFAULT_SPANS_KEY, SCORE_WEIGHTS, BertNER, register_extensions

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
) -> "BertNEREnsemble":
    """Create a ``bert_ner_ensemble`` component (see :class:`BertNEREnsemble`)."""
    return BertNEREnsemble(
        nlp, name, members, threshold=threshold, temperature=temperature, spans_key=spans_key, scorer=scorer
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
        self.label_smoothing = 0.0
        self.spans_key = spans_key
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
                if not _annotates_batches(component):
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
        if non_empty:
            for components in pipes:
                for component in components[:-1]:
                    component.set_annotations(non_empty, component.predict(non_empty))
                probs = components[-1].predict(non_empty)
                total = list(probs) if total is None else [t + p for t, p in zip(total, probs)]
        ops = pipes[0][-1].model.ops
        mean = iter([t / len(pipes) for t in total] if total is not None else [])
        n_tags = len(self.tags)
        return [next(mean) if len(doc) else ops.alloc2f(0, n_tags) for doc in docs]

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


def member_labels(pipes: Sequence[Sequence[Any]], name: str = "ensemble") -> Sequence[str]:
    """The members' common labels; ``ValueError`` when they differ."""
    labels = [tuple(components[-1].labels) for components in pipes]
    if len(set(labels)) != 1:
        raise ValueError(f"{name}: the members' labels differ: {labels}")
    return labels[0]


def _annotates_batches(component: Any) -> bool:
    """Whether a member's component can annotate a batch the way the ensemble runs it."""
    return hasattr(component, "predict") and hasattr(component, "set_annotations")


def ensemble_size(nlp: Language) -> int:
    """How many members the pipeline's ensemble component has (1 for a pipeline without one)."""
    for name in nlp.pipe_names:
        if nlp.get_pipe_meta(name).factory == ENSEMBLE_FACTORY:
            return len(nlp.get_pipe(name).members)
    return 1


def build_ensemble(pipelines: Sequence[Language], sources: Optional[Sequence[str]] = None) -> Language:
    """One pipeline that averages the ``bert_ner`` probabilities of ``pipelines``.

    Each pipeline must end with a ``bert_ner`` component (every enabled
    component before it, e.g. its transformer, belongs to that member), and all
    must share the language and the labels. The first pipeline is changed in
    place and returned: its components are renamed ``member0_<name>``, the
    others' are added as ``member<k>_<name>``, all are disabled, and a
    ``bert_ner_ensemble`` component takes the first ``bert_ner``'s name,
    threshold and span key. ``sources`` (e.g. the paths) name the pipelines in
    error messages. Raises ``ValueError`` for pipelines that cannot be joined.
    """
    if len(pipelines) < 2:
        raise ValueError(f"an ensemble needs at least two pipelines, got {len(pipelines)}")
    sources = list(sources) if sources is not None else [f"pipeline {k}" for k in range(len(pipelines))]
    for source, nlp in zip(sources, pipelines):
        factories = [nlp.get_pipe_meta(n).factory for n in nlp.pipe_names]
        if not factories or factories[-1] != "bert_ner" or factories.count("bert_ner") != 1:
            raise ValueError(
                f"{source}: an ensemble member must end with its only bert_ner component; its pipeline is "
                f"{list(zip(nlp.pipe_names, factories))}"
            )
        if nlp.lang != pipelines[0].lang:
            raise ValueError(f"{source}: language {nlp.lang!r} differs from {sources[0]}'s {pipelines[0].lang!r}")
        for name in nlp.pipe_names[:-1]:
            if not _annotates_batches(nlp.get_pipe(name)):
                raise ValueError(f"{source}: component {name!r} has no predict/set_annotations, it cannot run in an ensemble")
    labels = [tuple(nlp.get_pipe(nlp.pipe_names[-1]).labels) for nlp in pipelines]
    for source, member in zip(sources[1:], labels[1:]):
        if member != labels[0]:
            raise ValueError(f"{source}: labels {list(member)} differ from {sources[0]}'s {list(labels[0])}")
    first = pipelines[0]
    ner_name = first.pipe_names[-1]
    ner = first.get_pipe(ner_name)
    members: List[List[str]] = [[MEMBER_PREFIX.format(k=0) + name for name in first.pipe_names]]
    for name, new_name in zip(list(first.pipe_names), members[0]):
        first.rename_pipe(name, new_name)
    for k, nlp in enumerate(pipelines[1:], start=1):
        names = []
        for name in nlp.pipe_names:
            new_name = MEMBER_PREFIX.format(k=k) + name
            first.add_pipe(name, name=new_name, source=nlp)
            names.append(new_name)
        members.append(names)
    ensemble = first.add_pipe(
        ENSEMBLE_FACTORY,
        name=ner_name,
        config={"members": members, "threshold": ner.threshold, "spans_key": ner.spans_key},
    )
    ensemble.cfg["labels"] = list(labels[0])
    for names in members:
        for name in names:
            first.disable_pipe(name)
    return first


def ensemble_pipelines(paths: Sequence[Union[str, Path]], output_dir: Union[str, Path]) -> Path:
    """Load the pipelines at ``paths``, join them into an ensemble (:func:`build_ensemble`)
    and save it to ``output_dir``."""
    if len(paths) < 2:
        raise ValueError(f"ensemble: give at least two pipelines, got {len(paths)}")
    pipelines = [spacy.load(path) for path in paths]
    output_dir = Path(output_dir)
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    build_ensemble(pipelines, [str(p) for p in paths]).to_disk(output_dir)
    return output_dir
