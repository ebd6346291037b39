"""The C recording paths of ad.Array (csrc/fast_array.h): a @ b, the reductions over None, an
int or a tuple of ints, a.T and strided views record the same tape as the general rules they
replace (written out below as tapead/array.py wrote them in Python: the reference), with the
same values, gradients and errors."""
import numpy as np
import pytest

import tapead as ad
from tapead import array as A
from tapead._core import Op
from tapead.var import _make


# ---- the reference: the general rules through the generic _shape_id and _record ------------------
def ref_matmul(a, b):
    rec = A._rec_of((a, b))
    (fa, sa, ta), (fb, sb, tb) = (A._operand(rec, x, "matmul") for x in (a, b))
    xs, xt = ((1,) + sa, (0,) + ta) if len(sa) == 1 else (sa, ta)
    ys, yt = (sb + (1,), tb + (0,)) if len(sb) == 1 else (sb, tb)
    batch = np.broadcast_shapes(xs[:-2], ys[:-2])
    blocks = [(f, A._shape_id(rec, batch + s[-2:],
                              A._broadcast_strides(s[:-2], t[:-2], batch) + t[-2:]))
              for f, s, t in ((fa, xs, xt), (fb, ys, yt))]
    out = batch + ((xs[-2],) if len(sa) > 1 else ()) + ((ys[-1],) if len(sb) > 1 else ())
    z = A._record(rec, int(Op.MATMUL), 0, batch + (xs[-2], ys[-1]), blocks, True)
    return A.Array(rec, z._first, out) if out else _make(rec, z._first)


def ref_reduce(op, a, axis=None, keepdims=False):
    axes = A._axes(axis, a.ndim)
    out = tuple(1 if d in axes else n for d, n in enumerate(a.shape))
    zst = A._contiguous(out)
    zmap = tuple(0 if d in axes else zst[d] for d in range(a.ndim))
    res = out if keepdims else tuple(n for d, n in enumerate(a.shape) if d not in axes)
    rec = a._rec
    return A._record(rec, int(op), A._shape_id(rec, a.shape, zmap), res,
                     [(a._first, A._shape_id(rec, a.shape, A._contiguous(a.shape)))])


def ref_map(op, *args):
    rec = A._rec_of(args)
    ops = [A._operand(rec, a, "ref") for a in args]
    out = np.broadcast_shapes(*(s for _, s, _ in ops))
    blocks = [(f, A._shape_id(rec, out, A._broadcast_strides(s, st, out))) for f, s, st in ops]
    return A._record(rec, int(Op.MAP), int(op), out, blocks)


def ref_transpose(a):
    return A._index.select(a, lambda b: b.T)   # NumPy's view of the element numbers


def _weighted(z):
    """A scalar of z that weighs every element differently (a Var z: itself)."""
    if type(z) is ad.Var:
        return z * 1.5
    return np.sum(z * (np.arange(z.size).reshape(z.shape) + 1.0))


def same_recording(fast, ref, *xs):
    """fast and ref record the same tape (every word, shape and constant), the same values and
    gradients, and fast's values are NumPy's."""
    tf, tr = (ad.record(lambda *v, f=f: _weighted(f(*map(ad.asarray, v))), *xs)
              for f in (fast, ref))     # (a 0-d input is a Var: ad.asarray makes a 0-d Array)
    assert tf.dumps(function=False) == tr.dumps(function=False)
    assert tf.stats()["by_opcode"] == tr.stats()["by_opcode"]
    x = xs if len(xs) > 1 else xs[0]
    assert np.array_equal(tf.forward(x), tr.forward(x))
    gf, gr = tf.gradient(x), tr.gradient(x)
    for f, r in zip(gf, gr) if len(xs) > 1 else [(gf, gr)]:
        assert np.array_equal(f, r)
    return tf


def _values(z):
    return z._value if type(z) is ad.Var else np.asarray(z._values())


MATMUL_SHAPES = [((2, 2), (2, 2)), ((3, 4), (4, 2)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,)),
                 ((1, 1), (1, 1)), ((5, 1), (1, 3)), ((5, 2, 3), (3, 4)), ((2, 3), (4, 3, 2)),
                 ((5, 1, 2, 3), (4, 3, 2)), ((1, 2, 3), (6, 3, 2)), ((2, 1, 2, 3), (1, 3, 3, 1)),
                 ((3,), (2, 3, 4)), ((2, 2, 3), (3,)), ((0, 3), (3, 4)), ((2, 0), (0, 3)),
                 ((0,), (0,)), ((3, 0, 2), (2, 5))]


@pytest.mark.parametrize("sa, sb", MATMUL_SHAPES)
def test_matmul_records_the_general_tape(sa, sb):
    rng = np.random.default_rng(len(sa) * 7 + len(sb))
    x, y = rng.normal(size=sa), rng.normal(size=sb)
    if 0 in x.shape + y.shape:
        with ad.Tape() as t:
            a, b = t.variables(x), t.variables(y)
            z, r = a @ b, ref_matmul(a, b)
            assert type(z) is type(r) and np.shape(z) == np.shape(r) == (x @ y).shape
        return
    t = same_recording(lambda a, b: a @ b, ref_matmul, x, y)
    with ad.Tape():
        pass
    with ad.Tape() as t:
        z = t.variables(x) @ t.variables(y)
        assert np.shape(z) == (x @ y).shape and np.allclose(_values(z), x @ y, rtol=1e-14)


@pytest.mark.parametrize("form", ["slot", "np.matmul", "rmatmul-ndarray", "ndarray-left",
                                  "strided-constant", "var-vector", "self"])
def test_matmul_operand_forms(form):
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(3, 4)), rng.normal(size=(4, 5))
    c = np.asfortranarray(rng.normal(size=(8, 5)))[::2]           # non-contiguous constant
    fast = {"slot": lambda a, b: a @ b,
            "np.matmul": lambda a, b: np.matmul(a, b),
            "rmatmul-ndarray": lambda a, b: a @ y,
            "ndarray-left": lambda a, b: x @ b,
            "strided-constant": lambda a, b: a @ c,
            "var-vector": lambda a, b: ad.asarray([a[0, 0], 2.0, a[1, 1], a[0, 1]]) @ b,
            "self": lambda a, b: a[:, :3] @ a[:3] @ b}[form]
    ref = {"slot": ref_matmul, "np.matmul": ref_matmul,
           "rmatmul-ndarray": lambda a, b: ref_matmul(a, y),
           "ndarray-left": lambda a, b: ref_matmul(x, b),
           "strided-constant": lambda a, b: ref_matmul(a, c),
           "var-vector": lambda a, b: ref_matmul(ad.asarray([a[0, 0], 2.0, a[1, 1], a[0, 1]]), b),
           "self": lambda a, b: ref_matmul(ref_matmul(a[:, :3], a[:3]), b)}[form]
    same_recording(fast, ref, x, y)


def test_matmul_errors_name_both_shapes():
    with ad.Tape() as t:
        a, b, v = t.variables(np.ones((2, 3))), t.variables(np.ones((4, 2, 2))), t.variables(1.0)
        c = t.variables(np.ones((3, 2, 2)))
        with pytest.raises(ValueError, match=r"^matmul: shapes \(2, 3\) and \(4, 2, 2\) do not "
                                             r"align \(3 != 2\)$"):
            a @ b
        with pytest.raises(ValueError, match=r"^matmul: the batch axes of shapes \(4, 2, 2\) and "
                                             r"\(3, 2, 2\) do not broadcast$"):
            b @ c
        with pytest.raises(ValueError, match=r"^matmul: operands must be at least 1-d; got "
                                             r"shapes \(\) and \(2, 3\)$"):
            v @ a
        with pytest.raises(ValueError, match=r"shapes \(2, 3\) and \(\)"):
            np.matmul(a, 2.0)
        with pytest.raises(TypeError):
            a @ "x"
    with ad.Tape() as t2:
        d = t2.variables(np.ones((3, 2)))
    with pytest.raises(ad.TapeError):
        a @ d


def test_matmul_object_arrays_agree():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    ta = ad.record(lambda a, b: np.sum(a @ b), x, y)
    to = ad.record(lambda a, b: np.sum(a @ b), x, y, arrays=False)
    assert "matmul" in ta.stats()["by_opcode"] and "matmul" not in to.stats()["by_opcode"]
    for ga, go in zip(ta.gradient((x, y)), to.gradient((x, y))):
        assert np.allclose(ga, go, rtol=1e-13)


# ---- reductions ----------------------------------------------------------------------------------
REDUCE_CASES = [((), None), ((3,), None), ((3,), 0), ((3,), -1), ((2, 3), None), ((2, 3), 0),
                ((2, 3), 1), ((2, 3), -2), ((2, 3), (0, 1)), ((2, 3), (1, 0)), ((2, 3), (-1,)),
                ((2, 3), ()), ((2, 1, 3), 1), ((2, 1, 3), (0, 2)), ((1, 1), None),
                ((0, 3), 0), ((0, 3), None), ((3, 0), 0), ((0,), None)]
REDUCE_OPS = {"sum": (Op.REDUCE, np.sum), "max": (Op.AMAX, np.max), "min": (Op.AMIN, np.min),
              "prod": (Op.PROD, np.prod)}


@pytest.mark.parametrize("shape, axis", REDUCE_CASES)
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("name", list(REDUCE_OPS))
def test_reductions_record_the_general_tape(name, shape, axis, keepdims):
    op, fn = REDUCE_OPS[name]
    x = np.random.default_rng(1).normal(size=shape)
    if name in ("max", "min") and 0 in [shape[d] for d in A._axes(axis, len(shape))]:
        with ad.Tape() as t, pytest.raises(ValueError, match="zero-size array to reduction"):
            fn(t.variables(x), axis=axis, keepdims=keepdims)
        return
    calls = [lambda a: fn(a, axis=axis, keepdims=keepdims),
             lambda a: getattr(a, name)(axis, keepdims)]
    if axis is not None:                  # NumPy integers take the general path (_axes)
        general = (tuple(np.int64(d) for d in axis) if isinstance(axis, tuple)
                   else np.int64(axis))
        calls.append(lambda a: fn(a, axis=general, keepdims=keepdims))
    if x.size == 0:
        with ad.Tape() as t:
            a = t.variables(x)
            r = ref_reduce(op, a, axis, keepdims)
            for f in calls:
                z = f(a)
                assert type(z) is type(r) and np.shape(z) == np.shape(r)
        return
    for f in calls:
        same_recording(f, lambda a: ref_reduce(op, a, axis, keepdims), x)
    with ad.Tape() as t:
        z = calls[0](ad.asarray(t.variables(x)))
        assert np.shape(z) == np.shape(fn(x, axis=axis, keepdims=keepdims))
        assert np.allclose(_values(z), fn(x, axis=axis, keepdims=keepdims), rtol=1e-14)


def test_mean_and_reduction_errors():
    x = np.random.default_rng(4).normal(size=(2, 3))
    same_recording(lambda a: np.mean(a), lambda a: ref_reduce(Op.REDUCE, a) / 6.0, x)
    same_recording(lambda a: a.mean(axis=0, keepdims=True),
                   lambda a: ref_reduce(Op.REDUCE, a, 0, True) / 2.0, x)
    with ad.Tape() as t:
        a = t.variables(x)
        for axis in (2, -3, (0, 2)):
            with pytest.raises(A._AxisError, match=f"axis {2 if axis != -3 else -3} is out of "):
                np.sum(a, axis=axis)
        with pytest.raises(TypeError, match="takes axis and keepdims only"):
            np.sum(a, axis=0, dtype=float)
        assert np.sum(a, axis=np.int8(1)).shape == (2,)          # (the general path)


# ---- transposes and strided views ----------------------------------------------------------------
@pytest.mark.parametrize("shape", [(), (3,), (1,), (2, 3), (3, 1), (1, 3), (2, 1, 3), (2, 3, 4),
                                   (0, 3), (3, 0)])
def test_transpose_records_the_general_tape(shape):
    x = np.random.default_rng(6).normal(size=shape)
    if x.size == 0:
        with ad.Tape() as t:
            a = t.variables(x)
            z, r = a.T, ref_transpose(a)
            assert type(z) is type(r) and np.shape(z) == np.shape(r) == x.T.shape
        return
    same_recording(lambda a: a.T, ref_transpose, x)
    same_recording(lambda a: np.transpose(a) * a.T, lambda a: ref_transpose(a) * ref_transpose(a),
                   x)
    with ad.Tape() as t:
        z = ad.asarray(t.variables(x)).T
        assert np.shape(z) == x.T.shape and np.array_equal(_values(z), x.T)


def test_strided_views_and_size_one_axes():
    x = np.random.default_rng(8).normal(size=(3, 4))
    same_recording(lambda a: a[:, ::2] @ a[::2, :2].T,      # (the Python path: one MATMUL too)
                   lambda a: A.matmul(a[:, ::2], a[::2, :2].T), x)
    same_recording(lambda a: np.sum(a[1:, 1:].T, axis=0),
                   lambda a: ref_reduce(Op.REDUCE, ref_transpose(a[1:, 1:]), 0), x)
    with ad.Tape() as t:
        a = t.variables(x)
        n = len(t)
        assert a[None].T.shape == (4, 3, 1) and len(t) == n + 1        # a PACK
        assert a[:1].T.shape == (4, 1) and len(t) == n + 1             # a view: no operation
        assert a.T.T.shape == (3, 4)


def test_closed_tape_raises_as_before():
    with ad.Tape() as t:
        a, b = t.variables(np.ones((2, 2))), t.variables(np.ones((2, 2)))
    for f in (lambda: a @ b, lambda: np.sum(a), lambda: a.sum(axis=0), lambda: a.T):
        with pytest.raises(ad.TapeError):
            f()


# ---- MAP with broadcasting (_map: shapes that agree skip np.broadcast_shapes) -------------------
MAP_SHAPES = [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((3,), (2, 3)), ((2, 3), ()),
              ((1,), (3,)), ((0, 3), (3,)), ((2, 0), (2, 1))]


@pytest.mark.parametrize("sa, sb", MAP_SHAPES)
def test_map_broadcasting_records_the_general_tape(sa, sb):
    x, y = np.random.default_rng(9).normal(size=sa), np.random.default_rng(10).normal(size=sb)
    cases = [(lambda a, b: np.maximum(a, b), lambda a, b: ref_map(Op.MAX, a, b)),
             (lambda a, b: np.maximum(a, 0), lambda a, b: ref_map(Op.MAX, a, 0)),
             (lambda a, b: -a * np.exp(b), lambda a, b: ref_map(Op.MUL, ref_map(Op.NEG, a),
                                                                 ref_map(Op.EXP, b))),
             (lambda a, b: a ** 3 - y, lambda a, b: ref_map(Op.SUB, ref_map(Op.POW, a, 3), y))]
    for fast, ref in cases:
        if x.size * y.size:
            same_recording(fast, ref, x, y)
        with ad.Tape() as t:
            a, b = ad.asarray(t.variables(x)), ad.asarray(t.variables(y))
            z, r = fast(a, b), ref(a, b)
            assert type(z) is type(r) and np.shape(z) == np.shape(r)


def test_map_broadcast_error_names_the_shapes():
    with ad.Tape() as t:
        a, b = t.variables(np.ones((2, 3))), t.variables(np.ones((4,)))
        with pytest.raises(ValueError, match=r"^operands could not be broadcast together with "
                                             r"shapes \(2, 3\) \(4,\)$"):
            np.maximum(a, b)
        with pytest.raises(ValueError, match=r"shapes \(2, 3\) \(\) \(4,\)$"):
            ad.where(a > 0, 1.0, b)
