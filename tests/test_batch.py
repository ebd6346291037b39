"""Batched replays (batch=True, tapead/batch.py): every method over B points equals the loop of
one-point calls to the last bit, on the op cases, random programs, guard flips (re-recorded per
branch, or BranchChanged with .points), user primitives and threads; shapes and errors."""
import math

import numpy as np
import pytest

import tapead as ad
import tapead.batch as adb
from helpers import program_steps, rosen_loop, run_in_threads, run_program
from op_cases import CASES, case_ids

RNG = np.random.default_rng(7)


def bits(a):
    """A result as comparable bits: arrays by their bytes (NaN payloads, signed zeros)."""
    if isinstance(a, tuple):
        return tuple(bits(e) for e in a)
    a = np.asarray(a, dtype=np.float64)
    return a.shape, a.tobytes()


def outcome(fn):
    try:
        return "ok", fn()
    except Exception as e:                      # noqa: BLE001 - compared between the two paths
        return "raises", type(e)


def stack(results):
    """Per-point results stacked along a new leading axis (tuples element-wise)."""
    if isinstance(results[0], tuple):
        return tuple(stack([r[i] for r in results]) for i in range(len(results[0])))
    return np.stack([np.asarray(r, dtype=np.float64) for r in results])


def assert_same(batched, loop, exact=True):
    kb, b = outcome(batched)
    kl, lp = outcome(loop)
    assert kb == kl, (b, lp)
    if kb == "raises":
        assert b is lp
        return
    lp = stack(lp)
    if exact:
        assert bits(b) == bits(lp)
    else:
        np.testing.assert_array_equal(b, lp)


def method_calls(t, X, V, W, order=3):
    """(name, batched call, loop call, exact) for every replay method at points X."""
    pts = list(X)
    return [
        ("forward", lambda: t.forward(X, batch=True), lambda: [t.forward(x) for x in pts]),
        ("gradient", lambda: t.gradient(X, batch=True), lambda: [t.gradient(x) for x in pts]),
        ("jvp", lambda: t.jvp(X, V, batch=True), lambda: [t.jvp(x, v) for x, v in zip(pts, V)]),
        ("vjp", lambda: t.vjp(X, W, batch=True), lambda: [t.vjp(x, w) for x, w in zip(pts, W)]),
        ("jacfwd", lambda: t.jacobian(X, mode="forward", batch=True),
         lambda: [t.jacobian(x, mode="forward") for x in pts]),
        ("jacrev", lambda: t.jacobian(X, mode="reverse", batch=True),
         lambda: [t.jacobian(x, mode="reverse") for x in pts]),
        ("hvp", lambda: t.hvp(X, V, batch=True), lambda: [t.hvp(x, v) for x, v in zip(pts, V)]),
        ("taylor", lambda: t.taylor(X, V, order, batch=True),
         lambda: [t.taylor(x, v, order) for x, v in zip(pts, V)]),
    ]


def settle_hessian(t, x):
    """Two one-point Hessians: the recording's colouring is settled (tape.hessian); x may be
    (x, w)."""
    for _ in range(2):
        outcome(lambda: t.hessian(*x) if isinstance(x, tuple) else t.hessian(x))


CASE_PARAMS = case_ids(CASES)


@pytest.mark.parametrize("op, k", CASE_PARAMS)
def test_op_cases_batched_equal_the_loop(op, k):
    case = CASES[op][k]
    n = len(case.points[0])
    pts = np.array(case.points, dtype=np.float64)
    X = np.concatenate([pts, pts * (1 + 1e-3 * RNG.uniform(-1, 1, pts.shape))] * 2)
    V, W = RNG.normal(size=X.shape), RNG.normal(size=len(X))

    def f(x):
        return case.f(*[x[i] for i in range(n)])
    guards = op.name in ("LT", "LE", "GT", "GE", "EQ", "NE")
    for name, batched, loop in method_calls(None, X, V, W):
        tb, tl = ad.record(f, pts[0]), ad.record(f, pts[0])
        calls = {c[0]: c for c in method_calls(tb, X, V, W)}
        loops = {c[0]: c for c in method_calls(tl, X, V, W)}
        assert_same(calls[name][1], loops[name][2])
    tb, tl = ad.record(f, pts[0]), ad.record(f, pts[0])
    settle_hessian(tb, pts[0])
    settle_hessian(tl, pts[0])
    assert_same(lambda: tb.hessian(X, batch=True), lambda: [tl.hessian(x) for x in X],
                exact=not guards)


UNARY = {"sin": ad.sin, "tanh": ad.tanh, "atan": ad.atan, "erf": ad.erf, "neg": lambda u: -u,
         "log_sq1": lambda u: ad.log(ad.square(u) + 1.0), "exp_tanh": lambda u: ad.exp(ad.tanh(u)),
         "cbrt_sq1": lambda u: ad.cbrt(u * u + 0.5), "abs": ad.abs,
         "max": lambda u: ad.maximum(u, 0.25), "where": lambda u: ad.where(u > 0.1, u * u, -u)}


def test_random_programs_batched_equal_the_loop():
    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=25, deadline=None, derandomize=True)
    @given(st.integers(1, 4), program_steps(UNARY), st.lists(st.integers(0, 99), min_size=1,
                                                              max_size=3))
    def run(m, steps, outs):
        prog = (m, steps, outs)
        X = RNG.uniform(-2, 2, (23, m))
        t = ad.record(lambda x: run_program(prog, x, UNARY), X[0])
        V, W = RNG.normal(size=X.shape), RNG.normal(size=(23, len(outs)))
        for name, batched, loop in method_calls(t, X, V, W):
            assert_same(batched, loop)
        ws = RNG.normal(size=(23, len(outs)))
        assert_same(lambda: t.hvp(X, V, ws, batch=True),
                    lambda: [t.hvp(x, v, w) for x, v, w in zip(X, V, ws)])
        V3, W3 = RNG.normal(size=(23, m, 3)), RNG.normal(size=(23, 3, len(outs)))
        assert_same(lambda: t.jvp(X, V3, batch=True),
                    lambda: [t.jvp(x, v) for x, v in zip(X, V3)])
        assert_same(lambda: t.vjp(X, W3, batch=True),
                    lambda: [t.vjp(x, w) for x, w in zip(X, W3)])
        assert_same(lambda: t.hvp(X, V3, ws, batch=True),
                    lambda: [t.hvp(x, v, w) for x, v, w in zip(X, V3, ws)])
        settle_hessian(t, (X[0], ws[0]))
        assert_same(lambda: t.hessian(X, ws, batch=True),
                    lambda: [t.hessian(x, w) for x, w in zip(X, ws)])
    run()
    del hypothesis


# ---- branch guards --------------------------------------------------------------------------
def kinked(x):
    s = x[0] * x[1]
    s = s + ad.sin(x[1]) if x[0] > 0 else s * ad.cos(x[1])
    return s * 2.0 if x[1] > 1 else s - x[0]


def test_flips_mid_batch_re_record_once_per_branch():
    X = RNG.uniform(-2, 2, (200, 2))
    X[0] = (1.0, 2.0)                               # the recorded branch first
    t = ad.record(kinked, np.array([1.0, 2.0]))
    g = t.gradient(X, batch=True)
    assert t.stats()["rerecords"] == 3             # four branches, each recorded once
    ref = ad.record(kinked, np.array([1.0, 2.0]))
    assert bits(g) == bits(stack([ref.gradient(x) for x in X]))
    t2 = ad.record(kinked, np.array([1.0, 2.0]))
    assert bits(t2.hessian(X, batch=True)[:1]) == bits(t2.hessian(X[:1], batch=True))
    assert bits(t2.forward(X, batch=True)) == bits(np.array([ref.forward(x) for x in X]))


def test_imperative_tape_raises_with_the_points_that_flipped():
    with ad.Tape() as t:
        x = t.variables([1.0, 2.0])
        t.outputs(kinked(x))
    X = np.array([[1.0, 2.0], [-1.0, 2.0], [0.5, 1.5], [2.0, 0.5], [-3.0, 0.0]])
    with pytest.raises(ad.BranchChanged, match=r"point 1\b") as e:
        t.gradient(X, batch=True)
    assert e.value.points == [1, 3, 4]
    with pytest.raises(ad.BranchChanged) as e:
        t.jacobian(X[2:], batch=True)
    assert e.value.points == [1, 2]
    assert bits(t.gradient(X[[0, 2]], batch=True)) == bits(stack([t.gradient(X[0]),
                                                                 t.gradient(X[2])]))


# ---- primitives -------------------------------------------------------------------------------
def test_primitive_errors_propagate():
    boom = ad.primitive(lambda x: x * 2.0, jvp=lambda x, v: v[0] * 2.0,
                        vjp=lambda x, w: (_raise(x),))
    t = ad.record(lambda x: boom(x[0]) + x[1], np.array([1.0, 2.0]))
    with pytest.raises(ZeroDivisionError):
        t.gradient(np.ones((5, 2)), batch=True)
    assert bits(t.forward(np.ones((5, 2)), batch=True)) == bits(np.full(5, 3.0))


def _raise(x):
    raise ZeroDivisionError("rule failed")


# ---- shapes and errors --------------------------------------------------------------------------
def test_shapes_of_pieces_scalars_and_directions():
    t = ad.record(lambda a, b: ad.sum([a[0] * b, a[1] ** 2, a[2] * a[0]]), np.ones(3), 2.0)
    A, b = RNG.normal(size=(6, 3)), RNG.normal(size=6)
    ga, gb = t.gradient((A, b), batch=True)
    assert ga.shape == (6, 3) and gb.shape == (6,)
    assert bits((ga, gb)) == bits(stack([t.gradient((a, bb)) for a, bb in zip(A, b)]))
    ty, yd = t.jvp((A, b), (np.ones((6, 3, 4)), np.ones((6, 4))), batch=True)
    assert ty.shape == (6,) and yd.shape == (6, 4)
    H = t.hessian((A, b), batch=True)
    assert H[0][0].shape == (6, 3, 3) and H[0][1].shape == (6, 3) and H[1][1].shape == (6,)
    s = ad.record(lambda x, y: [x * y, x + y], 1.0, 2.0)
    g = s.jacobian(([1.0, 2.0], [3.0, 4.0]), batch=True)
    assert g[0].shape == (2, 2) and s.forward(([1.0], [2.0]), batch=True).shape == (1, 2)
    y, xb = s.vjp(([1.0, 2.0], [3.0, 4.0]), np.ones((2, 5, 2)), batch=True)
    assert xb[0].shape == (2, 5)
    assert s.taylor(([1.0, 2.0], [3.0, 4.0]), ([1.0, 1.0], [0.0, 1.0]), 3,
                    batch=True).shape == (2, 4, 2)


@pytest.mark.parametrize("call, message", [
    (lambda t: t.gradient(np.ones((4, 2)), batch=True), r"\(B,\) \+ \(3,\).*got shape \(4, 2\)"),
    (lambda t: t.gradient(np.ones(3), batch=True), r"\(B,\) \+ \(3,\).*got shape \(3,\)"),
    (lambda t: t.forward(None, batch=True), "needs the points"),
    (lambda t: t.jvp(np.ones((4, 3)), np.ones((5, 3)), batch=True),
     r"leading axis of B = 4 points.*got shape \(5, 3\)"),
    (lambda t: t.jvp(np.ones((4, 3)), np.ones((4, 2)), batch=True),
     r"expected v of shape \(B,\) \+ \(3,\).*got shape \(4, 2\)"),
    (lambda t: t.vjp(np.ones((4, 3)), np.ones(5), batch=True),
     r"expected w of shape \(B,\) \+ \(\).*B = 4.*got shape \(5,\)"),
    (lambda t: t.hvp(np.ones((4, 3)), np.ones((4, 3)), np.ones(3), batch=True),
     r"expected w of shape \(B,\) \+ \(\) with B = 4"),
    (lambda t: t.taylor(np.ones((4, 3)), np.ones((4, 3, 2)), 2, batch=True),
     r"expected v of shape \(B,\) \+ \(3,\), got"),
    (lambda t: t.jacobian(np.ones((4, 3)), mode="sideways", batch=True), "mode must be"),
])
def test_errors_name_expected_and_got(call, message):
    t = ad.record(lambda x: x[0] * x[1] + x[2], np.ones(3))
    with pytest.raises(ValueError, match=message):
        call(t)


def test_gradient_of_vector_output_and_pieces_errors():
    t = ad.record(lambda x: [x[0], x[1]], np.ones(2))
    with pytest.raises(ValueError, match="scalar output"):
        t.gradient(np.ones((3, 2)), batch=True)
    s = ad.record(lambda a, b: a * b, 1.0, 2.0)
    with pytest.raises(ValueError, match=r"x\[1\] with a leading axis of B = 3"):
        s.gradient((np.ones(3), np.ones(4)), batch=True)
    with pytest.raises(ValueError, match="sequence of 2 pieces"):
        s.gradient(np.ones((3, 2)), batch=True)


def test_zero_points_and_stats_count_points():
    t = ad.record(lambda x: ad.sin(x[0]) * x[1], np.ones(2))
    assert t.gradient(np.empty((0, 2)), batch=True).shape == (0, 2)
    before = t.stats()["swept"]
    t.gradient(np.ones((10, 2)), batch=True)
    after = t.stats()["swept"]
    assert after["primal"] - before["primal"] == 10 * len(t)
    assert after["adjoint"] - before["adjoint"] == 10 * len(t)


# ---- threads --------------------------------------------------------------------------------
def test_threads_split_a_call_and_share_a_tape():
    t = ad.record(rosen_loop, np.zeros(20))
    X = RNG.uniform(-2, 2, (20_000, 20))
    old = adb.set_threads(1)
    try:
        one = t.gradient(X, batch=True)
        adb.set_threads(4)
        assert bits(t.gradient(X, batch=True)) == bits(one)
        assert bits(t.hvp(X[:3000], X[:3000], batch=True)) == \
            bits(stack([t.hvp(x, x) for x in X[:3000]]))
        results = [None] * 3

        def body(k):
            results[k] = t.gradient(X[k::3], batch=True)
        run_in_threads(body, 3)
        for k in range(3):
            assert bits(results[k]) == bits(one[k::3])
    finally:
        adb.set_threads(old)
    with pytest.raises(ValueError):
        adb.set_threads(0)


def test_open_tape_batches_in_its_thread():
    with ad.Tape() as t:
        x = t.variables([1.0, 2.0])
        y = x[0] * ad.exp(x[1])
        t.outputs(y)
        g = t.gradient(np.ones((3, 2)), batch=True)
    assert bits(g) == bits(np.tile([math.exp(1.0), math.exp(1.0)], (3, 1)))


def test_primitive_rules_not_asked_at_flipped_points():
    seen = []

    def fun(x):
        seen.append(float(x))
        return 3.0 * x
    triple = ad.primitive(fun, jvp=lambda x, v: 3.0 * v[0], vjp=lambda x, w: (3.0 * w,))

    def f(x):
        return triple(x[0]) * x[1] if x[1] > 0 else x[0] - x[1]
    with ad.Tape() as t:                           # the imperative tape: flipped points raise
        x = t.variables([1.0, 1.0])
        t.outputs(f(x))
    X = np.array([[1.0, 2.0], [5.0, -1.0], [7.0, 3.0], [11.0, -2.0]])
    seen.clear()
    with pytest.raises(ad.BranchChanged) as e:
        t.forward(X, batch=True)
    assert e.value.points == [1, 3] and 5.0 not in seen and 11.0 not in seen
    assert seen == [1.0, 7.0]                       # once per point that kept its branch
    r = ad.record(f, np.array([1.0, 1.0]))
    assert bits(r.gradient(X, batch=True)) == bits(stack([r.gradient(x) for x in X]))


def test_optimised_tapes_batch_and_re_record_optimised():
    X = RNG.uniform(-2, 2, (120, 2))
    t = ad.record(kinked, np.array([1.0, 2.0]), optimize=True)
    ref = ad.record(kinked, np.array([1.0, 2.0]), optimize=True)
    assert bits(t.gradient(X, batch=True)) == bits(stack([ref.gradient(x) for x in X]))
    assert "optimized" in t.stats()                  # the re-recordings are optimised too
    o = ad.record(rosen_loop, np.zeros(6)).optimize()
    Y = RNG.uniform(-2, 2, (50, 6))
    assert bits(o.hessian(Y, batch=True)[:1]) == bits(o.hessian(Y[:1], batch=True))
    assert bits(o.jacobian(Y, batch=True)) == bits(stack([o.jacobian(y) for y in Y]))


def test_unaligned_and_strided_points():
    t = ad.record(rosen_loop, np.zeros(5))
    raw = np.zeros(7 * 5 * 8 + 1, dtype=np.uint8)[1:].view(np.float64).reshape(7, 5)
    raw[:] = RNG.uniform(-2, 2, (7, 5))                  # a misaligned buffer (as unpickled)
    assert not raw.flags.aligned
    V = RNG.normal(size=(7, 5))
    ref = stack([t.hvp(x, v) for x, v in zip(raw, V)])
    assert bits(t.hvp(raw, V, batch=True)) == bits(ref)
    assert bits(t.gradient(raw.T.copy().T, batch=True)) == bits(stack([t.gradient(x) for x in raw]))


def _net(w, x):
    """A small network on array block ops: matmul (BLAS or built-in), a broadcast bias, tanh,
    a transpose (strided PACK), a REDUCE over an axis, constant blocks."""
    W = w[:12].reshape(3, 4)
    h = np.tanh(x @ W.T + w[12:15])
    g = (h * h).sum(axis=1) + (W.T @ h.T).T[:, 0] * np.array([0.5, -1.0])
    return ad.sum(g * g) + ad.sum(np.exp(-(w * w)))


@pytest.mark.parametrize("blas", [True, False])
def test_array_tapes_batched_equal_the_loop(blas):
    from tapead import array as ada
    ada._use_blas(blas)
    try:
        xdata = RNG.normal(size=(2, 4))
        t = ad.record(lambda w: _net(w, xdata), RNG.normal(size=15), arrays=True)
        X = RNG.normal(size=(37, 15))                    # more than one tile of some sweeps
        V, W = RNG.normal(size=X.shape), RNG.normal(size=len(X))
        for name, batched, loop in method_calls(t, X, V, W):
            assert_same(batched, loop)
        V3 = RNG.normal(size=(37, 15, 3))
        assert_same(lambda: t.jvp(X, V3, batch=True), lambda: [t.jvp(x, v) for x, v in zip(X, V3)])
        assert_same(lambda: t.hvp(X, V3, batch=True), lambda: [t.hvp(x, v) for x, v in zip(X, V3)])
        settle_hessian(t, X[0])
        assert_same(lambda: t.hessian(X, batch=True), lambda: [t.hessian(x) for x in X])
    finally:
        ada._use_blas(True)


def test_array_tape_with_several_outputs_batched_in_threads():
    def f(x):
        a = np.sin(x[:3]) @ x.reshape(2, 3).T
        return ad.asarray([a[0] * a[1], x[2], 3.0])
    t = ad.record(f, np.arange(1.0, 7.0), arrays=True)
    X = RNG.normal(size=(300, 6))
    W = RNG.normal(size=(300, 3, 2))
    old = adb.set_threads(2)
    try:
        assert_same(lambda: t.vjp(X, W, batch=True), lambda: [t.vjp(x, w) for x, w in zip(X, W)])
        assert_same(lambda: t.jacobian(X, batch=True), lambda: [t.jacobian(x) for x in X])
    finally:
        adb.set_threads(old)


# ---- vectorized primitives: one call per tile ---------------------------------------------------
_CALLS = {"fun": 0, "jvp": 0, "vjp": 0}


def _count(name, fn):
    def counted(*a):
        _CALLS[name] += 1
        return fn(*a)
    return counted


def _prims(vectorized):
    xsin = ad.primitive(_count("fun", lambda x, y: x * np.sin(y)),
                        jvp=_count("jvp", lambda x, v: v[0] * np.sin(x[1]) +
                                   x[0] * np.cos(x[1]) * v[1]),
                        vjp=_count("vjp", lambda x, w: (w * np.sin(x[1]),
                                                        w * x[0] * np.cos(x[1]))),
                        vectorized=vectorized)
    # one array input, two outputs: (sum of squares, sum), written for a leading axis of points
    norm = ad.primitive(_count("fun", lambda x: np.stack([np.sum(x * x, -1), np.sum(x, -1)], -1)),
                        jvp=_count("jvp", lambda x, v: np.stack([2.0 * np.sum(x * v, -1),
                                                                np.sum(v, -1)], -1)),
                        vjp=_count("vjp", lambda x, w: 2.0 * x * w[..., :1] + w[..., 1:]),
                        vectorized=vectorized)
    return xsin, norm


def _with(xsin, norm):
    def f(x):
        a, b = norm(x)
        return [xsin(a, x[0]) + b * x[1], ad.exp(xsin(x[2], b))]
    return f


def test_vectorized_primitives_are_called_once_per_tile_with_the_loop_s_results():
    X = RNG.normal(size=(600, 3))
    V, W = RNG.normal(size=(600, 3, 2)), RNG.normal(size=(600, 2, 2))
    tv = ad.record(_with(*_prims(True)), X[0])
    tl = ad.record(_with(*_prims(False)), X[0])
    tiles = -(-600 // 8)                                # tiles hold 8 points or more
    calls = {"forward": lambda t: t.forward(X, batch=True),
             "jvp": lambda t: t.jvp(X, V, batch=True), "vjp": lambda t: t.vjp(X, W, batch=True),
             "jacfwd": lambda t: t.jacobian(X, mode="forward", batch=True),
             "jacrev": lambda t: t.jacobian(X, mode="reverse", batch=True)}
    for name, call in calls.items():
        _CALLS.update(fun=0, jvp=0, vjp=0)
        got = call(tv)
        n_vec = dict(_CALLS)
        _CALLS.update(fun=0, jvp=0, vjp=0)
        want = call(tl)                                 # per point, and on the same bits
        assert bits(got) == bits(want), name
        assert _CALLS["fun"] >= 3 * 600                 # three calls on the tape, per point
        assert 0 < n_vec["fun"] <= 3 * tiles, (name, n_vec)           # per tile, not per point
        assert n_vec["jvp"] + n_vec["vjp"] <= 3 * 3 * tiles, (name, n_vec)


def test_a_vectorized_primitive_giving_the_wrong_shape_says_so():
    bad = ad.primitive(lambda x, y: x * y, jvp=lambda x, v: v[0], vjp=lambda x, w: (w, w),
                       vectorized=True, name="bad_shape")
    t = ad.record(lambda x: bad(x[0], x[1]), np.array([1.0, 2.0]))
    bad.fun = lambda x, y: np.zeros(3) if np.ndim(x) else x * y
    with pytest.raises(ValueError, match="bad_shape .vectorized.: its function must give 1"):
        t.forward(RNG.normal(size=(20, 2)), batch=True)


def _guarded(x):
    h = x * 2.0 - 1.0
    if (h > 0).all():                                   # one block guard
        return ad.sum(h * h)
    return ad.sum(np.maximum(h, 0.0) * x)


def test_block_guards_are_checked_per_point_batched_saved_and_optimised():
    X = np.array([[1.0, 2.0, 3.0], [0.1, 2.0, 3.0], [2.0, 2.5, 1.5], [0.2, 0.1, 0.3]])
    t = ad.record(_guarded, X[0], arrays=True)
    want = np.stack([ad.record(_guarded, x, arrays=True).gradient(x) for x in X])
    for u in (t, ad.loads(t.dumps()), t.optimize()):    # re-records where it flips
        assert bits(u.gradient(X, batch=True)) == bits(want)
    with ad.Tape() as tt:
        x = tt.variables(X[0], array=True)
        tt.outputs(ad.sum(x * x) if (x > 0.5).all() else ad.sum(x))
    for u in (tt, ad.loads(tt.dumps()), tt.optimize()):
        with pytest.raises(ad.BranchChanged) as e:
            u.gradient(X, batch=True)
        assert e.value.points == [1, 3]
