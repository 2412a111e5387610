"""candidates.py: flat scores split back, combined per candidate, windows aggregated, ranked (the one
scoring call over many sets is `pipeline.forward`, tested in test_pipeline.py). Each value below is
computed by hand."""
import math

import numpy as np
import pytest

from nspzero.candidates import Candidates, best, ranked, split_by
from nspzero.scorer import Pair

P = {"w1a": 0.3, "w1b": 0.8, "w2a": 0.6, "w2b": 0.2}


def pairs(*names):
    return [Pair(n, "text") for n in names]


def test_split_by_slices_in_order_and_refuses_counts_that_do_not_add_up():
    assert [list(s) for s in split_by([1, 2, 3, 4, 5], [2, 0, 3])] == [[1, 2], [], [3, 4, 5]]
    assert split_by([], []) == []
    with pytest.raises(ValueError, match="counts add up to 4, but there are 5 items"):
        split_by([1, 2, 3, 4, 5], [2, 2])


def test_a_set_combines_its_candidates_pairs():
    first = Candidates.of([("A", pairs("a1", "a2")), ("B", pairs("b1"))])
    second = Candidates.of([("C", pairs("c1", "c2")), ("B", pairs("b1"))], how="logmean")
    np.testing.assert_allclose(first.scores(np.array([0.9, 0.5, 0.2])), [0.7, 0.2])             # mean
    np.testing.assert_allclose(second.scores(np.array([0.4, 0.1, 0.2])), [math.sqrt(0.4 * 0.1), 0.2])  # geometric


def test_windows_combine_per_window_then_aggregate():
    """Two windows × two prompts per candidate: prompts combine (mean) within a window, then the
    windows aggregate by max or mean."""
    flat = np.array([P[n] for n in ("w1a", "w1b", "w2a", "w2b")])     # window 1: 0.3, 0.8; window 2: 0.6, 0.2
    by_max = Candidates(("X",), tuple(pairs("w1a", "w1b", "w2a", "w2b")), (4,), windows=2, aggregate="max")
    by_mean = Candidates(("X",), by_max.pairs, (4,), windows=2, aggregate="mean")
    np.testing.assert_allclose(by_max.scores(flat), [0.55])            # max(0.55, 0.4)
    np.testing.assert_allclose(by_mean.scores(flat), [0.475])          # mean(0.55, 0.4)


def test_ties_go_to_the_first_candidate_and_ranking_is_stable():
    row = np.array([0.3, 0.7, 0.7, 0.1])
    assert best(["a", "b", "c", "d"], row) == "b"
    assert list(ranked(["a", "b", "c", "d"], row)) == ["b", "c", "a", "d"]
    assert ranked(["a", "b"], np.array([0.25, 0.5])) == {"b": 0.5, "a": 0.25}
