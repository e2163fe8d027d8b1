"""Prometheus metrics of the service, on a registry of its own (one per app,
so several apps in one process never share or clash)."""

from typing import Any, Callable

#: latency buckets, seconds: 5 ms to 30 s
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
PREFIX = "spacy_bert_ner"


class ServiceMetrics:
    """Requests, documents, words and entities annotated, request latency,
    model batches (count, size, time), queue depth and rejections by reason."""

    def __init__(self, waiting: Callable[[], int]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            f"{PREFIX}_requests", "HTTP requests answered, by endpoint and status code", ["endpoint", "status"], registry=r
        )
        self.latency = Histogram(
            f"{PREFIX}_request_duration_seconds",
            "Time from a request's arrival to its answer, by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.documents = Counter(f"{PREFIX}_documents", "Documents annotated", registry=r)
        self.words = Counter(f"{PREFIX}_words", "Words (tokens) annotated", registry=r)
        self.entities = Counter(f"{PREFIX}_entities", "Entities found", registry=r)
        self.batches = Counter(f"{PREFIX}_batches", "Model batches run", registry=r)
        self.batch_documents = Histogram(
            f"{PREFIX}_batch_documents", "Documents per model batch", buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_seconds = Histogram(
            f"{PREFIX}_batch_duration_seconds", "Time of one model batch", buckets=LATENCY_BUCKETS, registry=r
        )
        self.rejections = Counter(f"{PREFIX}_rejections", "Requests refused, by reason", ["reason"], registry=r)
        self.queue = Gauge(f"{PREFIX}_queue_documents", "Documents waiting for a model batch", registry=r)
        self.queue.set_function(waiting)

    def batch(self, documents: int, seconds: float) -> None:
        self.batches.inc()
        self.batch_documents.observe(documents)
        self.batch_seconds.observe(seconds)

    def annotated(self, documents: int, words: int, entities: int) -> None:
        self.documents.inc(documents)
        self.words.inc(words)
        self.entities.inc(entities)

    def rejected(self, error: Any) -> None:
        """Count a refused request (a 4xx, 503 or 504 answer) by its error code."""
        if 400 <= error.status < 500 or error.status in (503, 504):
            self.rejections.labels(error.code).inc()

    def answered(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def render(self) -> Any:
        """The exposition text and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
