"""The pipeline a service runs: loaded and warmed up once, on the batcher's
thread, then called with each micro-batch of texts."""

import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from spacy_bert_ner.inference.entities import entity_record

WARM_UP = ["Warm up.", "Ada Lovelace wrote the first program for Charles Babbage 's engine in London ."]


class ServedPipeline:
    """The pipeline of the service: loaded (and warmed up) once, on the
    batcher's thread, so ``/health`` answers while it loads."""

    def __init__(self, model: Union[str, Path, Any], runtime: Optional[str] = None) -> None:
        self.source = model
        self.runtime = runtime
        self.nlp: Any = None if isinstance(model, (str, Path)) else model
        self.error: Optional[str] = None
        self.ready = threading.Event()
        self.description: Dict[str, Any] = {}

    def load(self) -> None:
        from spacy_bert_ner import runtime as runtimes

        try:
            if self.nlp is None:
                self.nlp = runtimes.load(str(self.source), self.runtime)
            elif self.runtime is not None:
                runtimes.set_runtime(self.nlp, self.runtime)
            self(WARM_UP)
            self.description = self.info()
        except Exception as error:  # noqa: BLE001 (reported by /ready and /info)
            self.error = f"{type(error).__name__}: {error}"
            return
        self.ready.set()

    def __call__(self, texts: List[str]) -> List[Tuple[List[Dict[str, Any]], int]]:
        """``(entities, words)`` of each text, in order. The texts are run as
        one batch: the transformer runs its rows in groups of similar
        wordpiece length (:func:`~spacy_bert_ner.runtime.engines.encode_in_groups`),
        so a batch of mixed lengths carries little padding."""
        nlp = self.nlp
        docs = nlp.pipe([nlp.make_doc(text) for text in texts], batch_size=max(len(texts), 1))
        return [([entity_record(span) for span in doc.ents], len(doc)) for doc in docs]

    def info(self) -> Dict[str, Any]:
        from spacy_bert_ner.runtime import transformer_runtimes

        nlp = self.nlp
        meta = nlp.meta
        labels = sorted({label for name in nlp.pipe_names for label in _ner_labels(nlp.get_pipe(name))})
        performance = meta.get("performance") or {}
        return {
            "model": f"{meta.get('lang', 'xx')}_{meta.get('name', 'pipeline')}",
            "version": meta.get("version"),
            "spacy_version": meta.get("spacy_version"),
            "pipeline": list(nlp.pipe_names),
            "labels": labels,
            "runtime": transformer_runtimes(nlp),
            "scores": {k: v for k, v in performance.items() if k.startswith("ents_") and k != "ents_per_type"},
            "scores_per_label": performance.get("ents_per_type", {}),
        }


def _ner_labels(component: Any) -> List[str]:
    from spacy.pipeline import EntityRecognizer

    from spacy_bert_ner.pipeline.bert_ner import BertNER

    return list(component.labels) if isinstance(component, (EntityRecognizer, BertNER)) else []
