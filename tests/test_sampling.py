"""nspzero.sampling: stratified samples for `eval --limit N` (shares, determinism, edge cases)."""
from __future__ import annotations

import hashlib
import json
import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nspzero.errors import UsageError
from nspzero.sampling import UNLABELED, allocate, label_counts, rank_key, stratified_sample

from fewclue_fixture import FEWCLUE

# 20 examples: A×10, B×6, C×2, two without a gold label (None and "")
SMALL = list("AAAAAABBBC") + ["A", "B", None, "C", "A", "B", "A", "A", "B", ""]


# ---- allocation ------------------------------------------------------------------------------
@pytest.mark.parametrize("counts, n, expected", [
    ([12, 5, 2, 1], 8, [4, 2, 1, 1]),   # quotas 4.8 2 .8 .4 → 5 2 1 0 → D takes one seat from A
    ([10, 6, 3, 1], 8, [4, 2, 1, 1]),   # quotas 4 2.4 1.2 .4 → remainders .4 .4 .2 .4 → B, D (ties: earlier)
    ([5, 5], 4, [2, 2]),                # exact quotas
    ([5, 5], 3, [2, 1]),                # tie on the remainder → the earlier label
    ([3, 3, 3], 4, [2, 1, 1]),
    ([30, 10], 8, [6, 2]),
    ([97, 1, 1, 1], 4, [1, 1, 1, 1]),   # at least one each when n ≥ number of labels
    ([1, 1, 1, 1, 1], 3, [1, 1, 1, 0, 0]),  # fewer seats than labels: earlier labels on ties
    ([1, 3, 2], 2, [0, 1, 1]),          # fewer seats than labels: largest remainders win
    ([4, 2], 6, [4, 2]),                # n = N
    ([4, 2], 100, [4, 2]),              # n > N: everything
])
def test_allocate_largest_remainder(counts, n, expected):
    assert allocate(counts, n) == expected


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=12), st.integers(1, 200))
def test_allocate_properties(counts, n):
    seats = allocate(counts, n)
    total = sum(counts)
    assert sum(seats) == min(n, total)
    assert all(0 <= s <= c for s, c in zip(seats, counts))
    if n >= len(counts):
        assert all(s >= 1 for s in seats)
    if n < total and all(n * c >= total for c in counts):  # every quota ≥ 1: no minimum-one moves
        assert all(math.floor(n * c / total) <= s <= math.ceil(n * c / total) for s, c in zip(seats, counts))


@pytest.mark.parametrize("bad", [[0, 3], [-1, 3], [2.0, 3], [True, 3]])
def test_allocate_rejects_bad_group_sizes(bad):
    with pytest.raises(UsageError, match="group sizes"):
        allocate(bad, 2)


# ---- the sample ------------------------------------------------------------------------------
def test_each_label_gets_its_allocated_share():
    labels = ["x"] * 30 + ["y"] * 12 + ["z"] * 6 + ["w"] * 2
    chosen = stratified_sample(labels, 10, seed=3)
    assert chosen == sorted(set(chosen)) and len(chosen) == 10
    assert Counter(labels[i] for i in chosen) == {"x": 6, "y": 2, "z": 1, "w": 1}


def test_sample_is_pinned_to_the_method():
    """A hard-coded expectation: any change to the allocation or the SHA-256 ranking breaks it,
    which is a change of every published --limit sample and must be deliberate."""
    assert stratified_sample(SMALL, 8) == [3, 4, 6, 9, 10, 12, 16, 18]
    assert stratified_sample(SMALL, 8, seed=1) == [0, 4, 8, 10, 12, 13, 14, 18]
    assert rank_key(0, "A", 3) == hashlib.sha256(b"0:A:3").hexdigest()


def test_sample_is_deterministic_and_seed_dependent():
    labels = [i % 5 for i in range(500)]
    first = stratified_sample(labels, 37, seed=11)
    assert stratified_sample(list(labels), 37, seed=11) == first
    assert stratified_sample(labels, 37, seed=12) != first


def test_within_a_label_the_lowest_rank_keys_are_taken():
    labels = ["only"] * 50
    chosen = stratified_sample(labels, 7, seed=5)
    assert chosen == sorted(sorted(range(50), key=lambda i: rank_key(5, "only", i))[:7])


def test_single_label_and_small_inputs():
    assert len(stratified_sample(["a"] * 9, 4)) == 4
    assert stratified_sample(["a"], 1) == [0]
    assert stratified_sample([], 5) == []


@pytest.mark.parametrize("n", [20, 21, 1000])
def test_n_at_least_the_input_returns_everything(n):
    assert stratified_sample(SMALL, n) == list(range(len(SMALL)))


@pytest.mark.parametrize("n", [0, -1, -40])
def test_non_positive_n_is_a_usage_error(n):
    with pytest.raises(UsageError, match=f"at least 1 example, got {n}"):
        stratified_sample(SMALL, n)


@pytest.mark.parametrize("n", [2.5, "4", True, None])
def test_non_integer_n_is_a_usage_error(n):
    with pytest.raises(UsageError, match="whole number of examples"):
        stratified_sample(SMALL, n)


def test_non_integer_seed_is_a_usage_error():
    with pytest.raises(UsageError, match="seed must be a whole number"):
        stratified_sample(SMALL, 3, seed="1")


def test_missing_gold_labels_share_one_stratum():
    chosen = stratified_sample(SMALL, 8)
    # A 10, B 6, C 2, unlabeled 2 of 20 → 4, 2, 1, 1
    assert label_counts(SMALL, chosen) == {"A": 4, "B": 2, "C": 1, UNLABELED: 1}
    unlabeled = [None] * 6 + [""] * 6
    assert stratified_sample(unlabeled, 5) == sorted(sorted(range(12), key=lambda i: rank_key(0, UNLABELED, i))[:5])


def test_label_counts_lists_every_label_in_first_appearance_order():
    labels = ["b", "a", "b", "c"]
    assert list(label_counts(labels, [0, 2]).items()) == [("b", 2), ("a", 0), ("c", 0)]


# ---- real FewCLUE rows (tests/fixtures/fewclue) --------------------------------------------------------------------
def _gold_labels(task: str, split: str) -> list:
    """Gold label per line, found as the harness does: the task config's 'label' field, or for
    the cloze task (ChID) its 'answer' field (the index of the right candidate)."""
    from nspzero.tasks.base import get_path
    from nspzero.tasks.registry import load_config

    config = load_config(task)
    field = config.fields["answer" if config.type == "cloze" else "label"]
    path = FEWCLUE / config.folder / f"{split}.json"
    with open(path, encoding="utf-8") as handle:
        return [get_path(json.loads(line), field) for line in handle if line.strip()]


@pytest.mark.parametrize("split", ["test_public", "dev_few_all"])
def test_limit_gives_every_label_its_share_on_fewclue(split):
    from nspzero.tasks.registry import FEWCLUE

    n = 10
    for task in FEWCLUE:
        labels = _gold_labels(task, split)
        chosen = stratified_sample(labels, n)
        assert len(chosen) == n, task
        counts, got = Counter(labels), Counter(labels[i] for i in chosen)
        for label, c in counts.items():
            quota = n * c / len(labels)
            assert math.floor(quota) <= got[label] <= math.ceil(quota), (task, split, label, got[label], quota)
            if n >= len(counts):
                assert got[label] >= 1, (task, split, label)
        assert stratified_sample(labels, n) == chosen  # same sample twice
