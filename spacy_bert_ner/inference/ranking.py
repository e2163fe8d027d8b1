"""Ordering predicted documents for annotation: the least certain first.

A document's ``uncertainty`` is ``1 -`` the probability its least confident
token has of the tag chosen for it (an entity's token or an ``O``), at the
model's calibrated temperature, so a document with one doubtful entity, or a
name the model almost tagged, comes before one the model is sure of. For an
ensemble it is the members' disagreement (the largest share of members whose
own most probable tag differs from the ensemble's on some token), with the
least confident token breaking ties. Both are set by the component in the
span group's attrs (``least_token_confidence``, ``disagreement``).
"""

from typing import Any, Dict, List, Optional, Sequence

from spacy.tokens import Doc

from spacy_bert_ner.pipeline.bert_ner import DISAGREEMENT_ATTR, LEAST_ATTR

RANKINGS = ("none", "uncertainty")


def doc_uncertainty(doc: Doc, spans_key: Optional[str]) -> Dict[str, float]:
    """``{"uncertainty": ...}`` (and ``"disagreement"`` for an ensemble) of a predicted Doc.

    Without the component's span group (``spans_key = null``) the least
    confident entity stands in for the least confident token."""
    attrs = doc.spans[spans_key].attrs if spans_key and spans_key in doc.spans else {}
    if LEAST_ATTR in attrs:
        least = float(attrs[LEAST_ATTR])
    else:
        confidences = [getattr(e._, "confidence", None) for e in doc.ents] if doc.ents else []
        least = min((c for c in confidences if c is not None), default=1.0)
    out = {"uncertainty": round(1.0 - least, 6)}
    if DISAGREEMENT_ATTR in attrs:
        out["disagreement"] = round(float(attrs[DISAGREEMENT_ATTR]), 6)
    return out


def rank_records(records: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The records, most uncertain first (disagreement first for an ensemble;
    input order on ties), each with its ``rank`` (1 = annotate first)."""
    order = sorted(
        range(len(records)),
        key=lambda i: (-records[i].get("disagreement", 0.0), -records[i].get("uncertainty", 0.0), i),
    )
    return [{**records[i], "rank": rank} for rank, i in enumerate(order, 1)]
