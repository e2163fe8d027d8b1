"""Tag schemes: detection, decoding with repairs, strict mode, encoding back."""

import random

import pytest

from spacy_bert_ner.formats.schemes import TagError, detect_scheme, spans_to_tags, split_tag, tags_to_spans


def test_split_tag():
    assert split_tag("B-PER") == ("B", "PER")
    assert split_tag("I-geo") == ("I", "geo")
    assert split_tag("O") == ("O", "")
    for bad in ("PER", "X-PER", "B-", "o", ""):
        with pytest.raises(ValueError):
            split_tag(bad)


@pytest.mark.parametrize(
    "seqs,scheme",
    [
        ([["B-PER", "I-PER", "O"], ["B-LOC"]], "IOB2"),
        ([["I-PER", "I-PER", "O"], ["I-LOC", "B-LOC"]], "IOB1"),
        ([["B-PER", "L-PER", "O", "U-LOC"]], "BILOU"),
        ([["S-PER", "B-LOC", "E-LOC"]], "BILOU"),
        ([["O", "O"]], "IOB2"),
    ],
)
def test_detect_scheme(seqs, scheme):
    assert detect_scheme(seqs) == scheme


def test_iob2_decoding_and_repair():
    r = tags_to_spans(["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC", "I-ORG"], "IOB2")
    assert r.spans == [(0, 2, "PER"), (3, 5, "LOC"), (5, 6, "LOC"), (6, 7, "ORG")]
    assert [i for i, _ in r.repairs] == [3, 6]


def test_iob1_i_after_o_is_not_a_repair():
    r = tags_to_spans(["I-PER", "I-PER", "B-PER", "O", "I-LOC"], "IOB1")
    assert r.spans == [(0, 2, "PER"), (2, 3, "PER"), (4, 5, "LOC")]
    assert r.repairs == []


def test_bilou_and_bioes():
    assert tags_to_spans(["B-PER", "I-PER", "L-PER", "U-LOC", "O"], "BILOU").spans == [(0, 3, "PER"), (3, 4, "LOC")]
    assert tags_to_spans(["S-PER", "B-LOC", "E-LOC"], "BILOU").spans == [(0, 1, "PER"), (1, 3, "LOC")]
    r = tags_to_spans(["B-PER", "O", "L-LOC"], "BILOU")
    assert r.spans == [(0, 1, "PER"), (2, 3, "LOC")]
    assert len(r.repairs) == 2


def test_strict_raises_with_token_index():
    with pytest.raises(TagError) as e:
        tags_to_spans(["O", "I-PER"], "IOB2", strict=True)
    assert e.value.index == 1
    tags_to_spans(["B-PER", "I-PER"], "IOB2", strict=True)


def test_unknown_tag_is_an_error():
    with pytest.raises(TagError) as e:
        tags_to_spans(["O", "PERSON"], "IOB2")
    assert e.value.index == 1


@pytest.mark.parametrize("scheme", ["IOB1", "IOB2", "BILOU"])
def test_encode_decode_round_trip(scheme):
    rng = random.Random(0)
    for _ in range(300):
        n = rng.randint(1, 12)
        spans, i = [], 0
        while i < n:
            if rng.random() < 0.4:
                length = rng.randint(1, min(3, n - i))
                spans.append((i, i + length, rng.choice(["PER", "LOC"])))
                i += length
            else:
                i += rng.randint(1, 2)
        tags = spans_to_tags(spans, n, scheme)
        r = tags_to_spans(tags, scheme, strict=True)
        assert r.spans == spans, (scheme, tags)
