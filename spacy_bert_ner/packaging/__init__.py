"""A trained pipeline as a pip-installable wheel: ``spacy package`` with the
test metrics in the meta, a generated model card and the spacy-bert-ner wheel
beside it."""
