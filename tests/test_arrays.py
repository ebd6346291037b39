"""ad.Array: every array op against the same program written with scalar Vars (object arrays of
Var, the default) on the same engine, in every sweep, and against central differences."""
import ctypes
import math
import sys
import types

import numpy as np
import pytest
from numpy.testing import assert_allclose

import tapead as ad
from tapead._core import Op
from tapead.array import UFUNC_OPS, _find_dgemm, _use_blas
from tapead.optable import OPS

RTOL = 1e-13


def total(z):
    """np.sum, also of a Var (a 0-d result is a Var, on which NumPy's reductions do not run)."""
    return np.sum(z) if np.ndim(z) else z


def _flat(r):
    if isinstance(r, tuple):
        return np.concatenate([_flat(e) for e in r])
    return np.ravel(np.asarray(r, dtype=float))


def _close(a, b, rtol=RTOL, what=""):
    a, b = _flat(a), _flat(b)
    scale = max(1.0, float(np.max(np.abs(b[np.isfinite(b)]), initial=0.0)))
    assert_allclose(a, b, rtol=rtol, atol=rtol * scale, err_msg=what)


def check(f, *args, second=True, taylor=True, fd=True, ops=None):
    """f recorded on ad.Arrays and on object arrays of Var agree in every replay; its gradient
    matches central differences. ops: block ops the array tape must hold."""
    args = [np.asarray(a, dtype=float) for a in args]
    ta = ad.record(f, *args, arrays=True)
    ts = ad.record(f, *args, arrays=False)
    held = ta.stats()["by_opcode"]
    for op in ops or ():
        assert op in held, held
    rng = np.random.default_rng(len(ts))
    x = tuple(a + 0.01 * rng.normal(size=a.shape) for a in args)
    xa = x[0] if len(x) == 1 else x
    _close(ta(xa), ts(xa), what="primal")
    if np.shape(ts(xa)) == ():
        _close(ta.gradient(xa), ts.gradient(xa), what="gradient")
    _close(ta.jacobian(xa, mode="forward"), ts.jacobian(xa, mode="reverse"), what="jacobian")
    V = [rng.normal(size=a.shape + (3,)) for a in args]
    v = V[0] if len(V) == 1 else tuple(V)
    _close(ta.jvp(xa, v)[1], ts.jvp(xa, v)[1], what="jvp, 3 directions")
    W = rng.normal(size=(2,) + np.shape(ts(xa)))
    _close(ta.vjp(xa, W)[1], ts.vjp(xa, W)[1], what="vjp, 2 weights")
    if second:
        w = np.ones(np.shape(ts(xa)))
        v1s = [rng.normal(size=a.shape) for a in args]
        v1 = v1s[0] if len(v1s) == 1 else tuple(v1s)
        _close(ta.hvp(xa, v1, w), ts.hvp(xa, v1, w), what="hvp")
        _close(ta.hessian(xa, w), ts.hessian(xa, w), what="hessian")
        if fd and np.shape(ts(xa)) == ():          # hvp: central differences of the gradient
            h = 1e-5

            def grad_at(sign):
                xs = tuple(a + sign * h * u for a, u in zip(x, v1s))
                return _flat(ta.gradient(xs[0] if len(xs) == 1 else xs))
            _close(_flat(ta.hvp(xa, v1)), (grad_at(1) - grad_at(-1)) / (2 * h), rtol=1e-6,
                   what="hvp fd")
    if taylor:
        _close(ta.taylor(xa, v1 if second else v, 3), ts.taylor(xa, v1 if second else v, 3),
               what="taylor")
    if fd and np.shape(ts(xa)) == ():
        flat = _flat(xa)
        sizes = [a.size for a in args]

        def plain(u):
            parts = np.split(np.asarray(u, dtype=float), np.cumsum(sizes)[:-1])
            return float(f(*[p.reshape(a.shape) for p, a in zip(parts, args)]))
        _close(_flat(ta.gradient(xa)), ad.finite_diff(plain, flat), rtol=1e-6, what="fd")
    return ta


# ---- elementwise: every unary and binary op with PARTIAL rules --------------------------------
UNARY = sorted({op for op, ar in UFUNC_OPS.values() if ar == 1} | {int(Op.ERF)})
BINARY = sorted({op for op, ar in UFUNC_OPS.values() if ar == 2})
SHIFT = {"ACOSH": 1.5, "ASIN": -0.5, "ACOS": -0.5, "ATANH": -0.5}


def _fn(op):
    """The op's ufunc when NumPy can run it on object arrays of Var too (an object loop), else
    ad.<name>."""
    row = OPS[Op(op)]
    u = row.ufuncs[0] if row.ufuncs else None
    return u if u is not None and any("O" in t for t in u.types) else getattr(ad, row.name)


@pytest.mark.parametrize("op", UNARY, ids=lambda o: Op(o).name)
def test_unary_elementwise(op):
    fn, shift = _fn(op), SHIFT.get(Op(op).name, 0.2)
    x = np.linspace(0.1, 0.6, 6).reshape(2, 3) + shift
    check(lambda a: np.sum(fn(a) * np.array([1.0, -2.0, 0.5])), x, ops=["map", "reduce"],
          fd=Op(op) is not Op.SIGN)


@pytest.mark.parametrize("op", BINARY, ids=lambda o: Op(o).name)
@pytest.mark.parametrize("shapes", [((3, 1), (1, 4)), ((4,), (3, 4)), ((3, 4), ()),
                                    ((2, 1, 3), (4, 1)), ((3, 4), (3, 4))])
def test_binary_elementwise_broadcasting(op, shapes):
    fn = _fn(op)
    rng = np.random.default_rng(op)
    x, y = (rng.uniform(0.5, 1.5, size=s) for s in shapes)
    check(lambda a, b: np.sum(fn(a, b) * 1.5), x, y, ops=["map"])
    check(lambda a, b: np.sum(fn(b, a)), x, y, ops=["map"])


@pytest.mark.parametrize("other", ["number", "constant array", "var"])
def test_binary_with_constants_and_vars(other):
    c = np.array([[0.5], [2.0], [-1.0]])

    def f(a):
        o = {"number": 2.5, "constant array": c, "var": a[0, 1] if hasattr(a, "shape") else a}
        k = o[other]
        return np.sum(a * k + k / (a + 3.0) - k ** 2.0 + ad.hypot(k, a) + ad.maximum(a, k))
    check(f, np.arange(1.0, 13.0).reshape(3, 4) / 4)


# ---- reductions ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1, (0, 2), (0, 1, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_sum_and_mean_over_axes(axis, keepdims):
    x = np.arange(1.0, 25.0).reshape(2, 3, 4) / 7

    def f(a):
        s = np.sum(np.sin(a), axis=axis, keepdims=keepdims)
        m = np.mean(a * a, axis=axis, keepdims=keepdims)
        return s * m + 1.0
    check(f, x, ops=["reduce"], fd=False)
    check(lambda a: total(f(a)), x)


def test_sum_method_and_ad_sum():
    x = np.linspace(-1, 1, 5)
    t = check(lambda a: a.sum() * ad.sum(a) + a.mean(), x, ops=["reduce"])
    assert t.stats()["by_opcode"]["reduce"] == 3


# ---- matmul -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sa, sb", [((3, 4), (4, 2)), ((3, 4), (4,)), ((4,), (4, 2)), ((4,), (4,)),
                                    ((1, 1), (1, 1)), ((5, 1), (1, 3))])
def test_matmul_shapes(sa, sb):
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=sa), rng.normal(size=sb)
    check(lambda x, y: total(np.tanh(x @ y)), a, b, ops=["matmul"])
    check(lambda x, y: total(np.matmul(x, y) * np.dot(x, y)), a, b, ops=["matmul"])
    check(lambda x: total(x @ b), a, ops=["matmul"])             # a constant right operand
    check(lambda y: total(np.sin(a @ y)), b, ops=["matmul"])     # a constant left operand


def test_matmul_aliasing_and_transpose():
    x = np.random.default_rng(5).normal(size=(4, 4))
    check(lambda a: np.sum(a @ a), x, ops=["matmul"])
    check(lambda a: np.sum((a @ a.T) * a), x, ops=["matmul"])
    check(lambda a: np.sum(a * a.T), x, ops=["pack", "map"])
    check(lambda a: np.sum(np.transpose(a) @ a[:, 1]), x)


def kernels_agree(f, a, b, on_tape=lambda t: None):
    """f's tape on SciPy's BLAS and on the built-in kernel: the same value, gradient, hvp, jvp
    and Taylor coefficients (to 1e-12; summation orders differ); the backend found restored."""
    before = ad.blas_info()["backend"] == "blas"
    results = []
    try:
        for on in (True, False):
            info = _use_blas(on)
            if on and info["backend"] != "blas":
                pytest.skip("SciPy's BLAS not found")
            t = ad.record(f, a, b, arrays=True)
            on_tape(t)
            results.append((t((a, b)), t.gradient((a, b)), t.hvp((a, b), (a, b)),
                            t.jvp((a, b), (a, b))[1], t.taylor((a, b), (a, b), 2)))
    finally:
        _use_blas(before)
    for r0, r1 in zip(*results):
        _close(r0, r1, rtol=1e-12)
    assert (ad.blas_info()["backend"] == "blas") == before


def test_blas_and_builtin_kernels_agree():
    rng = np.random.default_rng(11)
    a, b = rng.normal(size=(37, 150)), rng.normal(size=(150, 29))
    kernels_agree(lambda x, y: np.sum(np.tanh(x @ y) @ y.T * x), a, b)


def _capsule(signature):
    """A PyCapsule named signature (as Cython names its C-API capsules), pointing nowhere used"""
    new = ctypes.pythonapi.PyCapsule_New
    new.restype, new.argtypes = ctypes.py_object, [ctypes.c_void_p, ctypes.c_char_p,
                                                   ctypes.c_void_p]
    name = ctypes.create_string_buffer(signature.encode())
    _capsule.names.append(name)                  # the capsule keeps a pointer to its name
    return new(ctypes.addressof(name), name, None)


_capsule.names = []
LP64 = "void (char *, char *, int *, int *, int *, d *, d *, int *, d *, int *, d *, d *, int *)"


@pytest.mark.parametrize("capi", [
    {"dgemm": _capsule(LP64.replace("int *", "int64_t *"))},       # ILP64 BLAS
    {"dgemm": _capsule(LP64.replace(", int *)", ")"))},             # an argument short
    {"dgemm": _capsule("int (" + LP64[6:])},                       # not void
    {"dgemv": _capsule(LP64)},                                      # no dgemm
    None,                                                           # no C API at all
], ids=["ilp64", "short", "returns", "missing", "no capi"])
def test_unexpected_blas_signature_falls_back_to_the_builtin_kernel(capi, monkeypatch):
    """SciPy's dgemm capsule is checked before use: anything but LP64's signature is refused"""
    fake = types.ModuleType("scipy.linalg")
    fake.cython_blas = types.SimpleNamespace(**({"__pyx_capi__": capi} if capi else {}))
    before = ad.blas_info()["backend"] == "blas"
    x = np.random.default_rng(3).normal(size=(5, 7))
    want = ad.record(lambda a: np.sum(np.tanh(a @ a.T)), x).gradient()
    try:
        with monkeypatch.context() as m:
            m.setitem(sys.modules, "scipy.linalg", fake)
            assert _use_blas(True)["backend"] == "builtin"
            got = ad.record(lambda a: np.sum(np.tanh(a @ a.T)), x).gradient()
    finally:
        _use_blas(before)
    _close(got, want, rtol=1e-13)
    assert (ad.blas_info()["backend"] == "blas") == before


def test_the_lp64_signature_is_the_one_taken(monkeypatch):
    """the control of the test above: its fake capsule with LP64's text is found (not used)"""
    fake = types.ModuleType("scipy.linalg")
    cap = _capsule(LP64)
    fake.cython_blas = types.SimpleNamespace(__pyx_capi__={"dgemm": cap})
    monkeypatch.setitem(sys.modules, "scipy.linalg", fake)
    found = _find_dgemm()
    assert found is not None and found[1] == LP64


def test_matmul_zero_tangent_stays_zero_against_inf():
    """The sweeps' rule: a zero tangent or adjoint gives 0, not 0 * Inf = NaN, per element."""
    t = ad.record(lambda x, y: np.sum(x @ y), np.ones((2, 2)), np.ones((2, 2)), arrays=True)
    x, y = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[1.0, np.inf], [2.0, 3.0]])
    jf = t.jacobian((x, y), mode="forward")
    jr = t.jacobian((x, y), mode="reverse")
    for a, b in zip(jf, jr):
        assert np.array_equal(np.isnan(a), np.isnan(b))


# ---- shapes: empty, 0-d, size-1 axes; views and indexing -------------------------------------------------
def test_empty_zero_d_and_size_one():
    check(lambda a: np.sum(np.sin(a)) + 1.0, np.ones((0, 3)), fd=False)
    check(lambda a: np.sum(a, axis=0) + 1.0, np.ones((0, 3)), fd=False)
    # an empty argument beside a live one: its products are empty, the other's Hessian is not
    check(lambda a, b: np.sum(a @ a.T) + np.sum(np.sin(b) * b @ np.exp(b).T) + np.sum(a * 2.0),
          np.ones((3, 0)), np.linspace(-0.5, 0.7, 6).reshape(2, 3))
    check(lambda a, b: np.sum((a @ b) * 3.0) + np.sum(np.cos(b) ** 2), np.ones((2, 0)),
          np.ones((0, 3)))
    check(lambda a: total(np.exp(a) * a), np.array(0.7))
    check(lambda a: np.sum(np.exp(a) * a.T, axis=1), np.ones((1, 3, 1)) * 0.3, fd=False)
    with ad.Tape() as t:
        x = t.variables(np.ones((0, 2)), array=True)
        e = x * 2.0
        assert e.shape == (0, 2) and len(t) == 0 and e.size == 0
        t.outputs(np.sum(x @ np.ones((2, 3)), axis=0))
    assert np.array_equal(t(np.ones((0, 2))), np.zeros(3))


def test_indexing_views_and_iteration():
    x = np.arange(12.0).reshape(3, 4) / 5

    def f(a):
        rows = [r for r in a]
        return (a[1, 2] * a[0][3] + np.sum(a[:, 1:3]) * np.sum(a[::-1, ::2].T[:, :2] ** 2.0) +
                ad.sum(rows[2]) + np.sum(a.reshape(2, 6)[1]) + np.sum(a[-1]))
    t = check(f, x)
    assert "pack" in t.stats()["by_opcode"]


def test_attributes_repr_and_value():
    with ad.Tape() as t:
        a = t.variables(np.arange(6.0).reshape(2, 3), array=True)
        assert (a.shape, a.ndim, a.size, a.dtype, len(a)) == ((2, 3), 2, 6, np.float64, 2)
        assert a.T.shape == (3, 2) and type(a[1, 2]) is ad.Var and a[1, 2].index == 5
        assert "Array(shape=(2, 3)" in repr(a)
        y = np.sum(a * a)
        t.outputs(y)
    assert np.array_equal(a.value, np.arange(6.0).reshape(2, 3))
    assert a.grad is None
    y.backward()
    assert np.array_equal(a.grad, 2 * np.arange(6.0).reshape(2, 3))


def test_mixed_scalar_and_array_program_and_asarray():
    def f(x):                               # object array of Var in, packed and unpacked
        a = ad.asarray([x[2], x[0], 1.5, x[1]])
        s = ad.sin(x[0]) * a
        return (np.maximum(s, 0.1) @ a) + x[1] * a[0] + ad.dot(a, a)
    x = np.array([0.3, -0.8, 1.1])
    t = ad.record(f, x, arrays=False)
    assert "pack" in t.stats()["by_opcode"] and "matmul" in t.stats()["by_opcode"]
    g = t.gradient(x)
    fd = ad.finite_diff(lambda u: float(_plain_f(u)), x)
    _close(g, fd, rtol=1e-6)
    _close(t(x), _plain_f(x))
    with ad.Tape() as tape:
        u = tape.variables([1.0, 2.0])
        assert ad.asarray([u[0], u[1]]).shape == (2,) and len(tape) == 0   # consecutive: no op


def _plain_f(x):
    a = np.array([x[2], x[0], 1.5, x[1]])
    s = math.sin(x[0]) * a
    return np.sum(np.maximum(s, 0.1) @ a) + x[1] * a[0] + a @ a


def test_unsupported_raises_type_error_naming_it():
    with ad.Tape() as t:
        a = t.variables(np.ones(3), array=True)
        with pytest.raises(TypeError, match="cumsum"):
            np.cumsum(a)
        with pytest.raises(TypeError, match="sort"):
            np.sort(a)
        with pytest.raises(TypeError, match="floor"):
            np.floor(a)
        with pytest.raises(TypeError, match="truth value"):
            bool(a)
        with pytest.raises(ValueError, match="broadcast"):
            a + np.ones(4)
        t.outputs(np.sum(a))


def test_array_tape_guards_and_rerecording():
    f = lambda x: np.sum(x * x) if x[0] > 0 else np.sum(x)       # noqa: E731
    t = ad.record(f, np.array([1.0, 2.0]), arrays=True)
    assert np.array_equal(t.gradient(np.array([1.0, 2.0])), [2.0, 4.0])
    assert np.array_equal(t.gradient(np.array([-1.0, 2.0])), [1.0, 1.0])     # re-recorded
    assert "map" not in t.stats()["by_opcode"]


def test_trace_and_graph_refuse_array_tapes_by_name():
    t = ad.record(lambda a: np.sum(np.sin(a)), np.ones(3), arrays=True)
    for fn in (t.trace, t.to_dot):
        with pytest.raises(TypeError, match="MAP, REDUCE"):
            fn()


def test_large_constant_block_then_scalar_constants():
    """A block of constants larger than the constant pool's hash table, then scalar constants."""
    c = np.arange(5000.0)
    t = ad.record(lambda a: np.sum(a * c) + 2.5 * np.sum(a - 0.125), np.ones(5000), arrays=True)
    assert t.gradient(np.ones(5000))[7] == 7 + 2.5
