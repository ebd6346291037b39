"""Small calls: the per-call overhead users meet in optimiser loops, side by side with plain
Python in one run (group "small calls").

On the seed's f(x1, x2) = x1·sqrt(log(x1 / sin(x2²))):
- ``plain``: one plain-Python evaluation f(2.0, 1.0) (math functions, floats): the baseline;
- ``multi_arg_gradient``: ``t.gradient((3.0, 0.5))`` on ``t = ad.record(f, 2.0, 1.0)`` (inputs
  recorded as two scalar pieces; the gradient is a tuple of floats);
- ``one_array_gradient``: ``t.gradient(np.array([3.0, 0.5]))`` on ``ad.record(f, np.array(...))``;
- ``record_gradient``: ``ad.record(f, x).gradient()``, recording plus the first gradient, with x
  one array and with two scalars;
- ``ad_grad``: ``ad.grad(f)(x)``.

Targets (bench/report.py): a multi-arg gradient <= 1 µs, recording plus the first gradient and
ad.grad <= 3 µs. Every benchmark checks its result against the closed form first. Ratios to the
plain f go to ``benchmark.extra_info``: ``ratio_to_plain`` against the session baseline
(timeit best-of-N, as bench/conftest.py's), and ``ratio_interleaved`` from
benchlib.interleaved_best, the call and the plain f timed round-robin right after the benchmark,
so that both see the same machine load (the more trustworthy of the two on a busy machine).
"""
import math

import numpy as np
import pytest

import tapead as ad
from benchlib import (SEED_X, SEED_X_NEW, assert_grad, best, best_of, interleaved_best,
                      seed_grad, seed_tape_f, seed_value)

SMALL = pytest.mark.benchmark(min_time=2e-4, max_time=1.0, min_rounds=20, warmup=True,
                              warmup_iterations=20_000)
GROUP = "small calls"
TARGET_US = {"multi_arg_gradient": 1.0, "record_gradient": 3.0, "ad_grad": 3.0}


def seed_plain2(x1, x2):
    """The seed's f on two floats with the math module: the baseline."""
    return x1 * math.sqrt(math.log(x1 / math.sin(x2 ** 2)))


def seed_tape2(x1, x2):
    """The same f on two scalars with tapead functions."""
    return x1 * ad.sqrt(ad.log(x1 / ad.sin(x2 ** 2)))


@pytest.fixture(scope="module")
def plain2():
    """Seconds of one plain f(2.0, 1.0), measured once per module (timeit best-of-N)."""
    assert math.isclose(seed_plain2(*SEED_X), seed_value(np.array(SEED_X)), rel_tol=1e-14)
    return best_of(lambda: seed_plain2(2.0, 1.0))


def _plain_call():
    return seed_plain2(2.0, 1.0)


def describe(benchmark, kind, plain, fn, **more):
    """Time fn with pytest-benchmark and store its ratios to the plain f (see module doc)."""
    benchmark.group = GROUP
    info = benchmark.extra_info
    info.update(kind="small_" + kind, problem="seed", plain_s=plain, **more)
    if kind in TARGET_US:
        info["target_us"] = TARGET_US[kind]
    benchmark(fn)
    t = best(benchmark)
    if t is None:                                  # --benchmark-disable
        return
    info["us_per_call"] = t * 1e6
    info["ratio_to_plain"] = t / plain
    if kind != "plain":
        it = interleaved_best({"call": fn, "plain": _plain_call}, rounds=21)
        info.update(interleaved_s=it["call"], interleaved_plain_s=it["plain"],
                    ratio_interleaved=it["call"] / it["plain"])
        if kind in TARGET_US:
            info["meets_target"] = t * 1e6 <= TARGET_US[kind]


@SMALL
def test_small_plain(benchmark, plain2):
    """One plain-Python evaluation f(2.0, 1.0)."""
    describe(benchmark, "plain", plain2, _plain_call)


@SMALL
def test_small_multi_arg_gradient(benchmark, plain2):
    """t.gradient((3.0, 0.5)) on a tape recorded from two scalars."""
    t = ad.record(seed_tape2, *SEED_X)
    g = t.gradient(tuple(SEED_X_NEW))
    assert type(g) is tuple
    assert_grad(np.array(g), seed_grad(np.array(SEED_X_NEW)))
    assert g == t._gradient(tuple(SEED_X_NEW))           # the general path, bit for bit
    x_new = tuple(SEED_X_NEW)
    describe(benchmark, "multi_arg_gradient", plain2, lambda: t.gradient(x_new), ops=len(t))


@SMALL
def test_small_one_array_gradient(benchmark, plain2):
    """t.gradient(np.array([3.0, 0.5])) on a tape recorded from one array."""
    t = ad.record(seed_tape_f, np.array(SEED_X))
    x_new = np.array(SEED_X_NEW)
    assert_grad(t.gradient(x_new), seed_grad(x_new))
    describe(benchmark, "one_array_gradient", plain2, lambda: t.gradient(x_new), ops=len(t))


@SMALL
@pytest.mark.parametrize("form", ["one-array", "two-scalars"])
def test_small_record_gradient(benchmark, plain2, form):
    """ad.record(f, x).gradient(): recording plus the first gradient."""
    if form == "one-array":
        x = np.array(SEED_X)

        def fn():
            return ad.record(seed_tape_f, x).gradient()
    else:
        x1, x2 = SEED_X

        def fn():
            return ad.record(seed_tape2, x1, x2).gradient()
    assert_grad(np.array(fn()), seed_grad(np.array(SEED_X)))
    describe(benchmark, "record_gradient", plain2, fn, input=form)


@SMALL
def test_small_ad_grad(benchmark, plain2):
    """ad.grad(f)(x) with x one array."""
    g = ad.grad(seed_tape_f)
    x = np.array(SEED_X)
    assert_grad(g(x), seed_grad(x))
    describe(benchmark, "ad_grad", plain2, lambda: g(x))
