"""Hostile review 7 of the array features: reproducers of the problems found (each fails on the
commit before its fix)."""
import numpy as np
import pytest

import tapead as ad


# ---- np.einsum with an operand summed over every axis -------------------------------------------
# einsum sums first the indices of one operand only that are not in the output; when that is
# all of an operand's indices the sum is a Var, and einsum called .reshape on it (AttributeError:
# 'tapead.Var' object has no attribute 'reshape'). NumPy accepts these subscripts.
@pytest.mark.parametrize("spec, shapes", [
    ("ij,k->ij", [(2, 3), (3,)]),
    ("i,j->", [(3,), (2,)]),
    ("i,jk->jk", [(3,), (3, 4)]),
    ("ij,kl->", [(2, 3), (2, 3)]),
])
def test_einsum_operand_summed_over_all_its_axes(spec, shapes):
    rng = np.random.default_rng(0)
    ops = [rng.normal(size=s) for s in shapes]

    def f(*xs):
        y = np.einsum(spec, *xs)
        return np.sum(y * y, axis=None) if np.ndim(ops[0]) and "->" in spec and \
            spec.split("->")[1] else y * y

    got = ad.grad(f, argnums=tuple(range(len(ops))))(*ops)
    ref = np.einsum(spec, *ops)
    assert np.allclose(ad.record(f, *ops)(tuple(ops)), np.sum(ref * ref))
    for k, g in enumerate(got):
        num = ad.finite_diff(lambda z: f(*ops[:k], z, *ops[k + 1:]), ops[k])
        assert np.allclose(g, num, atol=1e-5)


def test_einsum_operand_summed_with_a_constant_operand():
    A, c = np.arange(6.0).reshape(2, 3), np.array([1.0, 2.0, 4.0])
    g = ad.grad(lambda a: np.sum(np.einsum("ij,k->ij", a, c) ** 2))(A)
    assert np.allclose(g, 2 * A * c.sum() ** 2)


# ---- a.shape = s: an in-place reshape, as NumPy's ------------------------------------------------
# The setter took any shape: x.shape = (2**40,) on a 4-element Array was accepted, x[2**32 + 1]
# then gave the Var of x[1] (the flat offset truncated to int32: a silently wrong element) and
# x[999999] a Var beyond the tape (value nan); x.shape = (-1,) gave len(x) == -1.
def test_shape_setter_refuses_another_size():
    with ad.Tape() as t:
        x = t.variables(np.arange(4.0) + 10)
        for bad in [(2 ** 40,), (10 ** 6,), (-1,), (-2, -2), (3,), (2 ** 62, 2 ** 62, 0)]:
            with pytest.raises(ValueError, match="reshape"):
                x.shape = bad
            assert x.shape == (4,)
        x.shape = (2, 2)                        # same size: an in-place reshape
        assert x.shape == (2, 2)
        t.outputs([x[1, 0] * 1.0, x[1, 1] * 2.0])
    assert np.allclose(t.jacobian(np.arange(4.0)), [[0, 0, 1, 0], [0, 0, 0, 2]])


# ---- the functional transforms and an f returning a 0-d ad.Array ----------------------------------
# np.einsum("i,i->", a, a), a.reshape(()) and ad.asarray(var) give a 0-d Array. ad.record took it
# as a scalar output, but every transform of §3 checked f's result element by element, found the
# 0-d Array itself (it does not iterate) and raised "TypeError: ad.grad: f must return a number
# ... it returned Array(shape=(), ...)".
X = np.array([1.0, 2.0, 3.0])


@pytest.mark.parametrize("f", [lambda a: np.einsum("i,i->", a, a),
                               lambda a: (a[1:2] * a[0:1]).reshape(()) + np.sum(a * a) - a[0] * a[1],
                               lambda a: ad.asarray(np.sum(a * a))],
                         ids=["einsum", "reshape", "asarray"])
def test_transforms_take_a_0d_array_result(f):
    assert ad.record(f, X)(X) == pytest.approx(14.0)
    assert np.allclose(ad.grad(f)(X), 2 * X)
    v, g = ad.value_and_grad(f)(X)
    assert v == pytest.approx(14.0) and np.allclose(g, 2 * X)
    assert np.allclose(ad.jacobian(f)(X), 2 * X)
    assert np.allclose(ad.hessian(f)(X), 2 * np.eye(3))
    assert np.allclose(ad.vjp(f, X)[1](1.0)[0], 2 * X)
    assert np.allclose(ad.jvp(f, (X,), (X,))[1], 28.0)
    assert np.allclose(ad.hvp(f, (X,), (X,)), 2 * X)
    assert np.allclose(ad.jacobian(lambda a: [f(a), 2 * f(a)])(X), [2 * X, 4 * X])


# ---- errors that say what is wrong ---------------------------------------------------------------
# An Array of more than 32 axes (NumPy allows 64) reached the tape's shape table and came back as
# "ValueError: ad.Array: invalid operand or size passed to the tape"; np.sum / np.max of one of 64
# axes as "TypeError: no implementation found for 'numpy.sum' ..." (the C reduction's
# NotImplemented handed back to NumPy); np.broadcast_to to more elements than a tape holds as the
# same "invalid operand or size" (gathers of that size say "the tape is full").
@pytest.mark.parametrize("nd", [33, 64])
@pytest.mark.parametrize("op", [lambda y: y * 2.0, lambda y: np.sin(y), lambda y: y[..., ::-1],
                                lambda y: np.sum(y, axis=-1), lambda y: np.max(y),
                                lambda y: np.prod(y, axis=0), lambda y: y @ np.ones((4, 1)),
                                lambda y: np.where(y > 1.0, y, 0.0)])
def test_too_many_axes_is_named(nd, op):
    with ad.Tape() as t:
        y = t.variables(np.arange(4.0)).reshape((1,) * (nd - 1) + (4,))
        with pytest.raises(ValueError, match="at most 32 axes"):
            op(y)


@pytest.mark.parametrize("shape", [(2 ** 40, 4), (2 ** 30, 2 ** 30, 4), (2 ** 29, 4)])
def test_broadcast_beyond_the_tape_is_the_tape_limit(shape):
    with ad.Tape() as t:
        x = t.variables(np.arange(4.0))
        with pytest.raises(MemoryError, match="tape is full"):
            np.broadcast_to(x, shape) * 2.0


# ---- NumPy reductions of a scalar Var --------------------------------------------------------------
# An Array reduced to 0-d is a Var (as NumPy gives a scalar), and NumPy code reduces such scalars
# again (np.sum(np.max(x)), np.prod(np.sum(x, axis=0)) of a 1-d x). np.mean took the Var, but
# np.sum, np.prod, np.max and np.min raised "TypeError: numpy.add.reduce is not supported on
# tapead Vars" (NumPy gives the scalar back).
def test_numpy_reductions_of_a_scalar_var():
    x0 = np.array([1.0, 2.0, 3.0])

    def f(x):
        return np.sum(np.prod(x)) * np.max(np.sum(x, axis=0)) + np.min(np.amax(x)) + \
            np.mean(np.sum(x))

    t = ad.record(f, x0)
    assert t(x0) == pytest.approx(6 * 6 + 3 + 6)
    assert np.allclose(t.gradient(x0), [6 * 6 + 6 + 1, 3 * 6 + 6 + 1, 2 * 6 + 6 + 2])
    with ad.Tape() as t:                        # other reductions of a scalar: refused, as before
        v = np.max(t.variables(x0))
        for bad in [lambda: np.sum(v, axis=0), lambda: np.sum(v, initial=1.0),
                    lambda: np.add.reduce(v), lambda: np.sum(v, keepdims=True)]:
            with pytest.raises(TypeError):
                bad()
