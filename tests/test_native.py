"""Native kernels (Tape.compile, tapead/native.py): batched forward, gradient and one-weight vjp
from compiled code equal the interpreted ones to the last bit (NaN payloads aside), on random
programs of every scalar op at special values, cut into many segments, with guards, constant
and input outputs, tails of tiles, threads; and the refusals say what is wrong."""
import copy
import math
import pickle

import numpy as np
import pytest

import tapead as ad
import tapead.native as native
from tapead.batch import set_threads
from tapead.errors import TapeError

import _fwdrev_gen
from _fwdrev_gen import point, record_scalar

try:
    native._compiler()
    native._include_dir()
except RuntimeError as e:                                   # pragma: no cover
    pytest.skip(f"no C compiler or headers: {e}", allow_module_level=True)

def same_bits(a, b):
    """Equal to the bit (+0 vs -0 included); NaN equals NaN whatever its payload (API §10.2)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    nan = np.isnan(a)
    np.testing.assert_array_equal(nan, np.isnan(b))
    np.testing.assert_array_equal(a[~nan].view(np.int64), b[~nan].view(np.int64))


def interpreted_and_native(t):
    """(the tape, a copy of it compiled): the copy shares the recording, so compile a deep copy"""
    u = copy.deepcopy(t)
    return t, u.compile()


def check_all(t, u, X, rng):
    """forward, gradient (one output) and vjp with per-point weights agree."""
    same_bits(t(X, batch=True), u(X, batch=True))
    if t.n_outputs == 1:
        same_bits(t.gradient(X, batch=True), u.gradient(X, batch=True))
    B = X.shape[0]
    w = rng.standard_normal((B,) + t._out_shape)
    w[rng.random(w.shape) < 0.2] = 0.0
    a, b = t.vjp(X, w, batch=True), u.vjp(X, w, batch=True)
    for p, q in zip(a, b):
        same_bits(p, q)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("segment", [3, 200])
def test_random_programs_bit_exact(seed, segment, monkeypatch):
    monkeypatch.setattr(native, "SEGMENT", segment)     # 3: values and adjoints cross often
    monkeypatch.setitem(_fwdrev_gen.BINARY, "logaddexp", ad.logaddexp)
    rng = np.random.default_rng(100 + seed)
    m, n_out = int(rng.integers(1, 5)), int(rng.integers(1, 4))
    t, _ = record_scalar(rng, m, int(rng.integers(8, 40)), n_out)
    t, u = interpreted_and_native(t)
    assert u.stats()["native"] and not t.stats()["native"]
    X = np.array([point(rng, m) for _ in range(37)])      # 4 tiles and a tail of 5
    X[:5] = rng.uniform(0.1, 0.9, (5, m))
    check_all(t, u, X, rng)


def test_every_scalar_op_is_compiled(monkeypatch):
    """one tape with every supported op, at ordinary and special points"""
    monkeypatch.setattr(native, "SEGMENT", 4)
    unary = [ad.sqrt, ad.cbrt, ad.exp, ad.expm1, ad.log, ad.log1p, ad.log2, ad.log10, ad.sin,
             ad.cos, ad.tan, ad.asin, ad.acos, ad.atan, ad.sinh, ad.cosh, ad.tanh, ad.asinh,
             ad.acosh, ad.atanh, ad.erf, ad.abs, ad.sign, lambda u: -u, lambda u: u ** 2]
    binary = [lambda u, v: u + v, lambda u, v: u - v, lambda u, v: u * v, lambda u, v: u / v,
              lambda u, v: u ** v, ad.atan2, ad.hypot, ad.maximum, ad.minimum, ad.logaddexp]

    def f(x):
        out = []
        for g in unary:
            out.append(g(x[0]))
        for g in binary:
            out += [g(x[0], x[1]), g(x[1], 0.5), g(2.0, x[0])]
        out.append(ad.sum([x[0], x[1], 3.0]))
        out.append(ad.dot([x[0], x[1]], [x[1], 2.0]))
        out.append(ad.where(x[0] > x[1], x[0] * 3.0, x[1]))
        return sum(out[1:], out[0])

    x0 = np.array([0.4, 0.7])
    with ad.Tape() as t:
        t.outputs(f(t.variables(x0)))
    ops = set(t.stats()["by_opcode"])
    assert {"sqrt", "logaddexp", "pow", "where", "sum", "dot", "gt", "atan2"} <= ops
    t, u = interpreted_and_native(t)
    rng = np.random.default_rng(3)
    X = np.array([point(rng, 2, p_special=0.4) for _ in range(64)])
    X[:20] = rng.uniform(-0.9, 0.9, (20, 2))
    check_all(t, u, X, rng)
    g = u.gradient(X[:20], batch=True)                 # and an independent oracle
    h = 1e-6
    for b in range(0, 20, 7):
        for i in range(2):
            e = np.eye(2)[i] * h
            fd = (t(X[b] + e) - t(X[b] - e)) / (2 * h)
            if np.isfinite(fd) and np.isfinite(g[b, i]):     # acosh, atanh: NaN off domain
                assert g[b, i] == pytest.approx(fd, rel=1e-6, abs=1e-6)


def test_rosenbrock_many_segments_matches_oracle():
    rosen_der = pytest.importorskip("scipy.optimize").rosen_der

    def rosen(x):
        s = 0.0
        for i in range(len(x) - 1):
            s = s + 100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2
        return s

    n = 60                                   # ~470 operations: three segments
    t = ad.record(rosen, np.full(n, 0.5))
    X = np.random.default_rng(0).uniform(-2, 2, (50, n))
    g0 = t.gradient(X, batch=True)
    t.compile()
    g1 = t.gradient(X, batch=True)
    same_bits(g0, g1)
    np.testing.assert_allclose(g1, [rosen_der(x) for x in X], rtol=1e-13, atol=1e-11)
    loop = np.array([t.gradient(x) for x in X])
    same_bits(loop, g1)


def test_outputs_that_are_inputs_or_constants():
    with ad.Tape() as t:
        x, y = t.variables([1.0, 2.0])
        t.outputs([x, 3.0, x * y, y])
    t, u = interpreted_and_native(t)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((11, 2))
    check_all(t, u, X, rng)
    w = np.ones((11, 4))
    same_bits(u.vjp(X, w, batch=True)[1], np.stack([1 + X[:, 1], X[:, 0] + 1], axis=1))


def test_unused_input_and_empty_batch():
    with ad.Tape() as t:
        x, y, z = t.variables([1.0, 2.0, 3.0])
        t.outputs(ad.exp(x) * 2.0)
    t, u = interpreted_and_native(t)
    X = np.random.default_rng(2).standard_normal((9, 3))
    g = u.gradient(X, batch=True)
    same_bits(g, t.gradient(X, batch=True))
    assert np.all(g[:, 1:] == 0) and not np.signbit(g[:, 1:]).any()
    assert u.gradient(np.empty((0, 3)), batch=True).shape == (0, 3)
    same_bits(u.gradient(X[:1], batch=True), t.gradient(X[:1], batch=True))


def test_guards_rerecord_or_raise():
    def f(x):
        return x[0] * x[1] if x[0] > x[1] else ad.sin(x[0]) - x[1]

    t = ad.record(f, np.array([2.0, 1.0]))
    u = copy.deepcopy(t).compile()
    X = np.random.default_rng(4).standard_normal((40, 2))
    same_bits(u.gradient(X, batch=True), t.gradient(X, batch=True))
    same_bits(u.gradient(X, batch=True), np.array([t.gradient(x) for x in X]))

    with ad.Tape() as t:
        a, b = t.variables([2.0, 1.0])
        t.outputs(a * b if a > b else a - b)
    u = copy.deepcopy(t).compile()
    with pytest.raises(ad.BranchChanged) as e1:
        t.gradient(X, batch=True)
    with pytest.raises(ad.BranchChanged) as e2:
        u.gradient(X, batch=True)
    np.testing.assert_array_equal(e1.value.points, e2.value.points)
    np.testing.assert_array_equal(e2.value.points, np.flatnonzero(X[:, 0] <= X[:, 1]))


def test_threads_and_counts():
    t = ad.record(lambda x: ad.sum([ad.sin(x[i]) * x[i + 1] for i in range(7)]), np.ones(8))
    u = copy.deepcopy(t).compile()
    X = np.random.default_rng(5).standard_normal((200_000, 8))
    old = set_threads(2)
    try:
        g2 = u.gradient(X, batch=True)
    finally:
        set_threads(1)
    g1 = u.gradient(X, batch=True)
    set_threads(old)
    same_bits(g1, g2)
    same_bits(g1[:1000], t.gradient(X[:1000], batch=True))
    s = u.stats()["swept"]
    assert s["primal"] == s["adjoint"] == 2 * 200_000 * len(u)


def test_other_methods_still_interpreted_on_a_compiled_tape():
    t = ad.record(lambda x: ad.exp(x[0]) * x[1] ** 3, np.array([0.3, 0.8]))
    u = copy.deepcopy(t).compile()
    X = np.random.default_rng(6).standard_normal((10, 2))
    V = np.random.default_rng(7).standard_normal((10, 2))
    for name, args in (("jvp", (V,)), ("hvp", (V,)), ("hessian", ()), ("jacobian", ())):
        a, b = getattr(t, name)(X, *args, batch=True), getattr(u, name)(X, *args, batch=True)
        for p, q in zip(a if isinstance(a, tuple) else [a], b if isinstance(b, tuple) else [b]):
            same_bits(p, q)
    same_bits(u.gradient(X[3]), t.gradient(X[3]))        # one-point calls: the interpreter


def _tanh_diff(x):
    return ad.tanh(x[0] - x[1]) * 4.0


def test_copies_loads_and_the_cache(monkeypatch):
    t = ad.record(_tanh_diff, np.array([0.1, 0.2]))
    t.compile()
    assert copy.copy(t).stats()["native"]                # a shallow copy shares the recording
    loaded = ad.loads(t.dumps())
    assert not loaded.stats()["native"]                  # the file format has no code ...
    loaded.compile()
    assert loaded.stats()["native"] and loaded._compile_seconds == 0.0   # ... the code cached
    for other in (copy.deepcopy(t), pickle.loads(pickle.dumps(t))):
        assert other.stats()["native"]                   # copies and pickles compile again
    X = np.random.default_rng(1).standard_normal((20, 2))
    same_bits(pickle.loads(pickle.dumps(t)).gradient(X, batch=True), t.gradient(X, batch=True))
    monkeypatch.setattr(native, "_cache", {})            # unpickled where no compiler is:
    monkeypatch.setenv("CC", "no-such-compiler-here")    # interpreted, the same results
    monkeypatch.setattr(native.shutil, "which", lambda name: None)
    u = pickle.loads(pickle.dumps(t))
    assert not u.stats()["native"]
    same_bits(u.gradient(X, batch=True), t.gradient(X, batch=True))


def test_refusals():
    from tapead.primitive import primitive

    @primitive
    def cube(x):
        return x ** 3

    @cube.defjvp
    def _(x, dx):
        return 3 * x ** 2 * dx

    t = ad.record(lambda x: cube(x[0]) + x[1], np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="CALL"):
        t.compile()
    a = ad.record(lambda x: np.sum(x * x), np.ones(3))
    with pytest.raises(TypeError, match="MAP|REDUCE"):
        a.compile()
    with ad.Tape() as t:
        x = t.variables(1.0)
        with pytest.raises(TapeError, match="still recording"):
            t.compile()
        t.outputs(x * 2)
    with pytest.raises(ValueError, match="operations"):
        old = native.MAX_OPS
        try:
            native.MAX_OPS = 0
            t.compile()
        finally:
            native.MAX_OPS = old


def test_no_compiler_is_a_clear_error(monkeypatch):
    t = ad.record(lambda x: x[0] * 7.25 + x[1] ** 0.5, np.array([1.0, 2.0]))
    monkeypatch.setattr(native, "_cache", {})
    monkeypatch.setenv("CC", "no-such-compiler-here")
    monkeypatch.setattr(native.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="C compiler"):
        t.compile()
    assert not t.stats()["native"]
    np.testing.assert_allclose(t.gradient(np.ones((3, 2)), batch=True)[:, 0], 7.25)


def test_special_constants_keep_their_bits():
    consts = [math.inf, -math.inf, math.nan, -0.0, 5e-324, 1e308]
    with ad.Tape() as t:
        x = t.variables(1.5)
        t.outputs([x * c for c in consts] + [ad.maximum(x, c) for c in consts])
    t, u = interpreted_and_native(t)
    X = np.array([0.0, -0.0, 1.0, -2.0, math.inf, math.nan, 1e-310])
    check_all(t, u, X, np.random.default_rng(8))


def test_many_outputs_on_worker_threads():
    """the tiles of outputs and weights live on the heap (thread stacks are small)"""
    from concurrent.futures import ThreadPoolExecutor
    with ad.Tape() as t:
        x, y = t.variables([1.0, 2.0])
        z = ad.sin(x) * y
        t.outputs([z, x, 2.0] * 3000)
    t, u = interpreted_and_native(t)
    rng = np.random.default_rng(9)
    X = rng.standard_normal((13, 2))
    W = rng.standard_normal((13, 9000))
    with ThreadPoolExecutor(2) as ex:
        a, b = ex.submit(u.vjp, X, W, batch=True).result(), t.vjp(X, W, batch=True)
        same_bits(ex.submit(u, X, batch=True).result(), t(X, batch=True))
    for p, q in zip(a, b):
        same_bits(p, q)
