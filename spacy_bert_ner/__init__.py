"""spacy-bert-ner: transformer NER for spaCy, from BIO-tagged data to a packaged model."""

from .errors import InputError

__version__ = "0.1.0"

__all__ = ["InputError", "__version__"]
