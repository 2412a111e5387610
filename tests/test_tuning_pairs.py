"""Labelled texts → tuning pairs (nspzero.tuning.pairs): the classification path's own prompts, gold 1 / others 0."""
import logging

import numpy as np
import pytest

from nspzero.errors import DataError, UsageError
from nspzero.request import build_request
from nspzero.scorer import NSPScorer, Pair
from nspzero.tuning.pairs import check_examples, text_pairs


@pytest.fixture(scope="module")
def scorer(model_dir):
    return NSPScorer.from_pretrained(model_dir)


def test_each_text_pairs_with_every_labels_prompts_as_classify_makes_them(scorer):
    request = build_request({"pos": ["很好", "不错"], "neg": "很差"}, template=["东西{label}", "{label}"],
                            placement="suffix")
    [first, second] = text_pairs(scorer, request, ["这次买的", "一般般"], ["neg", "pos"])
    assert first.pairs == tuple(request.candidates("这次买的").pairs)  # the path classify scores
    assert first.pairs[0] == Pair("这次买的", "东西很好", prompt="second")
    assert first.label_of.tolist() == [0, 0, 0, 0, 1, 1] and first.gold == 1
    assert first.targets.tolist() == [0, 0, 0, 0, 1, 1]
    np.testing.assert_array_equal(second.targets, [1, 1, 1, 1, 0, 0])


@pytest.mark.parametrize("texts, targets, error, needle", [
    (["a", "b"], ["好"], UsageError, "2 texts but 1 targets"),
    (["东西", "物品"], ["好", "差"], DataError, "texts[1]: target '差' is not one of the labels"),
    (["东西", "物品"], ["好", "好"], DataError, "at least 2 classes"),
    (["东西"], ["好"], DataError, "at least 2 labelled texts"),
    (["东西", " "], ["好", "坏"], UsageError, "texts[1] is empty"),
])
def test_bad_examples_are_refused_in_one_line(texts, targets, error, needle):
    request = build_request(["好", "坏"])
    with pytest.raises(error) as info:
        check_examples(request, texts, targets)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_conflicting_duplicates_warn_and_stay(nspzero_caplog):
    request = build_request(["好", "坏"])
    with nspzero_caplog.at_level(logging.WARNING, logger="nspzero"):
        kept = check_examples(request, ["东西", "物品", "东西"], ["好", "坏", "坏"], where=lambda i: f"t.jsonl:{i + 1}")
    assert kept == ["东西", "物品", "东西"]
    assert "t.jsonl:3: the same text as t.jsonl:1 has another target" in nspzero_caplog.text
