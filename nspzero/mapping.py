"""Answer mapping: P(IsNext) scores → predicted label indexes (method.md §2).

Candidates-contrast (C-C) compares the candidates of one example; samples-contrast (S-C)
compares examples with each other, because a sentence-pair task yields one score per example.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .contrast import COMBINE_RULES, candidates_contrast, combine, multi_label  # noqa: F401 - the C-C half, re-exported
from .errors import UsageError, shown


def score_column(X: Sequence[float], what: str, estimator: Optional[BaseEstimator] = None,
                 reset: bool = True) -> np.ndarray:
    """One P(IsNext) per example (a 1-D array or an (n, 1) column), checked by sklearn (finite, real,
    dense, not empty) for S-C, batched or fitted; its ValueErrors become UsageErrors naming `what`.
    With an `estimator`, sklearn's `validate_data` also records or checks its `n_features_in_`."""
    if np.ndim(X) == 1:
        X = np.asarray(X).reshape(-1, 1)
    try:
        column = check_array(X, dtype=np.float64, input_name="X") if estimator is None else \
            validate_data(estimator, X, reset=reset, dtype=np.float64)
    except ValueError as exc:
        raise UsageError(f"{what}: {str(exc).splitlines()[0]}") from None
    if column.shape[1] != 1:
        raise UsageError(f"{what} must be one column of scores (n, 1) or a 1-D array, got shape {column.shape}")
    return column[:, 0]


def equal_split(scores: np.ndarray, n_labels: int) -> np.ndarray:
    """Label each score by its rank: sorted ascending, cut into n_labels groups of n // n_labels,
    the last group taking the rest. Equal scores keep their input order (stable sort)."""
    n = len(scores)
    group = n // n_labels
    order = np.argsort(scores, kind="stable")
    labels = np.empty(n, dtype=np.int64)
    ranks = np.arange(n)
    labels[order] = np.minimum(ranks // group, n_labels - 1) if group else n_labels - 1
    return labels


class NotFitted(UsageError, NotFittedError):
    """`predict` before `fit`: a usage error for nspzero, sklearn's NotFittedError for its tools."""


class SamplesContrast(BaseEstimator):
    """S-C mapping as a scikit-learn estimator: `fit` learns `thresholds_` on dev scores, `predict`
    applies them (so it composes with sklearn tools: clone, get_params, pipelines).

    The authors' rule: with n dev scores and L labels, g = n // L; sorted ascending, group i < L-1
    is positions [i·g, (i+1)·g) and the last group takes the rest; threshold i is the highest dev
    score in group i. A score gets the first label i with score < threshold i, else the last label.
    Label 0 is the "low NSP score" label (e.g. contradiction, not-paraphrase, false).
    `X` is an (n, 1) column of P(IsNext), or a 1-D array of them; `y` is ignored (unsupervised).
    Inputs are validated by sklearn (`validate_data`: finite, real, dense, not empty); the checks
    of `check_estimator` that cannot apply to one score column are listed in `EXPECTED_FAILED_CHECKS`.
    """

    def __init__(self, n_labels: int = 2) -> None:
        self.n_labels = n_labels  # validated in fit, as sklearn's set_params/clone expect

    def fit(self, X: Sequence[float], y: object = None) -> "SamplesContrast":
        _check_n_labels(self.n_labels)
        arr = score_column(X, "dev scores", self, reset=True)
        group = len(arr) // self.n_labels
        if group == 0:
            raise UsageError(f"samples-contrast with {self.n_labels} labels needs at least {self.n_labels} dev "
                             f"examples to learn thresholds, got {len(arr)}")
        ordered = np.sort(arr)
        self.thresholds_ = np.array([ordered[(i + 1) * group - 1] for i in range(self.n_labels - 1)])
        self.n_fit_ = len(arr)
        return self

    def predict(self, X: Sequence[float]) -> np.ndarray:
        try:
            check_is_fitted(self)
        except NotFittedError:
            raise NotFitted("SamplesContrast.predict called before fit; fit it on dev scores first "
                            "(or use batched_samples_contrast, which needs no dev set)") from None
        arr = score_column(X, "scores", self, reset=False)
        below = arr[:, None] < self.thresholds_[None, :]
        # first threshold the score is below; none → the last label
        return np.where(below.any(axis=1), np.argmax(below, axis=1), self.n_labels - 1)


# sklearn's check_estimator on SamplesContrast: the checks that cannot apply to one score column
_ONE_COLUMN = "S-C maps one P(IsNext) score per example; data with several features has no meaning here"
EXPECTED_FAILED_CHECKS = {**dict.fromkeys((
    "check_fit_score_takes_y", "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self", "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit", "check_estimators_dtypes", "check_dtype_object",
    "check_pipeline_consistency", "check_estimators_pickle", "check_f_contiguous_array_estimator",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance", "check_dict_unchanged",
    "check_fit_idempotent", "check_fit_check_is_fitted", "check_n_features_in", "check_fit2d_predict1d",
    "check_estimators_nan_inf", "check_fit2d_1sample"), _ONE_COLUMN),
    "check_fit1d": "a 1-D array of scores is accepted on purpose: one score per example is its natural form",
}


def _check_n_labels(n_labels: object) -> None:
    if isinstance(n_labels, bool) or not isinstance(n_labels, (int, np.integer)) or n_labels < 2:
        raise UsageError(f"samples-contrast needs at least 2 labels, got {shown(n_labels)}")


def batched_samples_contrast(scores: Sequence[float], n_labels: int, chunk_size: int) -> np.ndarray:
    """S-C without a dev set: the equal split applied within consecutive chunks in input order.

    Chunks hold `chunk_size` scores; the last chunk takes the remainder (as the last group does).
    A chunk smaller than n_labels puts all its examples in the last label.
    """
    arr = score_column(scores, "scores")
    _check_n_labels(n_labels)
    if chunk_size < 1:
        raise UsageError(f"chunk_size must be ≥ 1, got {chunk_size}")
    n_chunks = max(1, len(arr) // chunk_size)
    out = np.empty(len(arr), dtype=np.int64)
    for c in range(n_chunks):
        start = c * chunk_size
        stop = len(arr) if c == n_chunks - 1 else start + chunk_size
        out[start:stop] = equal_split(arr[start:stop], n_labels)
    return out
