"""Training callbacks that configs name in ``[training.before_update]``."""
from typing import Any, Callable, Dict

from spacy.util import registry

from spacy_bert_ner.runtime.memory import release_memory


@registry.callbacks("spacy_bert_ner.release_memory.v1")
def release_memory_v1(every: int = 50) -> Callable[[Any, Dict[str, Any]], None]:
    """A ``[training] before_update`` callback: :func:`release_memory` every
    ``every`` steps (the evaluations' memory included)."""
    if every < 1:
        raise ValueError(f"every must be at least 1, got {every}")

    def before_update(nlp: Any, args: Dict[str, Any]) -> None:
        if args.get("step", 0) % every == 0:
            release_memory()

    return before_update
