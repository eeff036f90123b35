"""Shared test settings."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Bounded, derandomized profile for CI; a wider one for local digging
# (HYPOTHESIS_PROFILE=thorough pytest ...).
settings.register_profile(
    "ci",
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
