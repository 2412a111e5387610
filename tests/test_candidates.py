"""candidates.py: every input's pairs scored in one call, split back, combined per candidate, windows
aggregated, ranked. A fake score function (a number per pair) stands in for the model, so each value
below is computed by hand."""
import math

import numpy as np
import pytest

from nspzero.candidates import Candidates, best, ranked, score_candidates, split_by
from nspzero.scorer import Pair

P = {"a1": 0.9, "a2": 0.5, "b1": 0.2, "c1": 0.4, "c2": 0.1, "w1a": 0.3, "w1b": 0.8, "w2a": 0.6, "w2b": 0.2}


def fake_score(calls: list):
    """P(IsNext) = the table's value of the pair's first text; records each call's pairs."""
    def score(pairs):
        calls.append([p.first for p in pairs])
        return np.array([P[p.first] for p in pairs])
    return score


def pairs(*names):
    return [Pair(n, "text") for n in names]


def test_split_by_slices_in_order_and_refuses_counts_that_do_not_add_up():
    assert [list(s) for s in split_by([1, 2, 3, 4, 5], [2, 0, 3])] == [[1, 2], [], [3, 4, 5]]
    assert split_by([], []) == []
    with pytest.raises(ValueError, match="counts add up to 4, but there are 5 items"):
        split_by([1, 2, 3, 4, 5], [2, 2])


def test_all_sets_are_scored_in_one_call_and_combined_per_candidate():
    calls = []
    first = Candidates.of([("A", pairs("a1", "a2")), ("B", pairs("b1"))])
    second = Candidates.of([("C", pairs("c1", "c2")), ("B", pairs("b1"))], how="logmean")
    rows = score_candidates(fake_score(calls), [first, second])
    assert calls == [["a1", "a2", "b1", "c1", "c2", "b1"]]            # one call, in order
    np.testing.assert_allclose(rows[0], [0.7, 0.2])                    # mean of 0.9 and 0.5
    np.testing.assert_allclose(rows[1], [math.sqrt(0.4 * 0.1), 0.2])   # geometric mean
    assert best(first.names, rows[0]) == "A" and best(second.names, rows[1]) == "C"


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
