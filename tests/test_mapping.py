import numpy as np
import pytest

from nspzero.errors import UsageError
from nspzero.mapping import SamplesContrast, batched_samples_contrast, candidates_contrast, equal_split, multi_label


def test_candidates_contrast_argmax_ties_go_first():
    assert candidates_contrast(np.array([[0.1, 0.9, 0.9], [0.5, 0.5, 0.2]])).tolist() == [1, 0]


def test_multi_label_best_first():
    assert multi_label(np.array([[0.2, 0.7, 0.6]]), 0.5) == [[1, 2]]


def test_fit_two_labels_even():
    # sorted dev: .1 .2 .3 .4 | .5 .6 .7 .8 → g=4, threshold = highest of group 0 = .4
    sc = SamplesContrast(2).fit([0.8, 0.1, 0.5, 0.3, 0.7, 0.2, 0.6, 0.4])
    assert sc.thresholds_.tolist() == [0.4]
    # score < .4 → label 0; .4 itself is not below → label 1
    assert sc.predict([0.39, 0.4, 0.41, 0.0, 1.0]).tolist() == [0, 1, 1, 0, 1]


def test_fit_three_labels_with_remainder():
    # n=8, L=3 → g=2: groups [0,2) [2,4) and the last takes [4,8)
    dev = [0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4]
    sc = SamplesContrast(3).fit(dev)
    assert sc.thresholds_.tolist() == [0.2, 0.4]
    assert sc.predict([0.05, 0.2, 0.3, 0.4, 0.95]).tolist() == [0, 1, 1, 2, 2]


def test_fit_with_ties():
    sc = SamplesContrast(2).fit([0.5, 0.5, 0.5, 0.5])
    assert sc.thresholds_.tolist() == [0.5]
    assert sc.predict([0.5, 0.49]).tolist() == [1, 0]


def test_fit_errors():
    with pytest.raises(UsageError, match="at least 3 dev examples"):
        SamplesContrast(3).fit([0.1, 0.2])
    with pytest.raises(UsageError, match="before fit"):
        SamplesContrast(2).predict([0.1])
    with pytest.raises(UsageError, match="NaN"):
        SamplesContrast(2).fit([0.1, float("nan")])
    with pytest.raises(UsageError, match="at least 2 labels"):
        SamplesContrast(1).fit([0.1, 0.2])   # checked in fit, as sklearn's clone and set_params expect


def test_equal_split_by_rank_stable_on_ties():
    assert equal_split(np.array([0.3, 0.1, 0.2, 0.4]), 2).tolist() == [1, 0, 0, 1]
    assert equal_split(np.array([0.5, 0.5, 0.5]), 3).tolist() == [0, 1, 2]
    assert equal_split(np.array([0.5, 0.1, 0.9, 0.3, 0.7]), 2).tolist() == [1, 0, 1, 0, 1]  # last takes rest


def test_batched_variant_chunks_in_file_order():
    scores = [0.9, 0.1, 0.2, 0.8, 0.5, 0.6, 0.7]
    # chunk 2: [.9 .1] [.2 .8] and the last chunk takes the remainder [.5 .6 .7]
    assert batched_samples_contrast(scores, 2, 2).tolist() == [1, 0, 0, 1, 0, 1, 1]
    # one chunk with everything = the equal split of the whole set
    assert batched_samples_contrast(scores, 2, 100).tolist() == equal_split(np.array(scores), 2).tolist()
    # chunks smaller than the label count → the last label
    assert batched_samples_contrast(scores, 2, 1).tolist() == [1] * 7


@pytest.mark.parametrize("scores, message", [
    ([0.1, float("nan")], "Input X contains NaN"),
    ([0.1, float("inf")], "Input X contains infinity"),
    ([], "Found array with 0 sample(s)"),
    ([[0.1, 0.2], [0.3, 0.4]], "must be one column of scores (n, 1) or a 1-D array, got shape (2, 2)"),
    (["0.1", "x"], "could not convert string to float"),
])
def test_batched_and_fitted_samples_contrast_refuse_bad_scores_in_the_same_words(scores, message):
    """One validation (sklearn's) for both S-C paths: the same input gets the same message."""
    with pytest.raises(UsageError) as batched:
        batched_samples_contrast(scores, 2, 2)
    with pytest.raises(UsageError) as fitted:
        SamplesContrast(2).fit(scores)
    assert message in str(batched.value) and message in str(fitted.value)
    with pytest.raises(UsageError, match="at least 2 labels, got 1"):
        batched_samples_contrast([0.1, 0.2], 1, 2)


def test_samples_contrast_passes_sklearns_estimator_checks():
    """Every check of sklearn's check_estimator passes but those that cannot apply to one score
    column (declared, with reasons, in EXPECTED_FAILED_CHECKS) — and each of those does fail."""
    import warnings

    from sklearn.utils.estimator_checks import check_estimator

    from nspzero.mapping import EXPECTED_FAILED_CHECKS

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(SamplesContrast(), expected_failed_checks=EXPECTED_FAILED_CHECKS, on_fail=None)
    failed = {r["check_name"] for r in results if r["status"] == "failed"}
    expected = {r["check_name"] for r in results if r["status"] == "xfail"}
    assert failed == set() and expected == set(EXPECTED_FAILED_CHECKS)
    assert all(reason for reason in EXPECTED_FAILED_CHECKS.values())


def test_predict_before_fit_is_sklearns_not_fitted_error_and_a_usage_error():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="before fit"):
        SamplesContrast(2).predict([0.1])
    assert SamplesContrast(2).fit(np.array([[0.1], [0.9]])).predict(np.array([[0.05], [0.95]])).tolist() == [0, 1]
