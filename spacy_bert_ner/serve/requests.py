"""Reading a ``POST /v1/ner`` body: the documents, or an :class:`ApiError`
(a JSON error with a 4xx status) naming what is wrong. Bodies are parsed
strictly: no NaN or Infinity, no duplicate keys, no lone surrogates, no
control characters in a text, ids that JSON clients read back unchanged."""

import json
import re
from typing import Any, Dict, List, Optional, Tuple

from spacy_bert_ner.serve.settings import ServeSettings

# C0 controls other than tab, newline and carriage return; DEL; C1 controls; lone surrogates
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# a JSON escape of a UTF-16 surrogate: only such an escape can put a lone surrogate in a string
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# integer ids beyond what a JSON double holds exactly are refused (JavaScript clients would change them)
MAX_ID = 2**53


class ApiError(Exception):
    """An answer other than 200, as ``{"error": {"code", "message", **extra}}``."""

    def __init__(self, status: int, code: str, message: str, headers: Optional[Dict[str, str]] = None, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers, self.extra = status, code, message, headers, extra

    def body(self) -> Dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


def parse_documents(body: bytes, settings: ServeSettings) -> List[Dict[str, Any]]:
    """The documents of a request body, or an :class:`ApiError` naming what is wrong."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ApiError(400, "invalid_encoding", f"the request body is not valid UTF-8 ({e.reason} at byte {e.start})") from None
    try:
        payload = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        raise ApiError(
            400, "invalid_json", f"the request body is not JSON: {e.msg} (line {e.lineno}, column {e.colno})"
        ) from None
    except _Invalid as e:
        raise ApiError(400, "invalid_json", f"the request body is not valid here: {e}") from None
    except (ValueError, RecursionError) as e:  # an integer too long to convert; nesting too deep
        raise ApiError(400, "invalid_json", f"the request body cannot be read: {type(e).__name__}: {str(e)[:200]}") from None
    if SURROGATE_ESCAPE.search(text):
        bad = _lone_surrogate(payload)
        if bad is not None:
            raise ApiError(422, "lone_surrogate", f"{bad} holds a lone UTF-16 surrogate escape (not a character)")
    if not isinstance(payload, dict):
        raise ApiError(422, "invalid_request", f'the request must be a JSON object with "documents", got {_json_type(payload)}')
    unknown = sorted(set(payload) - {"documents"})
    if unknown:
        raise ApiError(422, "invalid_request", f'unknown field {_short(unknown[0])}: a request has only "documents"')
    documents = payload.get("documents")
    if not isinstance(documents, list):
        raise ApiError(422, "invalid_request", f'"documents" must be a list of objects, got {_json_type(documents)}')
    if not documents:
        raise ApiError(422, "no_documents", '"documents" is empty')
    if len(documents) > settings.max_documents:
        raise ApiError(
            413,
            "too_many_documents",
            f"{len(documents)} documents in one request; the limit is {settings.max_documents}",
            limit="max_documents",
            value=settings.max_documents,
        )
    for i, document in enumerate(documents):
        _check_document(i, document, settings)
    return documents


class _Invalid(ValueError):
    """JSON that Python's parser takes but the API does not."""


def _no_constant(name: str) -> Any:
    raise _Invalid(f"{name} is not a JSON number")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if value in (float("inf"), float("-inf")):
        raise _Invalid(f"the number {literal[:40]} is out of range")
    return value


def _unique_keys(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Invalid(f"the key {_short(key)} appears twice in one object")
        out[key] = value
    return out


def _lone_surrogate(value: Any, where: str = "") -> Optional[str]:
    """Where ``value`` holds a lone surrogate (in a string or a key), if anywhere."""
    if isinstance(value, str):
        return (where or "the request") if any("\ud800" <= c <= "\udfff" for c in value) else None
    items = enumerate(value) if isinstance(value, list) else value.items() if isinstance(value, dict) else ()
    for key, item in items:
        if isinstance(key, str) and any("\ud800" <= c <= "\udfff" for c in key):
            return f"a key of {where or 'the request'}"
        found = _lone_surrogate(item, f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if where else key)
        if found:
            return found
    return None


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_document(i: int, document: Any, settings: ServeSettings) -> None:
    if not isinstance(document, dict):
        raise ApiError(422, "invalid_document", f"documents[{i}] must be an object, got {_json_type(document)}", document=i)
    doc_id = document.get("id")
    valid_id = doc_id is None or isinstance(doc_id, str) or (isinstance(doc_id, int) and not isinstance(doc_id, bool))
    name = f"documents[{i}]" + (f" (id {_short(doc_id)})" if valid_id and doc_id is not None else "")
    if not valid_id:
        raise ApiError(
            422, "invalid_document", f'{name}: "id" must be a string or an integer, got {_json_type(doc_id)}', document=i
        )
    if isinstance(doc_id, int) and abs(doc_id) > MAX_ID:
        raise ApiError(
            422, "invalid_document", f'{name}: an integer "id" must be within ±2^53; send larger ids as strings', document=i
        )
    text = document.get("text")
    if not isinstance(text, str):
        what = 'has no "text"' if text is None else f'"text" must be a string, got {_json_type(text)}'
        raise ApiError(422, "invalid_document", f"{name}: {what}", document=i)
    if not text.strip():
        raise ApiError(422, "empty_text", f"{name}: the text is empty", document=i)
    if len(text) > settings.max_characters:
        raise ApiError(
            422,
            "text_too_long",
            f"{name}: {len(text)} characters; the limit is {settings.max_characters}",
            document=i,
            limit="max_characters",
            value=settings.max_characters,
        )
    bad = CONTROL.search(text)
    if bad:
        raise ApiError(
            422, "control_character", f"{name}: control character U+{ord(bad.group()):04X} at character {bad.start()}", document=i
        )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )


async def read_body(receive_stream: Any, content_length: Optional[str], limit: int) -> bytes:
    too_large = ApiError(
        413, "request_too_large", f"the request body is over {limit} bytes", limit="max_request_bytes", value=limit
    )
    if content_length is not None and content_length.isdigit() and int(content_length) > limit:
        raise too_large
    chunks, size = [], 0
    async for chunk in receive_stream:
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
