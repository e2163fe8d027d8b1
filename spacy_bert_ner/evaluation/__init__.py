"""Scoring a pipeline on gold data: entity P/R/F1 equal to seqeval (overall and
per label), the error report with its plots and displaCy page, and the
calibration of bert_ner's confidences."""
