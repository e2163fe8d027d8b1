"""The teacher's pass of distillation: a trained ``bert_ner`` pipeline (one
model or an ensemble, whose probabilities are its members' mean) annotates
the training Docs, and optionally unlabelled text, with its tag
probabilities; the result is a DocBin a student trains on like any corpus
(``spacy_bert_ner.pipeline.soft_targets`` reads it in the loss)."""

from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Union

from spacy.language import Language
from spacy.tokens import Doc

from spacy_bert_ner.errors import InputError
from spacy_bert_ner.formats.docbin import read_docbin, write_docbin
from spacy_bert_ner.pipeline.bert_ner import drop_trf_data
from spacy_bert_ner.pipeline.soft_targets import set_teacher_probs


def read_unlabelled(path: Union[str, Path], nlp: Language) -> Iterator[Doc]:
    """Docs from a plain-text file, one document per line (blank lines skipped),
    tokenized by ``nlp``; they carry no entity annotation, so only the teacher
    term of the loss applies to them."""
    path = Path(path)
    try:
        handle = open(path, encoding="utf8")
    except OSError as error:
        raise InputError(path, None, f"cannot read the unlabelled text ({error.strerror or error})") from None
    with handle:
        for line_no, line in enumerate(handle, 1):
            text = line.strip()
            if not text:
                continue
            if "\x00" in text:
                raise InputError(path, line_no, "a NUL character; expected plain text, one document per line")
            yield nlp.make_doc(text)


def annotate_with_teacher(teacher: Language, docs: Iterable[Doc], batch_size: int = 64, chunk: int = 2048) -> Iterator[Doc]:
    """Each non-empty Doc with the teacher's tag probabilities for its own
    tokens in its ``user_data`` (its words and gold entities are left as they
    are): the teacher's components before its ``bert_ner`` run on gold-tokenised
    copies, ``chunk`` Docs at a time in length-sorted batches."""
    from spacy_bert_ner.evaluation.evaluate import predict_before_bert_ner

    pending: List[Doc] = []

    def flush() -> Iterator[Doc]:
        pipe, copies = predict_before_bert_ner(teacher, pending, batch_size)
        for i in range(0, len(copies), batch_size):
            batch = copies[i : i + batch_size]
            for doc, probs in zip(pending[i : i + batch_size], pipe.predict(batch)):
                set_teacher_probs(doc, pipe.model.ops.to_numpy(probs), pipe.tags)
                yield doc
            for copy in batch:  # the transformer's output, ~900x the text: not kept past its batch
                drop_trf_data(copy)
        pending.clear()

    for doc in docs:
        if len(doc):
            pending.append(doc)
        if len(pending) >= chunk:
            yield from flush()
    if pending:
        yield from flush()


def write_teacher_corpus(
    teacher: Language,
    train: Union[str, Path],
    output: Union[str, Path],
    unlabelled: Optional[Union[str, Path]] = None,
    batch_size: int = 64,
    log: Callable[[str], None] = lambda s: None,
) -> Dict[str, int]:
    """Write ``output`` (a DocBin): the Docs of ``train`` and of ``unlabelled``
    (a plain-text file, one document per line) with the teacher's
    probabilities. Returns the counts. Empty Docs are left out (they have no
    tokens to teach)."""
    counts = {"labelled": 0, "unlabelled": 0}

    def docs() -> Iterator[Doc]:
        for doc in read_docbin(train, teacher.vocab):
            counts["labelled"] += 1
            yield doc
        if unlabelled:
            for doc in read_unlabelled(unlabelled, teacher):
                counts["unlabelled"] += 1
                yield doc

    n = write_docbin(annotate_with_teacher(teacher, docs(), batch_size), output, store_user_data=True)
    log(f"teacher probabilities for {n} Docs ({counts['labelled']} labelled, {counts['unlabelled']} unlabelled) in {output}")
    return {**counts, "written": n}
