"""Shared test helpers and the Hypothesis profiles.

Profiles (tests/test_properties.py uses them):

``ci``   the default: a bounded number of examples, so the property tests take seconds;
``dev``  many more examples for a long local search: ``pytest --hypothesis-profile=dev``.

An example that builds a deep graph and differentiates it numerically element by element can
take longer than Hypothesis' 200 ms deadline on a slow machine, so neither profile has one.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=100, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=2000, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")  # --hypothesis-profile=... (read after this file) overrides it


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
