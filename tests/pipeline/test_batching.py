"""Length groups for batches of mixed lengths: every item once, shortest first,
and padding within the bound wherever a group could have been cut."""

import random

from spacy_bert_ner.pipeline.batching import groups_by_length


def test_length_groups_keep_every_item_shortest_first_with_bounded_padding():
    rng = random.Random(0)
    for _ in range(50):
        lengths = [rng.randint(1, 60) for _ in range(rng.randint(1, 64))]
        groups = [[lengths[i] for i in g] for g in groups_by_length(lengths, max_padding=0.3, min_size=4)]
        flat = [i for g in groups_by_length(lengths, max_padding=0.3, min_size=4) for i in g]
        assert sorted(flat) == list(range(len(lengths)))
        assert [n for g in groups for n in g] == sorted(lengths)
        for group in groups:
            padded = group[-1] * len(group)
            # a group grows past min_size only while its padding stays within the bound, and
            # below it within twice the bound
            assert (padded - sum(group)) / padded <= (0.3 if len(group) > 4 else 0.6)


def test_length_groups_of_equal_lengths_are_one_group():
    assert [len(g) for g in groups_by_length([7] * 20)] == [20]
    assert sorted(i for g in groups_by_length([3, 1, 2]) for i in g) == [0, 1, 2]


def test_length_groups_keep_min_size_unless_padding_passes_twice_the_bound():
    def lengths(values, **kwargs):
        return [[values[i] for i in g] for g in groups_by_length(values, **kwargs)]

    assert lengths([10, 11, 13, 14, 30, 30], max_padding=0.1, min_size=4) == [[10, 11, 13, 14], [30, 30]]
    assert lengths([1, 1, 1, 512, 512], max_padding=0.3, min_size=4) == [[1, 1, 1], [512, 512]]
    assert groups_by_length([]) == []
