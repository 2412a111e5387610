"""metrics.py: a task YAML's `metric:` names, and their values against hand-computed ones."""
import pytest

from nspzero.errors import UsageError
from nspzero.metrics import compute, metric_names


def test_accuracy_always_comes_first_and_names_are_not_repeated():
    assert metric_names(None) == ("accuracy",)
    assert metric_names("macro_f1") == ("accuracy", "macro_f1")
    assert metric_names(["macro_f1", "accuracy", "macro_f1"]) == ("accuracy", "macro_f1")


def test_an_unknown_metric_is_a_usage_error_naming_the_choices():
    with pytest.raises(UsageError, match=r"metric 'f1' is not one of accuracy, macro_f1"):
        metric_names(["accuracy", "f1"])


def test_values_equal_the_hand_computed_ones():
    """gold a a b c, predicted a b b b: accuracy 2/4; F1 per label a 2/3 (P 1, R 1/2), b 1/2
    (P 1/3, R 1), c 0 (never predicted: 0, not a warning), so macro-F1 = (2/3 + 1/2 + 0) / 3."""
    got = compute(("accuracy", "macro_f1"), ["a", "a", "b", "c"], ["a", "b", "b", "b"])
    assert got["accuracy"] == pytest.approx(0.5)
    assert got["macro_f1"] == pytest.approx((2 / 3 + 1 / 2) / 3)
    assert list(got) == ["accuracy", "macro_f1"] and all(type(v) is float for v in got.values())
