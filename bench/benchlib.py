"""Problems, oracles and timing helpers shared by the tapead benchmarks (bench/).

A plain module (not conftest) so the benchmark files can import it by name.
"""
import math
import os
import time
import timeit

import numpy as np

import tapead as ad

# Rosenbrock sizes: n inputs give 8 * (n - 1) tape operations.
ROSEN_N = (10**4, 10**5)                  # the core-speed sizes, against plain Python
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


def least_time(fn, repeat=1):
    """Least of `repeat` single timings of fn() (for calls of a second or more)."""
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return min(out)


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


# ---- the m-by-n family of the forward/reverse cost model ------------------------------------
# F: R^m -> R^n with fixed internal work: an input layer of m - 1 additions, a chain of
# CHAIN_STEPS scalar steps (5 operations each), and n outputs read off the chain (no
# operations). len(tape) = (m - 1) + 5 * CHAIN_STEPS, so ops(F) hardly moves with m and n and the
# cost model predicts forward time ∝ m, reverse time ∝ n.
CHAIN_STEPS = 2048
CHAIN_H = 0.002
MODES_GRID = tuple(2 ** k for k in range(9))          # 1, 2, 4, ..., 256


def chain_marks(n_out, steps=CHAIN_STEPS):
    """The chain steps whose value is an output: n_out points spread evenly, the last at the end."""
    return [steps * (j + 1) // n_out - 1 for j in range(n_out)]


def chain_family(x, n_out, steps=CHAIN_STEPS):
    """s = Σ x_i, then s <- s + h (1 - s³) `steps` times; returns the list of the n_out values
    of s at chain_marks (works on floats and on tapead Vars)."""
    s = x[0]
    for xi in x[1:]:
        s = s + xi
    marks, out = set(chain_marks(n_out, steps)), []
    for k in range(steps):
        s = s + CHAIN_H * (1.0 - s * s * s)
        if k in marks:
            out.append(s)
    return out


def chain_point(m):
    """An input point of the family: s_0 = Σ x_i = 0.5 for every m."""
    return np.linspace(0.5, 1.5, m) * (0.5 / np.linspace(0.5, 1.5, m).sum())


def chain_jacobian(x, n_out, steps=CHAIN_STEPS):
    """Oracle: J[j, i] = Π_{k <= k_j} (1 - 3 h s_k²) (chain rule along the chain; ∂s_0/∂x_i = 1)."""
    s, d, marks, col = float(np.sum(x)), 1.0, set(chain_marks(n_out, steps)), []
    for k in range(steps):
        d *= 1.0 - 3.0 * CHAIN_H * s * s
        s = s + CHAIN_H * (1.0 - s * s * s)
        if k in marks:
            col.append(d)
    return np.outer(col, np.ones(len(x)))


def chain_ops(m, steps=CHAIN_STEPS):
    return (m - 1) + 5 * steps


def swept(tape):
    """A copy of tape.stats()["swept"] (operation visits so far)."""
    return dict(tape.stats()["swept"])


def visits_of(tape, call):
    """Operation visits that one call() adds, by sweep kind."""
    before = swept(tape)
    call()
    after = swept(tape)
    return {k: after[k] - before[k] for k in after}


def interleaved_best(fns, rounds=7, sample=2e-3):
    """Best per-call time of each fn in fns (a dict name -> fn), measured round-robin so that the
    machine's load drifts over all of them alike: in each round every fn runs `number` times
    (calibrated once so a sample lasts >= `sample` s); the minimum over rounds is returned."""
    timers = {k: timeit.Timer(f) for k, f in fns.items()}
    numbers = {}
    for k, t in timers.items():
        number = 1
        while t.timeit(number) < sample and number < 10**6:
            number *= 2
        numbers[k] = number
    best_t = {k: math.inf for k in fns}
    for _ in range(rounds):
        for k, t in timers.items():
            best_t[k] = min(best_t[k], t.timeit(numbers[k]) / numbers[k])
    return best_t


def loglog_fit(xs, ys):
    """Least-squares slope and intercept of log(y) against log(x)."""
    lx, ly = np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float))
    slope, intercept = np.polyfit(lx, ly, 1)
    return float(slope), float(intercept)


def _flag(config, option, env):
    return config.getoption(option) or os.environ.get(env, "") not in ("", "0")


def full_run(config):
    """True under pytest's --full option of bench/conftest.py (or TAPEAD_BENCH_FULL=1)."""
    return _flag(config, "--full", "TAPEAD_BENCH_FULL")


def timed(fn):
    """(result, seconds) of one call."""
    t = timeit.default_timer()
    r = fn()
    return r, timeit.default_timer() - t
