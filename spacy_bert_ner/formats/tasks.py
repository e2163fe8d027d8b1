"""Predictions as annotation-tool tasks, to import into Prodigy, doccano or
Label Studio for correction (the way back of :mod:`spacy_bert_ner.formats.spans`).

Every writer takes the same items: a record's ``text``, its ``entities``
(``start_char``, ``end_char``, ``label`` and optionally ``confidence``, the
shape ``predict`` writes) and its other fields, plus, when the documents are
ranked, ``rank`` and ``uncertainty``.

* Label Studio: a JSON list of tasks ``{"data": {"text", ...fields},
  "predictions": [{"model_version", "score", "result": [{"from_name":
  "label", "to_name": "text", "type": "labels", "value": {"start", "end",
  "text", "labels"}, "score"}]}]}``; ``score`` is the task's
  ``1 - uncertainty`` (Label Studio sorts and filters tasks by it).
  ``from_name``/``to_name`` match the NER labelling config's tag names.
* Prodigy: JSONL ``{"text", "spans": [{"start", "end", "label"}], "meta":
  {"score", "rank", "model_version"}, ...fields}``, the shape ``prodigy db-in`` and the
  ``ner.manual``/``ner.correct`` recipes read.
* doccano: JSONL ``{"text", "label": [[start, end, label]], ...fields}``;
  doccano keeps the other fields as the example's metadata.
"""

import json
from typing import Any, Dict, Iterable

TASK_FORMATS = ("label-studio", "prodigy", "doccano")
# The fields of a predicted record that become the task's text, spans and ranking,
# and the annotations an input record brought from a tool (replaced by the predictions)
_OWN = ("text", "entities", "rank", "uncertainty", "disagreement")
_PREVIOUS = ("spans", "tokens", "label", "labels", "answer", "_input_hash", "_task_hash", "annotations", "predictions", "meta")


def _ranking(item: Dict[str, Any]) -> Dict[str, Any]:
    return {k: item[k] for k in ("rank", "uncertainty", "disagreement") if item.get(k) is not None}


def _fields(item: Dict[str, Any]) -> Dict[str, Any]:
    """The record's own fields, without what the task's predictions replace."""
    return {k: v for k, v in item.items() if k not in _OWN and k not in _PREVIOUS}


def label_studio_task(
    item: Dict[str, Any], model_version: str, from_name: str = "label", to_name: str = "text"
) -> Dict[str, Any]:
    text = item["text"]
    result = []
    for i, ent in enumerate(item.get("entities") or []):
        region = {
            "id": f"e{i}",
            "from_name": from_name,
            "to_name": to_name,
            "type": "labels",
            "value": {
                "start": ent["start_char"],
                "end": ent["end_char"],
                "text": text[ent["start_char"] : ent["end_char"]],
                "labels": [ent["label"]],
            },
        }
        if ent.get("confidence") is not None:
            region["score"] = ent["confidence"]
        result.append(region)
    prediction: Dict[str, Any] = {"model_version": model_version, "result": result}
    if item.get("uncertainty") is not None:
        prediction["score"] = round(1.0 - item["uncertainty"], 6)
    task: Dict[str, Any] = {"data": {"text": text, **_fields(item)}, "predictions": [prediction]}
    if _ranking(item):
        task["meta"] = _ranking(item)
    return task


def prodigy_task(item: Dict[str, Any], model_version: str) -> Dict[str, Any]:
    spans = []
    for ent in item.get("entities") or []:
        span = {"start": ent["start_char"], "end": ent["end_char"], "label": ent["label"]}
        if ent.get("confidence") is not None:
            span["score"] = ent["confidence"]
        spans.append(span)
    meta: Dict[str, Any] = {"model_version": model_version, **_ranking(item)}
    if item.get("uncertainty") is not None:
        meta["score"] = item["uncertainty"]
    return {**_fields(item), "text": item["text"], "spans": spans, "meta": {**(item.get("meta") or {}), **meta}}


def doccano_task(item: Dict[str, Any], model_version: str) -> Dict[str, Any]:
    task = {
        **_fields(item),
        "text": item["text"],
        "label": [[e["start_char"], e["end_char"], e["label"]] for e in item.get("entities") or []],
        "model_version": model_version,
    }
    task.update(_ranking(item))
    return task


def write_tasks(items: Iterable[Dict[str, Any]], out, format: str, model_version: str) -> int:
    """Write ``items`` as ``format`` tasks to the text stream ``out``; returns how many."""
    if format not in TASK_FORMATS:
        raise ValueError(f"unknown task format {format!r}; expected one of {', '.join(TASK_FORMATS)}")
    n = 0
    if format == "label-studio":
        out.write("[\n")
        for item in items:
            out.write((",\n" if n else "") + json.dumps(label_studio_task(item, model_version), ensure_ascii=False))
            n += 1
        out.write("\n]\n")
        return n
    make = prodigy_task if format == "prodigy" else doccano_task
    for item in items:
        out.write(json.dumps(make(item, model_version), ensure_ascii=False) + "\n")
        n += 1
    return n
