"""ad.Array by default: t.variables(array-like) and ad.record(f, x) give ad.Arrays, whose
elements are Vars (csrc/fast_array.h); array=False / arrays=False give object arrays of Var."""
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import tapead as ad


def rosen(x):
    s = 0.0
    for i in range(len(x) - 1):
        s = s + 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
    return s


def test_inputs_are_arrays_and_scalars_stay_vars():
    with ad.Tape() as t:
        a = t.variables(2.0)
        x1, x2 = t.variables([2.0, 1.0])
        B = t.variables(np.arange(6.0).reshape(2, 3))
        O = t.variables(np.ones(2), array=False)
        assert type(a) is ad.Var and type(x1) is ad.Var and type(x2) is ad.Var
        assert type(B) is ad.Array and B.shape == (2, 3) and len(B) == 2
        assert type(O) is np.ndarray and O.dtype == object
        assert [v.index for v in (a, x1, x2)] == [0, 1, 2] and B[1, 2].index == 8
        assert B[-1, -3].index == 6 and B[1][2].index == 8 and B[0, 1] is not B[0, 1]
        assert [[v.index for v in row] for row in B] == [[3, 4, 5], [6, 7, 8]]
        with pytest.raises(IndexError, match="out of bounds"):
            B[2, 0]
        with pytest.raises(IndexError, match="out of bounds"):
            B[0][3]
        t.outputs(x1 * B[1, 2] + a)
    assert t.gradient((1.0, [1.0, 2.0], np.ones((2, 3)), np.ones(2)))[0] == 1.0


def test_record_gives_f_an_array_and_scalar_loops_record_scalar_ops():
    seen = []

    def f(x):
        seen.append(type(x))
        return rosen(x)
    x0 = np.linspace(-1.0, 1.0, 7)
    t = ad.record(f, x0)
    u = ad.record(f, x0, arrays=False)
    assert seen == [ad.Array, np.ndarray]
    assert t.stats()["by_opcode"] == u.stats()["by_opcode"] and len(t) == len(u)
    x = np.linspace(0.5, -0.5, 7)
    assert_array_equal(t.gradient(x), u.gradient(x))
    assert t.dumps(function=False) and t.optimize()(x) == u(x)   # scalar tapes: everything
    assert_array_equal(t.gradient(np.stack([x, x0]), batch=True)[0], u.gradient(x))


def test_values_at_recording_of_block_ops_with_constant_operands():
    """The values of a block op recorded with a constant operand (a number or an ndarray) are
    its values: backward() at the recorded point agrees with a replay there."""
    y = np.array([[1.0, -2.0], [0.5, 3.0]])
    with ad.Tape() as t:
        W = t.variables(np.zeros((2, 2)))
        a = W - 2.0
        b = (a - y) ** 2.0
        s = np.sum(b)
        t.outputs(s)
    assert_array_equal(a.value, np.full((2, 2), -2.0))
    assert_array_equal(b.value, (-2.0 - y) ** 2)
    s.backward()
    assert_array_equal(W.grad, t.gradient(np.zeros((2, 2))))
    assert_array_equal(W.grad, 2.0 * (-2.0 - y))


def test_value_and_grad_of_array_code_at_the_recorded_point():
    rng = np.random.default_rng(0)
    X, w0 = rng.normal(size=(5, 3)), rng.normal(size=3)

    def loss(w, b):
        return np.sum((X @ w + b - 1.0) ** 2)
    y, (gw, gb) = ad.value_and_grad(loss, argnums=(0, 1))(w0, 0.5)
    r = X @ w0 + 0.5 - 1.0
    assert_allclose(y, np.sum(r ** 2), rtol=1e-14)
    assert_allclose(gw, 2 * X.T @ r, rtol=1e-13)
    assert_allclose(gb, 2 * r.sum(), rtol=1e-13)
    assert_allclose(ad.grad(loss)(w0, 0.5), gw, rtol=1e-15)


def test_value_and_grad_when_the_output_is_an_early_input():
    """The output is variable 0 (an input): every later input's gradient is 0."""
    y, (ga, gb) = ad.value_and_grad(lambda a, b: a[0], argnums=(0, 1))(np.ones(3), np.ones(2))
    assert y == 1.0
    assert_array_equal(ga, [1.0, 0.0, 0.0])
    assert_array_equal(gb, [0.0, 0.0])


def test_tolist_gives_the_element_vars_nested_as_numpy():
    with ad.Tape() as e:
        assert e.variables(np.zeros((0, 2))).tolist() == []
    with ad.Tape() as t:
        a = t.variables(np.arange(6.0).reshape(2, 3))
        rows = a.tolist()
        assert [[v.index for v in r] for r in rows] == [[0, 1, 2], [3, 4, 5]]
        t.outputs(rows[1][2] * rows[0][1])
    assert t.gradient(np.arange(6.0).reshape(2, 3) + 1.0).tolist() == [[0, 6, 0], [0, 0, 2]]
    with ad.Tape() as s:
        b = s.variables(np.array([2.5]), array=True).reshape(())
        assert isinstance(b.tolist(), ad.Var) and b.tolist().index == 0
