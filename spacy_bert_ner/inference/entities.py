"""The JSON form of an entity, the one shape ``predict``, ``serve`` and
``annotate`` write: ``text``, ``label``, ``start_char``, ``end_char`` (character
offsets into the document's text) and, when the span has one, ``confidence``."""

from typing import Any, Dict

from spacy.tokens import Span


def entity_record(span: Span) -> Dict[str, Any]:
    """The JSON form of one entity; ``confidence`` only when the span has a value for it."""
    entity: Dict[str, Any] = {
        "text": span.text,
        "label": span.label_,
        "start_char": span.start_char,
        "end_char": span.end_char,
    }
    if Span.has_extension("confidence"):
        value = getattr(span._, "confidence", None)
        if value is not None:
            entity["confidence"] = float(value)
    return entity
