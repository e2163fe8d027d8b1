"""The limits and batching settings of the HTTP service, with their defaults."""

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Dict


@dataclass(frozen=True)
class ServeSettings:
    """How much one request may ask for, how requests are gathered into model
    batches, and how long anything may wait.

    Requests over a limit are refused with a JSON error naming the limit
    (``max_documents`` and ``max_request_bytes``: 413; ``max_characters``:
    422); a request arriving when ``max_queue_documents`` documents are
    already waiting gets 429 with ``Retry-After``; a request not answered
    within ``request_timeout_s`` gets 504 and its waiting documents are
    dropped from the queue.
    """

    #: documents in one request
    max_documents: int = 64
    #: characters in one document's text
    max_characters: int = 10_000
    #: bytes of one request body
    max_request_bytes: int = 1_048_576
    #: documents accepted and not yet annotated, over all requests
    max_queue_documents: int = 1024
    #: documents in one model batch (gathered across requests)
    max_batch_documents: int = 64
    #: words (whitespace-separated) in one model batch; a longer single
    #: document still makes a batch of its own
    max_batch_words: int = 4096
    #: how long the first document of a batch waits for others to join it
    #: (not at all after a batch of one document: nobody else was sending)
    max_wait_ms: float = 5.0
    #: seconds from a request's arrival to its answer before it gets 504
    request_timeout_s: float = 30.0
    #: on shutdown, seconds to finish the requests already accepted
    shutdown_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value!r}")
            if value < 0 or (value == 0 and f.name not in ("max_wait_ms", "shutdown_timeout_s")):
                raise ValueError(f"{f.name} must be positive, got {value!r}")
        if self.max_wait_ms > 10_000:
            raise ValueError(f"max_wait_ms must be at most 10000 (10 s), got {self.max_wait_ms!r}")
        if self.max_documents > self.max_queue_documents:
            raise ValueError(
                f"max_documents ({self.max_documents}) must not exceed max_queue_documents "
                f"({self.max_queue_documents}): a request that large could never be queued"
            )

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)
