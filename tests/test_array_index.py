"""ad.Array indexing, functional updates and joining: GATHER, SCATTER, SCATTER_ADD and the views
(PACK or no operation), each against the same program on object arrays of Var (check: every
sweep, central differences), with repeated, empty and out-of-range indices."""
import numpy as np
import pytest

import tapead as ad
from tapead._core import Op, ffi, lib
from tapead.array import _shape_id

from test_arrays import _close, check, total

X3 = np.arange(1.0, 25.0).reshape(2, 3, 4) / 10
MASK = np.array([[True, False, True, False], [False, False, True, True], [True, True, False,
                                                                          False]])


def ops_of(t):
    return t.stats()["by_opcode"]


def weights(shape):
    return np.linspace(-1.0, 2.0, int(np.prod(shape))).reshape(shape)


def probe(key, x=X3, gather=None):
    """a[key] in a program, against the scalar program; gather: whether it must be a GATHER."""
    def f(a):
        s = a[key]
        return total(np.sin(s) * s * weights(np.shape(s))) + total(a * a) * 0.5
    t = check(f, x)
    if gather is not None:
        assert ("gather" in ops_of(t)) == gather, ops_of(t)
    return t


# ---- basic indexing: views ----------------------------------------------------------------------
@pytest.mark.parametrize("key", [1, -1, (1, 2), (1, 2, 3), (-1, -2, -3), slice(None, None, -1),
                                 (slice(None), slice(2, 0, -1)), (Ellipsis, 1), (1, Ellipsis),
                                 (None, 1, None, slice(None, None, 2)), (Ellipsis, None),
                                 (slice(1, 2), slice(None), slice(3, 0, -2)), np.newaxis,
                                 (0, slice(5, None)), (slice(None), 1, slice(None, None, 3)),
                                 np.int64(1), ()],
                         ids=repr)
def test_basic_indexing_is_a_view(key):
    probe(key, gather=False)


def test_views_cost_no_operation_or_one_pack():
    with ad.Tape() as t:
        a = t.variables(X3, array=True)
        b = t.variables(np.arange(5.0), array=True)
        assert type(b[3]) is ad.Var and b[3].index == 24 + 3 and b[-1].index == 24 + 4
        for v in (a[1], a[1, 2], a[:, :], a[...], a[1, 1:3], a[None], a[0, None, 1],
                  np.expand_dims(a, 1), np.squeeze(a[:1]), a.flatten(), np.ravel(a),
                  a[[0, 1]], b[[1, 2, 3]], np.concatenate([b[:2], b[2:]]), a.copy()):
            assert True
        assert len(t) == 0
        assert type(a[1, 2, 3]) is ad.Var and a[1, 2, 3].index == 23
        a[:, ::2]                                        # strided: one PACK
        a[:, 1]
        np.swapaxes(a, 0, 2)
        assert ops_of(t) == {"pack": 3}
        t.outputs(b[4])


def test_element_var_of_a_one_d_array():
    with ad.Tape() as t:
        b = t.variables(np.arange(4.0), array=True)
        es = [b[i] for i in range(4)] + list(b)
        assert [e.index for e in es] == [0, 1, 2, 3] * 2 and len(t) == 0
        t.outputs(es[0])


# ---- integer arrays and masks: gathers ----------------------------------------------------------
@pytest.mark.parametrize("key, gather", [           # a selection strides describe: no gather
    ([1, 0, 1], True), ([[0, 1], [1, 1]], True), (np.array([0, 0]), False),
    (([0, 1, 1], [2, 0, 2]), True), ((1, [0, 2, 2]), True), ((slice(None), [2, 0, 0]), True),
    (([1, 0], slice(None), [3, 3]), False), (([1, 0, 0], slice(None), [3, 3, 1]), True),
    ((Ellipsis, [3, 1, 3]), True), ((slice(None), [[0], [2]], [1, 3]), False),
    ((slice(None), [[0], [2]], [1, 3, 2]), True), ((0, MASK), True), ((X3 > 1.2), False),
    (np.round(X3 * 10) % 5 < 2, True), ((slice(None), np.array([True, False, True])), False),
    (([0, 1], [1, 1], [2, 3]), False), (([0, 1],), False), ((1, [0, 2]), False)],
    ids=repr)
def test_integer_array_and_mask_indexing(key, gather):
    probe(key, gather=gather)


@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1])
def test_take(axis):
    idx = [[2, 0], [1, 1]] if axis is None or axis else [1, 0, 1]

    def f(a):
        return total(np.cos(np.take(a, idx, axis=axis)) * np.take(a, 1, axis=axis or 0).sum())
    check(f, X3)
    check(lambda a: total(np.take(a, [-1, 5], mode="wrap") ** 2.0), X3[0, 0])


def test_repeated_indices_accumulate_adjoints():
    t = ad.record(lambda a: np.sum(a[[0, 0, 0, 2]] * np.array([1.0, 2.0, 3.0, 4.0])),
                  np.ones(3), arrays=True)
    assert np.array_equal(t.gradient(np.ones(3)), [6.0, 0.0, 4.0])
    assert np.array_equal(t.jacobian(np.ones(3), mode="forward"), [6.0, 0.0, 4.0])
    check(lambda a: np.sum(a[[2, 2, 1, 2]] ** 3.0), np.array([0.5, -1.5, 2.0]))


def test_empty_and_zero_d():
    x = np.array([0.5, 1.5, 2.5])

    def f(a):
        e = a[[]]
        assert np.shape(e) == (0,)
        b = a.copy()
        b[np.zeros(0, dtype=int)] = 7.0            # no position: a unchanged
        b[np.array([False, False, False])] = 3.0
        return total(b * a[np.array([True, False, True])].sum())
    check(f, x)
    def zero_d(a):
        b = a if type(a) is ad.Array else np.asarray(a, dtype=object)
        return total(b[None] * b[...] * b[()])
    check(zero_d, np.array(0.7))
    check(lambda a: total(a[0, :, [0, 0]] * a[:, 0:1][:, 0]), np.ones((1, 3, 1)) * 0.3)

    def set0(a):
        b = a.copy() if np.ndim(a) else a
        if type(b) is ad.Array:
            b[()] = b[()] * 3.0
            return b[()] ** 2.0
        return (b * 3.0) ** 2.0
    t = check(set0, np.array(0.7))
    assert "scatter" in ops_of(t)


# ---- functional updates -------------------------------------------------------------------------
def at_set(a, key, v):
    if type(a) is ad.Array:
        return a.at[key].set(v)
    b = a.copy()
    b[key] = v
    return b


def at_add(a, key, v):
    if type(a) is ad.Array:
        return a.at[key].add(v)
    b = a.copy()                                   # repeated positions accumulate
    p = np.arange(b.size).reshape(b.shape)[key]
    flat = b.reshape(-1)
    for i, e in zip(p.ravel(), np.broadcast_to(np.asarray(v, dtype=object), p.shape).ravel()):
        flat[i] = flat[i] + e
    return b


UPDATES = [(1, "scalar"), ((0, [1, 2]), "var"), ([[0, 1], [2, 2]], "array"),
           ((slice(None), 1), "Array"), ((Ellipsis, [3, 0, 3]), "Array"),
           ((MASK,), "var"), (([1, 1, 2], [0, 0, 3]), "Array")]


def value_of(kind, a, key):
    shape = np.shape(np.zeros((3, 4))[key])
    n = int(np.prod(shape))
    return {"scalar": lambda: 2.5, "var": lambda: a[0, 0] * a[1, 1],
            "array": lambda: weights(shape[-1:]),
            "Array": lambda: ad.sin(a.reshape(-1)[:n].reshape(shape) + weights(shape))}[kind]()


@pytest.mark.parametrize("key, kind", UPDATES, ids=repr)
@pytest.mark.parametrize("how", ["set", "add", "setitem"])
def test_updates(key, kind, how):
    x = np.arange(1.0, 13.0).reshape(3, 4) / 7

    def f(a):
        v = value_of(kind, a, key)
        if how == "setitem":
            b = a.copy()
            b[key] = v
        else:
            b = (at_set if how == "set" else at_add)(a, key, v)
        return total(ad.tanh(b) * b * weights(b.shape)) + total(a) * 0.25
    t = check(f, x)
    assert ("scatter_add" if how == "add" else "scatter") in ops_of(t)


def test_set_with_repeats_last_wins_and_add_accumulates():
    x = np.array([1.0, 2.0, 3.0])
    v = np.array([10.0, 20.0, 30.0])

    def f(a, w):
        return a.at[[2, 0, 2]].set(w * 1.0), a.at[[2, 0, 2]].add(w * 1.0)
    with ad.Tape() as t:
        a, w = t.variables(x, array=True), t.variables(v, array=True)
        s, d = f(a, w)
        t.outputs(ad.sum(s * np.array([1.0, 2.0, 3.0])) + ad.sum(d * np.array([1.0, 2.0, 3.0])))
    assert np.array_equal(s.value, [20.0, 2.0, 30.0])
    assert np.array_equal(d.value, [21.0, 2.0, 43.0])
    g = t.gradient((x, v))
    assert np.array_equal(g[0], [1.0, 4.0, 3.0])        # set positions: none from a but a[1]
    assert np.array_equal(g[1], [0.0 + 3.0, 1.0 + 1.0, 3.0 + 3.0])

    def h(a, w):
        b = a.copy()
        b[[0, 0, 1]] = w[:3] ** 2.0
        return total(at_add(b, [1, 1, 0], w[1:]) * a)
    check(h, x, np.array([0.5, -1.5, 2.0, 0.25]))


def test_setitem_rebinds_the_name_only():
    with ad.Tape() as t:
        a = t.variables(np.arange(4.0), array=True)
        alias, view = a, a[1:3]
        first = a._first
        a[1] = 9.0
        assert a is alias and a._first != first
        set1, old = a.copy(), ad.Array(a._rec, first, (4,))
        a[[0, 3]] += 1.0                           # a gather, a MAP, a scatter
        t.outputs(ad.sum(a * old))
    assert view.value.tolist() == [1.0, 2.0] and old.value.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert set1.value.tolist() == [0.0, 9.0, 2.0, 3.0]
    assert a.value.tolist() == [1.0, 9.0, 2.0, 4.0]
    assert np.array_equal(t.gradient(np.arange(4.0)), [1.0, 9.0, 4.0, 7.0])


def test_mask_hook_objects_with_array():
    class Cond:                                    # a comparison's result, as a mask
        def __init__(self, m):
            self.m = m

        def __array__(self, dtype=None, copy=None):
            return self.m

    def f(a):
        b = a.copy()
        m = np.arange(6) % 3 != 1
        b[Cond(m) if type(a) is ad.Array else m] = 0.0
        return total(b * b * a[Cond(np.ones(a.shape, bool))])
    check(f, np.linspace(0.0, 1.0, 6), fd=False)


def test_jvp_vjp_duality_and_hvp():
    rng = np.random.default_rng(7)

    def f(a, v):
        b = at_add(a, [0, 2, 2, 4], v[[1, 1, 0, 2]] ** 2.0)
        b[[4, 1, 4]] = ad.sin(v)
        return np.exp(b[[3, 3, 0, 1]]) * np.concatenate([b[:2], b[3:]])
    x, v = rng.normal(size=5), rng.normal(size=3)
    t = ad.record(f, x, v, arrays=True)
    dx, dv = rng.normal(size=5), rng.normal(size=3)
    w = rng.normal(size=4)
    _, ydot = t.jvp((x, v), (dx, dv))
    _, (gx, gv) = t.vjp((x, v), w)
    assert abs(w @ ydot - (gx @ dx + gv @ dv)) <= 1e-13 * (abs(w @ ydot) + 1)
    check(lambda a, u: np.sum(f(a, u) ** 2.0), x, v)


def test_mixed_scalar_loop_over_a_gather_then_arrays():
    def f(a, scalars):
        g = a[[2, 0, 2, 1]]
        s = [g[i] * g[(i + 1) % 4] + ad.sin(g[i]) for i in range(4)]
        b = ad.asarray(s) if scalars is None else np.array(s, dtype=object)
        b = np.concatenate([b, a[:2] * 2.0])
        b[[0, 5]] = b[[5, 0]]
        return np.sum(np.tanh(b) * np.arange(1.0, 7.0)) + ad.dot(b, b)
    x = np.array([0.3, -0.8, 1.1])
    ta = ad.record(lambda a: f(a, None), x, arrays=True)
    ts = ad.record(lambda a: f(a, True), x, arrays=False)   # scalars only
    assert "pack" not in ops_of(ts) and "gather" not in ops_of(ts)
    for u in (x, x + 0.1):
        _close(ta(u), ts(u))
        _close(ta.gradient(u), ts.gradient(u))
        _close(ta.hessian(u), ts.hessian(u))


# ---- joining and rearranging --------------------------------------------------------------------
A, B = np.arange(1.0, 7.0).reshape(2, 3) / 5, np.arange(-3.0, 3.0).reshape(2, 3) / 4


@pytest.mark.parametrize("name, fn", [
    ("concatenate0", lambda a, b: np.concatenate([a, b, A])),
    ("concatenate1", lambda a, b: np.concatenate([a, b[:, :2], A], axis=1)),
    ("concatenate-1", lambda a, b: np.concatenate((b, a), axis=-1)),
    ("concatenate None", lambda a, b: np.concatenate([a, b[0]], axis=None)),
    ("stack0", lambda a, b: np.stack([a, b, B])),
    ("stack1", lambda a, b: np.stack([a, A, b], axis=1)),
    ("stack-1", lambda a, b: np.stack([b, a], axis=-1)),
    ("stack vars", lambda a, b: np.stack([a[0, 0], b[1, 2], 2.0, a[1, 1] * b[0, 0]])),
    ("hstack", lambda a, b: np.hstack([a, b, A[:, :1]])),
    ("hstack 1-d", lambda a, b: np.hstack([a[0], b[1], np.ones(2)])),
    ("vstack", lambda a, b: np.vstack([a, b[1], A])),
    ("swapaxes", lambda a, b: np.swapaxes(np.stack([a, b]), 0, -1)),
    ("moveaxis", lambda a, b: np.moveaxis(np.stack([a, b]), 0, 2)),
    ("expand_dims", lambda a, b: np.expand_dims(a, (0, -1)) * b[:, None, :, None]),
    ("squeeze", lambda a, b: np.squeeze(a[:1, None]) * np.squeeze(b[None, :1], axis=(0, 1))),
    ("broadcast_to", lambda a, b: np.broadcast_to(a[0], (4, 3)) * np.broadcast_to(b[:, :1],
                                                                              (2, 3))[0]),
    ("flatten ravel", lambda a, b: a.flatten() * np.ravel(b.T)),
    ("transpose", lambda a, b: np.transpose(np.stack([a, b]), (2, 0, 1))),
    ("flip roll diagonal", lambda a, b: np.flip(a, 1) * np.roll(b, 1) + np.diagonal(a)[0]),
], ids=lambda p: p if isinstance(p, str) else "")
def test_joining_and_rearranging(name, fn):
    t = check(lambda a, b: total(ad.sin(fn(a, b)) * fn(a, b)), A + 0.1, B)
    assert "gather" not in ops_of(t) or name.startswith("flip")


def test_join_costs_at_most_two_packs():
    with ad.Tape() as t:
        a, b = t.variables(A, array=True), t.variables(B, array=True)
        assert np.concatenate([a, b]).shape == (4, 3) and len(t) == 0   # adjacent blocks
        np.concatenate([b, a])
        assert ops_of(t) == {"pack": 1}
        np.concatenate([a, b], axis=1)
        assert ops_of(t) == {"pack": 3}
        t.outputs(a[0, 0])


# ---- bad input ----------------------------------------------------------------------------------
def test_bad_indices_raise_like_numpy():
    with ad.Tape() as t:
        a = t.variables(np.ones((3, 4)), array=True)
        b = t.variables(np.ones(3), array=True)
        for key, match in [(5, "index 5 is out of bounds for axis 0 with size 3"),
                           ((0, 4), "index 4 is out of bounds for axis 1 with size 4"),
                           ([0, 3], "index 3 is out of bounds for axis 0 with size 3"),
                           ((1, [-5]), "index -5 is out of bounds for axis 1 with size 4"),
                           (np.array([0.0, 1.0]), "integer"), (1.5, "integer"),
                           (np.ones(2, bool), "boolean index did not match")]:
            with pytest.raises(IndexError, match=match):
                a[key]
            with pytest.raises(IndexError, match=match):
                a[key] = 1.0
        with pytest.raises(IndexError, match="index 7 is out of bounds"):
            b[7]
        with pytest.raises(IndexError):
            np.take(b, [3])
        with pytest.raises(TypeError, match="active indices"):
            a[b[0]]
        with pytest.raises(TypeError, match="active indices"):
            a.at[b].set(1.0)
        with pytest.raises(ValueError, match=r"\(3,\).*\(2,\)"):
            a[0, [1, 2]] = np.ones(3)
        with pytest.raises(ValueError, match=r"\(2, 4\).*\(3,\)"):
            a.at[:, 0].add(a[:2])
        with pytest.raises(ValueError, match=r"\(3, 4\) and \(3, 1\)"):
            np.concatenate([a, b[:, None]])
        with pytest.raises(ValueError, match=r"\(3, 4\) and \(4,\)"):
            np.stack([a, b.at[0].get() * np.ones(4)])
        with pytest.raises(ValueError, match="zero-dimensional"):
            np.concatenate([b[0], b[1]])
        with pytest.raises(ValueError):
            np.squeeze(a, 0)
        with pytest.raises(ValueError):
            np.broadcast_to(a, (3, 5))
        t.outputs(ad.sum(a))


def test_the_core_checks_every_index():
    """The C core refuses an index table entry or an op whose indices fall outside what they
    index, whatever Python sends (ValueError, no crash)."""
    with ad.Tape() as t:
        a = t.variables(np.ones(4), array=True)
        rec = a._rec
        vec = [a._first, _shape_id(rec, (4,), (1,))]

        def entry(words):
            w = np.array(words, dtype=np.int64)
            return lib.tp_indices(rec._p, ffi.from_buffer("int64_t[]", w), w.size)
        assert entry([0, -1]) == lib.TP_EARG and entry([2 ** 31]) == lib.TP_EARG

        def rec_op(op, words, shape, blocks):
            return lib.tp_rec_block(rec._p, int(op), entry(words), _shape_id(rec, shape,
                                    (1,) * len(shape)), ffi.new("int32_t[]", blocks),
                                    len(blocks) // 2)
        n = len(t)
        assert rec_op(Op.GATHER, [0, 4], (2,), vec) == lib.TP_EARG          # 4 >= size 4
        assert rec_op(Op.GATHER, [0, 1], (3,), vec) == lib.TP_EARG          # 2 words, 3 results
        assert rec_op(Op.GATHER, [0, 1], (2,), vec + vec) == lib.TP_EARG    # one operand
        assert rec_op(Op.SCATTER, [1, 0, 0, 0], (4,), vec + vec) == lib.TP_EARG   # not ascending
        assert rec_op(Op.SCATTER, [0, 4, 0, 0], (4,), vec + vec) == lib.TP_EARG   # position 4
        assert rec_op(Op.SCATTER_ADD, [1, 1, 0, 5], (4,), vec + vec) == lib.TP_EARG  # source 5
        assert rec_op(Op.SCATTER_ADD, [1, 1, 0], (4,), vec + vec) == lib.TP_EARG    # odd count
        assert rec_op(Op.SCATTER, [1], (3,), vec + vec) == lib.TP_EARG     # x of 4, 3 results
        assert len(t) == n
        assert rec_op(Op.SCATTER_ADD, [1, 1, 0, 3], (4,), vec + vec) >= 0
        t.outputs(ad.sum(a))


def test_values_at_recording_equal_the_replay():
    def f(a):
        return [a[::-1] * a, a[[2, 0, 0]] * 2.0, at_add(a, [1, 1], a[:2]),
                np.stack([a, a[::2][[0, 0, 1]]])]
    x = np.array([0.5, -1.0, 2.0])
    with ad.Tape() as t:
        a = t.variables(x, array=True)
        outs = f(a)
        t.outputs(np.concatenate([np.ravel(o) for o in outs]))
    at_rec = np.concatenate([np.ravel(o.value) for o in outs])
    assert np.array_equal(at_rec, t(x))
    plain = f(x.copy().astype(object))
    assert np.array_equal(at_rec, np.concatenate([np.ravel(np.asarray(o, float))
                                                  for o in plain]))


def test_index_table_on_the_tape_and_backward():
    with ad.Tape() as t:
        a = t.variables(np.array([1.0, 2.0, 3.0]), array=True)
        before = t.nbytes
        g = a[[2, 0, 2, 1]]
        s = a.at[[1, 1]].add(g[:2])
        y = ad.sum(g * s[[0, 0, 1, 2]])
        t.outputs(y)
    assert t.nbytes >= before + 4 * (4 + 4 + 4)           # the index words are counted
    words = [ffi.new("int32_t[]", 8) for _ in range(3)]
    counts = [lib.tp_index_words(a._rec._p, i, words[i]) for i in range(3)]
    assert counts == [4, 4, 4]
    assert list(words[0])[:4] == [2, 0, 2, 1]              # GATHER: the positions
    assert list(words[1])[:4] == [1, 1, 0, 1]              # SCATTER_ADD: positions, sources
    assert lib.tp_index_words(a._rec._p, 3, ffi.NULL) == lib.TP_EARG
    y.backward()
    x = np.array([1.0, 2.0, 3.0])
    assert np.array_equal(a.grad, t.gradient(x))
    check(lambda u: total(u[[2, 0, 2, 1]] * at_add(u, [1, 1], u[[2, 0, 2, 1]][:2])[[0, 0, 1, 2]]),
          x)


def test_join_bad_axes():
    with ad.Tape() as t:
        a = t.variables(np.ones((2, 3)), array=True)
        for fn in (lambda: np.concatenate([a, a], axis=2), lambda: np.stack([a, a], axis=-4),
                   lambda: np.swapaxes(a, 0, 2), lambda: np.take(a, [0], axis=3)):
            with pytest.raises(np.exceptions.AxisError if hasattr(np, "exceptions")
                               else np.AxisError):
                fn()
        assert np.hstack([a[0, 0], a[1, 1], 2.0]).shape == (3,)
        assert np.vstack([a[0, 0], a[1, 1]]).shape == (2, 1)
        t.outputs(a[0, 0])


def test_updating_an_input_inside_record():
    def f(a):
        a[0] = a[1] * a[2]                         # a names the update; the inputs stay inputs
        a[[2, 2]] += 1.0
        return np.sum(a * a)
    x = np.array([0.5, -1.5, 2.0])
    t = ad.record(f, x, arrays=True)
    b0, b2 = x[1] * x[2], x[2] + 1.0
    assert t(x) == b0 ** 2 + x[1] ** 2 + b2 ** 2
    assert np.allclose(t.gradient(x), [0.0, 2 * b0 * x[2] + 2 * x[1], 2 * b0 * x[1] + 2 * b2],
                       rtol=1e-15)


def test_empty_arrays():
    with ad.Tape() as t:
        a = t.variables(np.ones((0, 3)), array=True)
        for e, shape in [(a[[]], (0, 3)), (a[:, 1], (0,)), (a[:, [0, 0]], (0, 2)),
                         (np.concatenate([a, a]), (0, 3)), (np.stack([a, a], 1), (0, 2, 3)),
                         (a.at[:, 1].set(2.0), (0, 3)), (np.swapaxes(a, 0, 1), (3, 0))]:
            assert e.shape == shape and e.size == 0
        with pytest.raises(IndexError):
            a[0]
        assert len(t) == 0
        t.outputs(np.concatenate([a.reshape(-1), np.ones(2)]))
    assert np.array_equal(t(np.ones((0, 3))), [1.0, 1.0])
