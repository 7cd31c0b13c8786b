"""Test-wide settings: property tests are judged on what they find, never on how fast the shared
machine runs them (no deadlines, no too-slow health checks), so a busy CI machine cannot fail
them."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "dcc",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("dcc")
