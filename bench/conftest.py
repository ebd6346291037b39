"""pytest configuration of the tapead benchmark suite (speed against plain Python).

- ``plain``: the plain-Python baseline, measured once per session with timeit best-of-N
  (the same estimator as the benchmarks' ``min``), so
  every ratio stored in ``benchmark.extra_info`` comes from the same run;
- ``rosen_tape``: large Rosenbrock tapes recorded once per session for the sweep benchmarks;
- ``--huge`` (or TAPEAD_BENCH_HUGE=1): also run the 10**8-operation tape (tens of seconds,
  about 3 GB of memory); skipped by default.

The modes, problem-suite and peer benchmarks add:
- ``--full`` (or TAPEAD_BENCH_FULL=1): the long variants, marked ``full`` (larger problem sizes,
  every peer on every problem, the slow peers at the target sizes); skipped by default so that
  ``python -m pytest bench`` stays within a few minutes;
- the ``peers`` marker on the side-by-side benchmarks (``-m "not peers"`` leaves them out); a
  peer that is not installed is skipped, and the reasons of every skipped peer benchmark are
  written into the JSON (``"tapead_skips"``) so that bench/report.py can show them;
- ``problem_plain``: the plain-Python time of a problems.Problem, measured once per session;
- the machine (lscpu model name, cores) in the JSON's machine_info.

The problems, their oracles and the timing helpers are in benchlib.py. Times are per call, in
seconds; "best" is the minimum over rounds (the usual estimator on a noisy shared machine).
"""
import functools
import math
import os

import numpy as np
import pytest
from scipy.optimize import rosen

import tapead as ad
from benchlib import (SEED_X, _flag, best_of, full_run, rosen_loop, rosen_point, seed_plain_f,
                      seed_value)


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
    @functools.cache
    def get(n):
        x = rosen_point(n)
        return ad.record(rosen_loop, x), x

    yield get
    get.cache_clear()


# ---- the 10**8-operation benchmark: opt-in ----------------------------------------------------
def pytest_addoption(parser):
    parser.addoption("--huge", action="store_true", default=False,
                     help="also run the 10**8-operation tape benchmark (tens of seconds, ~3 GB)")
    parser.addoption("--full", action="store_true", default=False,
                     help="also run the long variants (larger problems, every peer on "
                          "every problem; about 10 minutes)")


def pytest_configure(config):
    config.addinivalue_line("markers", "huge: the 10**8-operation tape; run with --huge or "
                                       "TAPEAD_BENCH_HUGE=1")
    config.addinivalue_line("markers", "full: a long variant; run with --full or "
                                       "TAPEAD_BENCH_FULL=1")
    config.addinivalue_line("markers", "peers: other AD systems side by side (skipped per "
                                       "system when it is not installed)")


def pytest_collection_modifyitems(config, items):
    huge, full = _flag(config, "--huge", "TAPEAD_BENCH_HUGE"), full_run(config)
    skip_huge = pytest.mark.skip(reason="10**8-operation tape: run with --huge (or "
                                        "TAPEAD_BENCH_HUGE=1)")
    skip_full = pytest.mark.skip(reason="long variant: run with --full (or TAPEAD_BENCH_FULL=1)")
    for item in items:
        if "huge" in item.keywords and not huge:
            item.add_marker(skip_huge)
        if "full" in item.keywords and not full:
            item.add_marker(skip_full)


# ---- skip reasons and the machine, into the benchmark JSON -----------------------------------
_SKIPS = []


def pytest_runtest_logreport(report):
    """Remember why a peers benchmark was skipped (not installed, not supported, over budget)."""
    if report.skipped and "peers" in report.keywords and report.when in ("setup", "call"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _SKIPS.append({"test": report.nodeid.split("::")[-1],
                       "reason": reason.removeprefix("Skipped: ")})


def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json["tapead_skips"] = list(_SKIPS)
    output_json["tapead_full"] = full_run(config)


def pytest_benchmark_update_machine_info(config, machine_info):
    import subprocess
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        machine_info["lscpu_model"] = info.get("Model name", "").strip()
        machine_info["lscpu_cpus"] = info.get("CPU(s)", "").strip()
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    machine_info["cores"] = os.cpu_count()


# ---- the plain-Python time of a problem of bench/problems.py ------------------------
@pytest.fixture(scope="session")
def problem_plain():
    """problem_plain(problem) -> seconds of one plain-Python evaluation f(list of floats, PLAIN),
    measured once per session (timeit best-of-N) after checking the value against the oracle."""
    from problems import PLAIN
    cache = {}

    def get(problem):
        if problem.id not in cache:
            x = problem.x0.tolist()
            problem.check_value(problem.f(x, PLAIN), problem.x0)
            cache[problem.id] = best_of(lambda: problem.f(x, PLAIN), budget=0.5, min_repeat=5)
        return cache[problem.id]

    return get


@pytest.fixture(scope="session")
def tape_ops():
    """tape_ops(problem) -> len(tape) of tapead's recording of the problem (the unit of every
    ns/op, for tapead and the peers alike)."""
    import peers
    cache = {}

    def get(problem):
        if problem.id not in cache:
            cache[problem.id] = len(peers.get("tapead").record(problem, problem.x0))
        return cache[problem.id]

    return get
