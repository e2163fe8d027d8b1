"""Serving a pipeline over HTTP (FastAPI + uvicorn, the ``serve`` extra):
micro-batched across requests, bounded, observable. See ``docs/serving.md``."""

from spacy_bert_ner.serve.app import create_app, from_environment, require_serve, settings_from_environment
from spacy_bert_ner.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app", "from_environment", "require_serve", "settings_from_environment"]
