"""pytest configuration of the tapead benchmark suite (issue 2, "Speed").

- ``plain``: the plain-Python baseline, measured once per session with timeit best-of-N
  (the same estimator as the benchmarks' ``min``), so
  every ratio stored in ``benchmark.extra_info`` comes from the same run;
- ``rosen_tape``: large Rosenbrock tapes recorded once per session for the sweep benchmarks;
- ``--huge`` (or TAPEAD_BENCH_HUGE=1): also run the 10**8-operation tape (tens of seconds,
  about 3 GB of memory); skipped by default.

The problems, their oracles and the timing helpers are in benchlib.py. Times are per call, in
seconds; "best" is the minimum over rounds (the usual estimator on a noisy shared machine).
"""
import math
import os

import numpy as np
import pytest
from scipy.optimize import rosen

import tapead as ad
from benchlib import SEED_X, best_of, rosen_loop, rosen_point, seed_plain_f, seed_value


# ---- the plain-Python baseline, measured once per session ------------------------------------
class Plain:
    """Plain-Python time of one evaluation of each problem, by input kind (list / ndarray)."""

    def __init__(self):
        self._cache = {}

    def __call__(self, problem, kind):
        key = (problem, kind)
        if key not in self._cache:
            self._cache[key] = self._measure(problem, kind)
        return self._cache[key]

    @staticmethod
    def _measure(problem, kind):
        if problem == "seed":
            x, f, value = np.array(SEED_X), seed_plain_f, seed_value(SEED_X)
        else:
            x, f = rosen_point(problem), rosen_loop
            value = rosen(x)
        x = x.tolist() if kind == "list" else x
        assert math.isclose(f(x), value, rel_tol=1e-12), "plain f disagrees with its oracle"
        return best_of(lambda: f(x))


@pytest.fixture(scope="session")
def plain():
    """plain(problem, kind) -> seconds per plain-Python evaluation; problem is a Rosenbrock n
    or "seed", kind "list" (the natural, fastest input) or "ndarray"."""
    return Plain()


# ---- tapes shared between benchmarks ---------------------------------------------------------
@pytest.fixture(scope="session")
def rosen_tape():
    """rosen_tape(n) -> (tape, x) recorded once per session."""
    cache = {}

    def get(n):
        if n not in cache:
            x = rosen_point(n)
            cache[n] = (ad.record(rosen_loop, x), x)
        return cache[n]

    yield get
    cache.clear()


# ---- the 10**8-operation benchmark: opt-in ----------------------------------------------------
def pytest_addoption(parser):
    parser.addoption("--huge", action="store_true", default=False,
                     help="also run the 10**8-operation tape benchmark (tens of seconds, ~3 GB)")


def pytest_configure(config):
    config.addinivalue_line("markers", "huge: the 10**8-operation tape; run with --huge or "
                                       "TAPEAD_BENCH_HUGE=1")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--huge") or os.environ.get("TAPEAD_BENCH_HUGE", "") not in ("", "0"):
        return
    skip = pytest.mark.skip(reason="10**8-operation tape: run with --huge (or TAPEAD_BENCH_HUGE=1)")
    for item in items:
        if "huge" in item.keywords:
            item.add_marker(skip)
