"""Test configuration: float64, fast compiles, a persistent compilation cache, and
hypothesis profiles.

Speed (the suite is dominated by XLA compiles of small, distinct configurations):

* ``jax_disable_most_optimizations`` skips LLVM's expensive passes (XLA's HLO passes,
  where the known CPU aborts live, still run). ``CONVT_TEST_FULL_OPT=1`` turns it off;
  CI's sweep step runs that way, so both settings are exercised.
* A persistent compilation cache (``CONVT_TEST_JAX_CACHE``, default ``.jax_cache/`` in
  the repository) makes a second run skip the compiles of the first.
* Hypothesis example counts come from profiles, not decorators: ``dev`` (random,
  the default), ``ci`` (derandomized, when ``CI`` is set) and ``sweep`` (the long sweeps
  of CI's own step); ``HYPOTHESIS_PROFILE`` picks one.
"""

import os
from pathlib import Path

import jax
from hypothesis import HealthCheck, settings

jax.config.update("jax_enable_x64", True)
if not os.environ.get("CONVT_TEST_FULL_OPT"):
    jax.config.update("jax_disable_most_optimizations", True)

_cache = os.environ.get("CONVT_TEST_JAX_CACHE", str(Path(__file__).parent.parent / ".jax_cache"))
if _cache:
    jax.config.update("jax_compilation_cache_dir", _cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

_common = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile("dev", max_examples=25, **_common)
settings.register_profile("ci", max_examples=25, derandomize=True, **_common)
settings.register_profile("sweep", max_examples=40, derandomize=True, **_common)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)
