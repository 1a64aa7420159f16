"""Assertion helpers shared by the tests."""

import numpy as np


def rel_err(actual: np.ndarray, expected: np.ndarray) -> float:
    """Norm-wise relative error ‖actual − expected‖ / ‖expected‖ (absolute when expected is 0)."""
    actual, expected = np.asarray(actual, float), np.asarray(expected, float)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    scale = np.linalg.norm(expected)
    diff = np.linalg.norm(actual - expected)
    return float(diff / scale) if scale else float(diff)
