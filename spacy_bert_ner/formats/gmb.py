"""The Kaggle "Annotated Corpus for NER" ``ner_dataset.csv`` (GMB-derived).

Header ``Sentence #,Word,POS,Tag``; the ``Sentence #`` field is filled only on
a sentence's first row; the bytes are Windows-1252; plain or gzipped.
"""

import csv
import io
from pathlib import Path
from typing import Iterator, List, Union

from spacy_bert_ner.errors import InputError
from spacy_bert_ner.formats.io import open_bytes
from spacy_bert_ner.formats.sentence import Sentence

HEADER = ["Sentence #", "Word", "POS", "Tag"]


def read_gmb(path: Union[str, Path], encoding: str = "cp1252") -> Iterator[Sentence]:
    path = str(path)
    raw = open_bytes(path)
    # newline="" leaves line breaks to the csv module, which only breaks on
    # \r and \n: the cp1252 byte 0x85 (U+0085) inside a word stays a character.
    text = io.TextIOWrapper(raw, encoding=encoding, newline="")
    reader = csv.reader(text)
    words: List[str] = []
    tags: List[str] = []
    lines: List[int] = []
    sent_id = None
    try:
        try:
            header = next(reader)
        except StopIteration:
            raise InputError(path, None, "empty file") from None
        if [h.strip() for h in header] != HEADER:
            raise InputError(path, 1, f"expected the header {','.join(HEADER)!r}, found {','.join(header)!r}")
        row_start = reader.line_num + 1
        for row in reader:
            number = row_start
            row_start = reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != 4:
                raise InputError(path, number, f"expected 4 fields (Sentence #,Word,POS,Tag), found {len(row)}: {row!r}")
            sid, word, _pos, tag = row
            if sid.strip():
                if words:
                    yield Sentence(words, tags, path, lines, sent_id)
                words, tags, lines = [], [], []
                sent_id = sid.strip()
            elif sent_id is None:
                raise InputError(path, number, "the first data row has no 'Sentence #' value")
            if word == "":
                raise InputError(path, number, "empty word")
            if not tag.strip():
                raise InputError(path, number, "empty tag")
            words.append(word)
            tags.append(tag.strip())
            lines.append(number)
    except UnicodeDecodeError as e:
        raise InputError(path, None, f"cannot decode as {encoding}: {e.reason} (use --encoding)") from None
    except csv.Error as e:
        raise InputError(path, reader.line_num, f"malformed CSV: {e}") from None
    finally:
        text.close()
    if words:
        yield Sentence(words, tags, path, lines, sent_id)
    elif sent_id is None:
        raise InputError(path, None, "no data rows after the header")
