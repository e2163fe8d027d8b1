"""Running a pipeline over gold-tokenised data and scoring the entities."""

import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy
import srsly
from spacy.language import Language
from spacy.tokens import Doc

from spacy_bert_ner.evaluation.scoring import machine_description, score_docs, today
from spacy_bert_ner.formats.docbin import read_docbin
from spacy_bert_ner.pipeline.batching import pipe_by_length
from spacy_bert_ner.pipeline.bert_ner import BertNER, bert_ner_name
from spacy_bert_ner.pipeline.decoding import clamped_log
from spacy_bert_ner.pipeline.ensemble import ensemble_size
from spacy_bert_ner.runtime import transformer_runtimes


def blank_copy(doc: Doc, vocab) -> Doc:
    """The gold Doc's words and sentence starts, with no entities: what the pipeline sees."""
    words = [t.text for t in doc]
    spaces = [bool(t.whitespace_) for t in doc]
    sent_starts = [bool(t.is_sent_start) for t in doc] if doc.has_annotation("SENT_START") else None
    return Doc(vocab, words=words, spaces=spaces, sent_starts=sent_starts)


def predict_gold_tokens(nlp: Language, gold: List[Doc], batch_size: int = 64) -> List[Doc]:
    return list(pipe_by_length(nlp, (blank_copy(d, nlp.vocab) for d in gold), batch_size=batch_size))


def predict_before_bert_ner(nlp: Language, gold: List[Doc], batch_size: int = 64) -> Tuple[BertNER, List[Doc]]:
    """The pipeline's ``bert_ner`` component, and gold-tokenised copies of
    ``gold`` run through the components before it: the input of its ``predict``."""
    name = bert_ner_name(nlp)
    after = nlp.pipe_names[nlp.pipe_names.index(name) :]
    with nlp.select_pipes(disable=after):
        docs = predict_gold_tokens(nlp, gold, batch_size)
    return nlp.get_pipe(name), docs


def tag_log_probs(nlp: Language, gold: List[Doc], batch_size: int = 64) -> List[numpy.ndarray]:
    """The ``bert_ner`` tag log-probabilities (float64, one ``(len(doc), n_tags)``
    array per Doc) of ``nlp`` on gold-tokenised Docs, before decoding. For
    probes that change the decoding: biases, ensembles."""
    pipe, docs = predict_before_bert_ner(nlp, gold, batch_size)
    log_probs: List[numpy.ndarray] = []
    for i in range(0, len(docs), batch_size):
        for probs in pipe.predict(docs[i : i + batch_size]):
            log_probs.append(clamped_log(pipe.model.ops.to_numpy(probs)))
    return log_probs


def load_train_log(path: Union[str, Path]) -> List[Dict]:
    path = Path(path)
    return list(srsly.read_jsonl(path)) if path.exists() else []


def evaluate(
    nlp: Language,
    data_path: Union[str, Path],
    batch_size: int = 64,
    train_log: Optional[Union[str, Path, Sequence[Union[str, Path]]]] = None,
) -> Dict:
    """Score ``nlp`` on a ``.spacy`` file. Returns the metrics with metadata:
    speed, the transformer name, the training steps and seconds when a
    training log is given. Several logs are the members of ``spacy-bert-ner train --members N`` (trained at
    once): the most steps and seconds, and ``members`` with each one's."""
    gold = list(read_docbin(data_path, nlp.vocab))
    start = time.perf_counter()
    pred = predict_gold_tokens(nlp, gold, batch_size)
    seconds = time.perf_counter() - start
    n_words = sum(len(d) for d in gold)
    scores = score_docs(gold, pred)
    result: Dict = dict(scores)
    result.update(
        {
            "data": str(data_path),
            "docs": len(gold),
            "words": n_words,
            "predict_seconds": round(seconds, 2),
            "predict_words_per_s": round(n_words / seconds, 1) if seconds else None,
            "pipeline": list(nlp.pipe_names),
            "ensemble_members": ensemble_size(nlp),
            "transformer": nlp.config.get("paths", {}).get("transformer"),
            "runtime": sorted(set(transformer_runtimes(nlp).values())) or None,
            "machine": machine_description(),
            "date": today(),
        }
    )
    logs = [log for log in map(load_train_log, _paths(train_log)) if log]
    if len(logs) == 1:
        result.update(train_log_summary(logs[0]))
    elif logs:  # members trained at once
        members = [train_log_summary(log) for log in logs]
        result.update(
            {
                "steps": max(m["steps"] for m in members),
                "train_seconds": max(m["train_seconds"] or 0 for m in members),
                "train_words": sum(m["train_words"] or 0 for m in members),
                "members": members,
            }
        )
    return result


def train_log_summary(log: List[Dict]) -> Dict:
    """Steps, seconds and words at the end of a non-empty training log, and its best dev score."""
    best = max(log, key=lambda r: r.get("score") or 0)
    return {
        "steps": log[-1]["step"],
        "train_seconds": log[-1].get("seconds"),
        "train_words": log[-1].get("words"),
        "best_step": best["step"],
        "best_dev_score": best.get("score"),
    }


def _paths(paths: Optional[Union[str, Path, Sequence[Union[str, Path]]]]) -> List[Union[str, Path]]:
    if not paths:
        return []
    return [paths] if isinstance(paths, (str, Path)) else list(paths)
