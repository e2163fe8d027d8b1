"""Length groups for small batches of mixed lengths: every Doc once, shortest first,
and padding within the bound wherever a group could have been cut."""

import random

import spacy

from spacy_bert_ner.pipeline.batching import length_groups


def _docs(lengths):
    nlp = spacy.blank("en")
    return [nlp.make_doc(" ".join(["w"] * n)) for n in lengths]


def test_length_groups_keep_every_doc_shortest_first_with_bounded_padding():
    rng = random.Random(0)
    for _ in range(50):
        docs = _docs([rng.randint(1, 60) for _ in range(rng.randint(1, 64))])
        groups = [[docs[i] for i in g] for g in length_groups(docs, max_padding=0.3, min_size=4)]
        flat = [d for g in groups for d in g]
        assert sorted(map(id, flat)) == sorted(map(id, docs))
        assert [len(d) for d in flat] == sorted(len(d) for d in docs)
        for group in groups:
            padded = len(group[-1]) * len(group)
            # a group grows past min_size only while its padding stays within the bound, and
            # below it within twice the bound
            assert (padded - sum(map(len, group))) / padded <= (0.3 if len(group) > 4 else 0.6)


def test_length_groups_of_equal_lengths_are_one_group():
    assert [len(g) for g in length_groups(_docs([7] * 20))] == [20]
    assert sorted(i for g in length_groups(_docs([3, 1, 2])) for i in g) == [0, 1, 2]


def test_length_groups_keep_min_size_unless_padding_passes_twice_the_bound():
    def lengths(values, **kwargs):
        docs = _docs(values)
        return [[len(docs[i]) for i in g] for g in length_groups(docs, **kwargs)]

    assert lengths([10, 11, 13, 14, 30, 30], max_padding=0.1, min_size=4) == [[10, 11, 13, 14], [30, 30]]
    assert lengths([1, 1, 1, 512, 512], max_padding=0.3, min_size=4) == [[1, 1, 1], [512, 512]]
    assert length_groups([]) == []
