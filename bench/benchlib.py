"""Problems, oracles and timing helpers shared by the tapead benchmarks (bench/).

A plain module (not conftest) so the benchmark files can import it by name.
"""
import math
import timeit

import numpy as np

import tapead as ad

# Rosenbrock sizes: n inputs give 8 * (n - 1) tape operations.
ROSEN_N = (10**4, 10**5)                  # the sizes, against plain Python
SWEEP_N = (125_001, 1_250_001)            # 10**6 and 10**7 operations: ns/op of the sweeps
HUGE_N = 12_500_001                       # 10**8 operations
SEED_X = [2.0, 1.0]                       # the seed's recording point
SEED_X_NEW = [3.0, 0.5]                   # ... and a new point for replays


# ---- the problems ----------------------------------------------------------------------------
def rosen_loop(x):
    """Extended Rosenbrock as a plain Python loop: works on floats and on tapead Vars."""
    s = 0.0
    for i in range(len(x) - 1):
        s = s + 100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2
    return s


def seed_tape_f(x):
    """The seed's f(x1, x2) = x1 sqrt(log(x1 / sin(x2^2))) with tapead functions."""
    return x[0] * ad.sqrt(ad.log(x[0] / ad.sin(x[1] ** 2)))


def seed_plain_f(x):
    """The same f with the math module (the plain-Python baseline)."""
    return x[0] * math.sqrt(math.log(x[0] / math.sin(x[1] ** 2)))


def seed_value(x):
    x1, x2 = x
    return x1 * np.sqrt(np.log(x1 / np.sin(x2 ** 2)))


def seed_grad(x):
    """Closed-form gradient of the seed's f."""
    x1, x2 = x
    L = math.log(x1 / math.sin(x2 ** 2))
    return np.array([math.sqrt(L) + 1 / (2 * math.sqrt(L)),
                     -x1 * x2 / math.tan(x2 ** 2) / math.sqrt(L)])


def rosen_point(n, seed=0):
    return np.random.default_rng(seed).uniform(-2.0, 2.0, n)


def assert_grad(got, want):
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-10)


def rosen_ops(n):
    return 8 * (n - 1)


# ---- timing helpers --------------------------------------------------------------------------
def best_of(fn, budget=1.5, min_repeat=15, sample=1e-4):
    """Best per-call time of fn, estimated like pytest-benchmark's ``min``: each sample runs fn
    `number` times (the fewest, by powers of 10, that last >= `sample` seconds), and the minimum
    over samples taken for about `budget` seconds (at least `min_repeat`) is returned."""
    timer = timeit.Timer(fn)
    number = 1
    while True:
        t = timer.timeit(number)
        if t >= sample or number >= 10**6:
            break
        number *= 10
    repeat = max(min_repeat, int(budget / max(t, 1e-9)))
    return min(timer.repeat(repeat=repeat, number=number)) / number


def best(benchmark):
    """Best (min) per-call time of a finished benchmark; None when benchmarks are disabled."""
    st = getattr(benchmark, "stats", None)
    return st.stats.min if st else None


def ratios(info, t, problem, plain, speedup=False):
    """Store t against both plain-Python baselines in extra_info (a ratio, or a speedup)."""
    for kind in ("list", "ndarray"):
        p = plain(problem, kind)
        info[f"plain_{kind}_s"] = p
        if t is not None:
            if speedup:
                info[f"speedup_vs_plain_{kind}"] = p / t
            else:
                info[f"ratio_to_plain_{kind}"] = t / p
