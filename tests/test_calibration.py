"""Calibration rows beyond the paper: content-free and prior re-weighting of label scores."""
import numpy as np

from nspzero.calibration import content_free, prior


def test_calibration_math():
    m = np.array([[0.8, 0.6], [0.4, 0.5]])
    np.testing.assert_allclose(content_free(m, np.array([0.8, 0.5])), [[1.0, 1.2], [0.5, 1.0]])
    np.testing.assert_allclose(prior(m), m / np.array([0.6, 0.55]))
