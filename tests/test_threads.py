"""Eight threads replaying one closed tape at once give exactly the single-thread results
(sweeps own their scratch; the GIL is released while C runs)."""
import threading
import time

import numpy as np
from numpy.testing import assert_array_equal

import tapead as ad

from helpers import run_in_threads

N_THREADS = 8
ROUNDS = 15


def f(x):
    """R^m -> R^3 with enough operations that sweeps overlap in C."""
    s = 0.0
    for i in range(len(x) - 1):
        s = s + 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
    u = ad.sum([ad.sin(e) * ad.exp(0.1 * e) for e in x])
    v = ad.dot(x, [ad.tanh(e) for e in x])
    return [s, u, v]


def replays(t, ts, x, V, W):
    """Every replay kind at point x; a dict of arrays."""
    y, ydot = t.jvp(x, V)
    y2, xbar = t.vjp(x, W)
    _, g_dir = t.jvp(x, V[:, 0])
    return {
        "forward": np.asarray(t(x)),
        "jac_fwd": t.jacobian(x, mode="forward"),
        "jac_rev": t.jacobian(x, mode="reverse"),
        "jvp_y": np.asarray(y), "jvp": ydot, "jvp1": np.asarray(g_dir),
        "vjp_y": np.asarray(y2), "vjp": xbar,
        "gradient": ts.gradient(x),
        "gradient_jvp": np.asarray(ts.jvp(x, V)[1]),
    }


def test_eight_threads_replay_one_tape_exactly():
    m = 300
    rng = np.random.default_rng(0)
    t = ad.record(f, rng.uniform(-1, 1, m))
    ts = ad.record(lambda x: f(x)[0], rng.uniform(-1, 1, m))
    assert not t.recording and not ts.recording
    points = [rng.uniform(-2, 2, m) for _ in range(N_THREADS)]
    V = rng.normal(size=(m, 4))
    W = rng.normal(size=(3, 3))
    expected = [replays(t, ts, x, V, W) for x in points]
    swept0 = t.stats()["swept"]

    results = [None] * N_THREADS

    def worker(k):
        for r in range(ROUNDS):
            # each thread walks through all points, starting at its own
            x_i = (k + r) % N_THREADS
            got = replays(t, ts, points[x_i], V, W)
            for key, val in expected[x_i].items():
                assert_array_equal(got[key], val, err_msg=f"thread {k} round {r} {key}")
        results[k] = True

    run_in_threads(worker, N_THREADS)
    assert all(results)

    # the visit counters are exact under concurrency too
    n, per = len(t), N_THREADS * ROUNDS
    swept = t.stats()["swept"]
    # per replays(): at most 6 primal sweeps (forward, jac_fwd, jac_rev, 2 jvp, vjp)
    assert swept["primal"] - swept0["primal"] <= per * 6 * n
    # tangent: jacobian forward m directions, jvp 4 + 1 directions
    assert swept["tangent"] - swept0["tangent"] == per * (t.n_inputs + 5) * n
    # adjoint: jacobian reverse 3 weights, vjp 3 weights
    assert swept["adjoint"] - swept0["adjoint"] == per * 6 * n


def test_threads_record_their_own_tapes_concurrently():
    """One recording per thread at a time: eight threads recording at once do not interfere."""
    rng = np.random.default_rng(1)
    xs = [rng.uniform(-1, 1, 50) for _ in range(N_THREADS)]
    ref = [ad.record(lambda x: f(x)[0], x).gradient(x) for x in xs]

    def worker(k):
        for _ in range(5):
            t = ad.record(lambda x: f(x)[0], xs[k])
            assert_array_equal(t.gradient(xs[k]), ref[k])
            with ad.Tape() as t2:
                x = t2.variables(xs[k])
                y = f(x)[0]
            y.backward()
            assert_array_equal([e.grad for e in x], ref[k])

    run_in_threads(worker, N_THREADS)


def test_threads_replaying_a_tape_whose_guards_flip():
    """An ad.record tape re-records when a guard flips; eight threads doing so at once still get
    the right gradient at their own points."""
    def g(x):
        s = 0.0
        for e in x:
            s = s + (e * e if e > 0 else -3.0 * e)
        return s

    m = 40
    rng = np.random.default_rng(2)
    t = ad.record(g, rng.uniform(-1, 1, m))
    points = [rng.uniform(-1, 1, m) for _ in range(N_THREADS)]
    expected = [np.where(p > 0, 2 * p, -3.0) for p in points]

    def worker(k):
        for r in range(50):
            i = (k + r) % N_THREADS
            assert_array_equal(t.gradient(points[i]), expected[i])
            assert t(points[i]) == g(points[i])

    run_in_threads(worker, N_THREADS)
    assert t.stats()["rerecords"] > 0


def _big_program(a, b):
    c = a @ b                                  # recorded with the GIL released (its dgemm)
    return np.sum(np.tanh(c) * c) + np.sum(a * a)


def test_recording_a_large_array_op_lets_other_threads_run():
    rng = np.random.default_rng(1)
    A, B = rng.normal(size=(1000, 1000)), rng.normal(size=(1000, 1000))
    stamps, stop = [], [False]

    def ticker():
        while not stop[0]:
            stamps.append(time.perf_counter())

    th = threading.Thread(target=ticker)
    with ad.Tape() as t:
        a, b = t.variables(A), t.variables(B)
        th.start()
        try:
            start = time.perf_counter()
            c = a @ b                              # its values: one dgemm, ~0.1 s
            end = time.perf_counter()
        finally:
            stop[0] = True
            th.join()
        t.outputs(np.sum(c))
    during = np.array([s for s in stamps if start <= s <= end] + [start, end])
    # with the GIL held the ticker cannot run at all while the product is computed (one gap of
    # the whole product); released, it ticks as soon as it is scheduled (a loaded machine: late)
    assert np.diff(np.sort(during)).max() < 0.9 * (end - start)


def test_threads_recording_large_array_ops_at_once_match_one_thread():
    rng = np.random.default_rng(2)
    points = [(rng.normal(size=(300, 200)), rng.normal(size=(200, 250))) for _ in range(4)]
    expected = [ad.record(_big_program, A, B).gradient() for A, B in points]
    results = [None] * len(points)

    def worker(k):
        for _ in range(3):
            results[k] = ad.record(_big_program, *points[k]).gradient()

    run_in_threads(worker, len(points))
    for got, want in zip(results, expected):
        for g, w in zip(got, want):
            assert_array_equal(g, w)
