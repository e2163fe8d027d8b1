"""The lean inference path: the transformer's output goes from the whole
batch straight to ``bert_ner``'s tag probabilities.

At inference spacy-transformers splits the transformer's batch output into
one ``TransformerData`` per Doc (``FullTransformerBatch.split_by_doc``: a
slice of the wordpieces, the hidden states and the alignment for every Doc),
and each listener pools its Doc's slice back into token vectors. For a
pipeline whose only reader of that output is ``bert_ner`` this is pure cost:
the hidden states are cut apart only to be pooled and concatenated again.

Here the transformer's forward pass returns a :class:`LeanBatch`, which gives
each Doc a :class:`LazyDocData` instead: a view of its place in the batch
whose ``wordpieces``, ``model_output`` and ``align`` are the exact
``split_by_doc`` values, computed only when something reads them. ``bert_ner``
recognises Docs whose data are such views (:func:`lean_token_vectors`) and
pools the whole batch's hidden states in one call of the listener's own
pooling layer, with the batch's alignment, which is what the listener would
compute Doc by Doc: the same rows averaged in the same order. Anything else
(another listener, a component that reads ``doc._.trf_data``, Docs from
different batches) reads the views, which then materialise, and gets the
full path's values.

Training never takes this path: during ``nlp.update`` the listener receives
the batch from the transformer directly.
"""

from typing import Dict, List, Optional, Sequence, Tuple

from spacy.tokens import Doc
from spacy_transformers.data_classes import FullTransformerBatch, TransformerData
from thinc.api import Model
from thinc.types import Floats2d, Ragged


class LeanBatch(FullTransformerBatch):
    """A ``FullTransformerBatch`` whose per-Doc data are lazy views
    (:class:`LazyDocData`), and which pools its hidden states for a whole batch."""

    @property
    def doc_data(self) -> List[TransformerData]:
        if self.cached_doc_data is None:
            self.cached_doc_data = [LazyDocData(self, i) for i in range(len(self.spans))]
        return self.cached_doc_data

    def split(self) -> List[TransformerData]:
        """The full path's per-Doc data, computed once."""
        split = getattr(self, "_split", None)
        if split is None:
            split = self._split = FullTransformerBatch.split_by_doc(self)
        return split

    def token_rows(self) -> List[Tuple[int, int]]:
        """Each Doc's ``(first, end)`` rows in the batch's alignment: one row
        per token, Docs in order (a Doc without spans has none)."""
        rows = getattr(self, "_token_rows", None)
        if rows is None:
            rows, start = [], 0
            for doc_spans in self.spans:
                n = len(doc_spans[0].doc) if doc_spans and len(doc_spans[0]) else 0
                rows.append((start, start + n))
                start += n
            self._token_rows = rows
        return rows

    def pooled(self, pooling: Model[Ragged, Floats2d]) -> Floats2d:
        """Token vectors of every token of the batch: ``pooling`` over the
        hidden states of each token's wordpieces (in every span that holds it)."""
        cache: Dict[int, Floats2d] = self.__dict__.setdefault("_pooled", {})
        key = id(pooling)
        if key not in cache:
            from thinc.api import torch2xp

            hidden = torch2xp(self.model_output.last_hidden_state)
            flat = pooling.ops.reshape2f(hidden, -1, hidden.shape[-1])
            cache[key] = pooling.predict(Ragged(flat[self.align.dataXd], self.align.lengths))
        return cache[key]


class LazyDocData(TransformerData):
    """One Doc's ``TransformerData`` as a view of its :class:`LeanBatch`;
    reading ``wordpieces``, ``model_output`` or ``align`` materialises the
    full path's values."""

    def __init__(self, batch: LeanBatch, index: int) -> None:  # no dataclass fields: they are properties here
        self.batch = batch
        self.index = index

    def _full(self) -> TransformerData:
        return self.batch.split()[self.index]

    @property  # type: ignore[override]
    def wordpieces(self):
        return self._full().wordpieces

    @property  # type: ignore[override]
    def model_output(self):
        return self._full().model_output

    @property  # type: ignore[override]
    def align(self):
        return self._full().align

    def token_vectors(self, pooling: Model[Ragged, Floats2d]) -> Floats2d:
        first, end = self.batch.token_rows()[self.index]
        return self.batch.pooled(pooling)[first:end]


class LeanPlan:
    """Where a ``bert_ner`` model's token vectors come from, when the lean path
    can compute them: the listener's pooling layer, the optional features
    beside it (``CasedListener.v1``) and the layers after the token vectors."""

    def __init__(self, pooling: Model, features: Optional[Model], head: Model, width: int) -> None:
        self.pooling, self.features, self.head, self.width = pooling, features, head, width


def lean_plan(model: Model) -> Optional[LeanPlan]:
    """The :class:`LeanPlan` of a ``spacy_bert_ner.TokenClassifier.v1`` model
    on ``TransformerListener.v1`` (alone or in ``CasedListener.v1``), or None
    for any other model."""
    from spacy_transformers.layers import TransformerListener

    if not model.has_ref("tok2vec") or len(model.layers) != 2 or model.layers[0] is not model.get_ref("tok2vec"):
        return None
    tok2vec = model.get_ref("tok2vec")
    listener, features = tok2vec.layers if tok2vec.name == "cased_listener" else (tok2vec, None)
    if len(listener.layers) != 2 or not isinstance(listener.layers[0], TransformerListener):
        return None
    if listener.layers[1].name != "trfs2arrays" or len(listener.layers[1].layers) != 1:
        return None
    width = listener.get_dim("nO") if listener.has_dim("nO") else 0
    return LeanPlan(listener.layers[1].layers[0], features, model.layers[1], width)


def lean_token_vectors(plan: LeanPlan, docs: Sequence[Doc]) -> Optional[List[Floats2d]]:
    """The token vectors the listener (and features) would give ``docs``, when
    every Doc's ``trf_data`` is a :class:`LazyDocData`; None otherwise."""
    if not docs or not Doc.has_extension("trf_data"):
        return None
    views = [doc._.trf_data for doc in docs]
    if not all(isinstance(view, LazyDocData) for view in views):
        return None
    pooled = [view.token_vectors(plan.pooling) for view in views]
    if plan.features is None:
        return pooled
    ops = plan.head.ops
    extra = plan.features.predict(list(docs))
    width = next((x.shape[1] for x in pooled if x.shape[0]), plan.width)
    return [ops.xp.hstack((xa if xa.shape[0] else ops.alloc2f(xb.shape[0], width), xb)) for xa, xb in zip(pooled, extra)]


def lean_predict(plan: Optional[LeanPlan], docs: Sequence[Doc]) -> Optional[List[Floats2d]]:
    """``bert_ner``'s tag probabilities for ``docs`` by the lean path, or None
    when it does not apply (the caller then runs the model as usual)."""
    if plan is None:
        return None
    vectors = lean_token_vectors(plan, docs)
    if vectors is None:
        return None
    return plan.head.predict(vectors)


def lean_batch(batch: FullTransformerBatch) -> LeanBatch:
    """The same batch as a :class:`LeanBatch`."""
    return LeanBatch(spans=batch.spans, wordpieces=batch.wordpieces, model_output=batch.model_output, align=batch.align)


__all__ = ["LazyDocData", "LeanBatch", "LeanPlan", "lean_batch", "lean_plan", "lean_predict", "lean_token_vectors"]
