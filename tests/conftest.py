"""Shared pytest configuration: Hypothesis profiles.

* ``ci`` (the default): deterministic.  ``derandomize=True`` seeds every test
  from a hash of its own source, no example database is read or written, and
  there is no per-example deadline (a loaded CI machine must not turn a slow
  example into a failure).  The same examples run on every machine, every time.
* ``dev``: random exploration with the local example database, for hunting
  bugs by hand: ``HYPOTHESIS_PROFILE=dev pytest tests/unit``.
* ``fuzz``: like ``dev``, and :func:`examples` multiplies every test's
  example budget by ``HYPOTHESIS_FUZZ_FACTOR`` (default 20), for a long run:
  ``HYPOTHESIS_PROFILE=fuzz pytest tests/unit -k "framing or pus"``.

Pick one with the ``HYPOTHESIS_PROFILE`` environment variable.  Tests write
``@settings(max_examples=examples(300))`` so that the fuzz profile scales them.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)
settings.register_profile("fuzz", deadline=None)

PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)

_FACTOR = int(os.environ.get("HYPOTHESIS_FUZZ_FACTOR", "20")) if PROFILE == "fuzz" else 1


def examples(n: int) -> int:
    """The example budget for a test: ``n``, scaled up under the fuzz profile."""
    return n * _FACTOR
