"""Second order: tape.hvp, tape.hessian, ad.hessian and ad.hvp against independent
oracles.

- scipy.optimize.rosen_hess / rosen_hess_prod at random points on one replayed tape of the
  Rosenbrock Python loop;
- the seed's f against central differences of its closed-form gradient (tests/helpers.py);
- exact symmetry, hessian == symmetrised hvp of the unit directions, hvp == hessian @ v (one
  direction and k at once), vector outputs with weights, inputs in pieces, the functional API;
- hypothesis-generated programs against central differences of the reverse gradient;
- every op of the op list (tapead._core.Op) with a second-order case, against mpmath's exact
  derivatives and against central differences of tape.gradient; a test fails when an op has none;
- the second derivative of a Horner polynomial ("poly") against its closed form.
"""
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import tapead as ad
from tapead.hessian import Plan

from helpers import poly, program_steps, record_program, rosen_loop, run_program
from helpers import seed_f_vec as seed_f
from helpers import seed_grad_vec as seed_grad
from op_cases import _mp, case_params, context, operands, recorded_case, table, table_checks

RTOL = 1e-13          # AD against a closed form or an exact (mpmath) oracle
FD_RTOL = 1e-7        # AD against Richardson-extrapolated central differences


# ---- shared problems and oracles --------------------------------------------------------------
def richardson_jacobian(g, x, h=1e-3):
    """Jacobian of g (R^m -> R^k) by central differences, Richardson-extrapolated over h, h/2
    (error O(h^4)). Returns (J of shape (k, m), estimated error: the h vs h/2 disagreement)."""
    x = np.asarray(x, dtype=float)
    cols, errs = [], []
    for j in range(x.size):
        def cd(s):
            e = np.zeros_like(x)
            e.flat[j] = s
            return (np.asarray(g(x + e), float) - np.asarray(g(x - e), float)) / (2 * s)
        hj = h * max(1.0, abs(x.flat[j]))
        d1, d2, d4 = cd(hj), cd(hj / 2), cd(hj / 4)
        r1, r2 = (4 * d2 - d1) / 3, (4 * d4 - d2) / 3
        cols.append(r2.ravel())
        errs.append(np.abs(r2 - r1).max())
    return np.stack(cols, axis=1), max(errs)


# ---- scipy's Rosenbrock Hessian, one replayed tape --------------------------------------------
def test_rosenbrock_hessian_and_hvp_against_scipy_on_one_replayed_tape():
    opt = pytest.importorskip("scipy.optimize")
    n = 12
    rng = np.random.default_rng(0)
    tape = ad.record(rosen_loop, np.zeros(n))
    ops = len(tape)
    band = np.abs(np.subtract.outer(np.arange(n), np.arange(n))) <= 1
    for _ in range(10):
        x = rng.uniform(-2.0, 2.0, n)
        v = rng.normal(size=n)
        H, want = tape.hessian(x), opt.rosen_hess(x)
        scale = np.abs(want).max()
        assert H.shape == (n, n)
        assert_allclose(H, want, rtol=RTOL, atol=1e-14 * scale)
        assert np.all(H[~band] == 0.0)                      # structural zeros are exact
        assert_array_equal(H, H.T)
        assert_allclose(tape.hvp(x, v), opt.rosen_hess_prod(x, v), rtol=RTOL,
                        atol=1e-14 * scale * np.abs(v).max())
        assert_allclose(tape.gradient(x), opt.rosen_der(x), rtol=RTOL, atol=1e-12)
    assert len(tape) == ops and tape.stats()["rerecords"] == 0


def test_rosenbrock_second_order_sweep_counts():
    """hvp with k directions adds k visits per operation to "second_order"; the Hessian one per
    colour of its sparsity pattern: 3 for Rosenbrock's tridiagonal Hessian, not n."""
    n = 7
    tape = ad.record(rosen_loop, np.zeros(n))
    ops = len(tape)
    s0 = tape.stats()["swept"]
    tape.hvp(np.ones(n), np.ones(n))
    s1 = tape.stats()["swept"]
    assert s1["second_order"] - s0["second_order"] == ops
    tape.hvp(np.ones(n), np.ones((n, 3)))
    s2 = tape.stats()["swept"]
    assert s2["second_order"] - s1["second_order"] == 3 * ops
    tape.hessian(np.ones(n))                    # a first Hessian: dense, n directions
    s3 = tape.stats()["swept"]
    assert s3["second_order"] - s2["second_order"] == n * ops
    tape.hessian(np.ones(n))                    # then one per colour of the pattern
    s3b = tape.stats()["swept"]
    assert s3b["second_order"] - s3["second_order"] == 3 * ops
    s3 = s3b
    assert s3["adjoint"] == s0["adjoint"]       # no first-order adjoint sweep on the way


# ---- the seed's f --------------------------------------------------------------------------
@pytest.mark.parametrize("x", [(2.0, 1.0), (3.0, 0.5), (1.5, 0.8), (2.5, 1.1)])
def test_seed_hessian_against_central_differences_of_closed_form_gradient(x):
    tape = ad.record(seed_f, np.array([2.0, 1.0]))        # one tape, replayed at each x
    H = tape.hessian(np.array(x))
    fd, err = richardson_jacobian(seed_grad, x)
    assert err < 1e-9
    assert_allclose(H, fd, rtol=1e-9, atol=1e-9)
    assert_array_equal(H, H.T)
    v = np.array([0.3, -1.7])
    assert_allclose(tape.hvp(np.array(x), v), fd @ v, rtol=1e-9, atol=1e-9)


def test_seed_hessian_imperative_tape():
    with ad.Tape() as t:
        x1, x2 = t.variables([2.0, 1.0])
        t.outputs(x1 * ad.sqrt(ad.log(x1 / ad.sin(x2 ** 2))))
    fd, _ = richardson_jacobian(seed_grad, (2.0, 1.0))
    assert_allclose(t.hessian(), fd, rtol=1e-9, atol=1e-9)          # x=None: the recorded point
    assert_allclose(t.hessian([3.0, 0.5]), richardson_jacobian(seed_grad, (3.0, 0.5))[0],
                    rtol=1e-9, atol=1e-9)


# ---- symmetry, hvp against hessian, k directions -------------------------------------------
def mixed(x):
    """A dense, asymmetric-looking scalar function with reuse of intermediates."""
    u = ad.sin(x[0] * x[1]) + x[2] ** 3 / (1.0 + x[0] ** 2)
    w = ad.exp(0.3 * u) * ad.atan(x[1] - x[2]) + ad.log1p(x[3] ** 2) * u
    return w * ad.sqrt(2.0 + ad.cos(x[0] + x[3])) + ad.hypot(x[1], x[3]) * x[2]


@pytest.mark.parametrize("seed", range(4))
def test_hessian_is_exactly_symmetric_and_is_the_symmetrised_hvp(seed):
    rng = np.random.default_rng(seed)
    tape = ad.record(mixed, rng.normal(size=4))
    x = rng.normal(size=4)
    H = tape.hessian(x)
    assert_array_equal(H, H.T)                              # symmetric to the last bit
    R = tape.hvp(x, np.eye(4))                              # column j = H e_j, unsymmetrised
    assert_array_equal(H, (R + R.T) * 0.5)
    fd, err = richardson_jacobian(tape.gradient, x)
    assert err < 1e-8
    assert_allclose(H, fd, rtol=FD_RTOL, atol=1e-8 * max(1.0, np.abs(H).max()))


@pytest.mark.parametrize("seed", range(4))
def test_hvp_equals_hessian_times_v_one_and_k_directions(seed):
    rng = np.random.default_rng(10 + seed)
    tape = ad.record(mixed, rng.normal(size=4))
    x = rng.normal(size=4)
    H = tape.hessian(x)
    scale = max(1.0, np.abs(H).max())
    v = rng.normal(size=4)
    hv = tape.hvp(x, v)
    assert hv.shape == (4,)
    assert_allclose(hv, H @ v, rtol=RTOL, atol=1e-14 * scale)
    V = rng.normal(size=(4, 5))
    HV = tape.hvp(x, V)
    assert HV.shape == (4, 5)
    assert_allclose(HV, H @ V, rtol=RTOL, atol=1e-14 * scale)
    for j in range(5):                                      # k directions in one sweep = k sweeps
        assert_allclose(HV[:, j], tape.hvp(x, V[:, j]), rtol=1e-15, atol=0)
    # x=None replays at the last point swept
    assert_array_equal(tape.hvp(None, v), hv)


def test_hvp_of_scalar_input_and_two_dimensional_input():
    t = ad.record(lambda z: z * z * z + ad.sin(z), 2.0)
    H = t.hessian(0.5)
    assert isinstance(H, float)
    assert_allclose(H, 6 * 0.5 - math.sin(0.5), rtol=RTOL)
    assert_allclose(t.hvp(0.5, 2.0), 2 * H, rtol=RTOL)
    assert_allclose(t.hvp(0.5, [1.0, -3.0]), [H, -3 * H], rtol=RTOL)

    X0 = np.array([[0.3, -0.4], [1.2, 0.7]])
    t2 = ad.record(lambda X: ad.sum((X ** 3).ravel()) + X[0, 1] * X[1, 0] * X[1, 1], X0)
    H2 = t2.hessian(X0)
    assert H2.shape == (2, 2, 2, 2)
    want = np.zeros((4, 4))
    want[np.diag_indices(4)] = 6 * X0.ravel()
    a, b, c = X0[0, 1], X0[1, 0], X0[1, 1]
    want[1, 2] = want[2, 1] = c
    want[1, 3] = want[3, 1] = b
    want[2, 3] = want[3, 2] = a
    assert_allclose(H2.reshape(4, 4), want, rtol=RTOL, atol=1e-15)
    V = np.arange(4.0).reshape(2, 2)
    assert_allclose(t2.hvp(X0, V), (want @ V.ravel()).reshape(2, 2), rtol=RTOL)
    assert t2.hvp(X0, np.ones((2, 2, 3))).shape == (2, 2, 3)


def test_tapes_without_operations():
    t = ad.record(lambda x: x[0], np.array([1.0, 2.0]))     # an input as the output
    assert len(t) == 0
    assert_array_equal(t.hessian(), np.zeros((2, 2)))
    assert_array_equal(t.hvp(None, np.ones(2)), np.zeros(2))
    t = ad.record(lambda x: 5.0, np.array([1.0, 2.0]))      # a constant output
    assert_array_equal(t.hessian(), np.zeros((2, 2)))


# ---- vector outputs: the Hessian of w·y ------------------------------------------------------
def vec_f(x):
    return np.array([x[0] * x[1] * x[2], ad.sin(x[0]) * ad.exp(x[1]), x[2] ** 3 - x[0] / x[1],
                     ad.sqrt(x[0] ** 2 + x[1] ** 2 + x[2] ** 2)])


def test_vector_output_hessian_and_hvp_with_weights():
    rng = np.random.default_rng(3)
    x0 = np.array([0.7, 1.3, -0.4])
    tape = ad.record(vec_f, x0)
    w = rng.normal(size=4)
    H = tape.hessian(x0, w=w)
    assert H.shape == (3, 3)
    assert_array_equal(H, H.T)
    # w·y Hessian = sum of weighted per-output Hessians (each from a scalar tape)
    per = [ad.record(lambda x, o=o: vec_f(x)[o], x0).hessian(x0) for o in range(4)]
    assert_allclose(H, sum(wo * Ho for wo, Ho in zip(w, per)), rtol=1e-13, atol=1e-13)
    fd, err = richardson_jacobian(lambda x: tape.vjp(x, w)[1], x0)
    assert err < 1e-8
    assert_allclose(H, fd, rtol=FD_RTOL, atol=1e-8)
    v = rng.normal(size=3)
    assert_allclose(tape.hvp(x0, v, w=w), H @ v, rtol=RTOL, atol=1e-14)
    # a one-hot weight picks one output's Hessian
    assert_allclose(tape.hessian(x0, w=np.eye(4)[2]), per[2], rtol=RTOL, atol=1e-15)


def test_vector_output_needs_weights_of_the_right_shape():
    tape = ad.record(vec_f, np.array([0.7, 1.3, -0.4]))
    with pytest.raises(ValueError, match="w"):
        tape.hessian()
    with pytest.raises(ValueError, match="w"):
        tape.hvp(None, np.ones(3))
    with pytest.raises(ValueError, match=r"\(4,\)"):
        tape.hessian(None, w=np.ones(3))
    with pytest.raises(ValueError):
        tape.hvp(None, np.ones(2), w=np.ones(4))             # v of the wrong shape


def test_matrix_output_weights_and_constant_and_input_outputs():
    x0 = np.array([0.5, -1.5])
    tape = ad.record(lambda x: np.array([[x[0], 3.0], [x[0] * x[1] ** 2, ad.cos(x[1])]]), x0)
    W = np.array([[2.0, 5.0], [-1.0, 0.5]])
    H = tape.hessian(x0, w=W)
    a, b = x0
    want = -1.0 * np.array([[0.0, 2 * b], [2 * b, 2 * a]]) + 0.5 * np.array(
        [[0.0, 0.0], [0.0, -math.cos(b)]])
    assert_allclose(H, want, rtol=RTOL, atol=1e-15)


# ---- inputs in pieces: nested tuples of blocks ------------------------------------------------
def pieces_f(a, b, c):
    return (ad.sin(a[0] * b) + a[1] ** 3 * b ** 2 + ad.exp(a[0] * a[1])
            + ad.dot(c.ravel(), a[[0, 1, 0, 1]]) * b)


def flat_f(z):
    return pieces_f(z[:2], z[2], z[3:].reshape(2, 2))


def test_pieces_give_nested_tuples_with_the_right_blocks():
    a, b, c = np.array([0.3, -0.7]), 1.1, np.array([[0.5, 1.5], [-2.0, 0.25]])
    tape = ad.record(pieces_f, a, b, c)
    z = np.concatenate([a, [b], c.ravel()])
    full = ad.record(flat_f, z).hessian(z)
    H = tape.hessian()
    shapes = [(2,), (), (2, 2)]
    sl = [slice(0, 2), slice(2, 3), slice(3, 7)]
    assert isinstance(H, tuple) and len(H) == 3
    for i in range(3):
        assert isinstance(H[i], tuple) and len(H[i]) == 3
        for j in range(3):
            blk = H[i][j]
            assert np.shape(blk) == shapes[i] + shapes[j], (i, j)
            assert_allclose(np.reshape(blk, (sl[i].stop - sl[i].start, -1)), full[sl[i], sl[j]],
                            rtol=1e-14, atol=1e-15)
            # H[i][j] is the transpose of H[j][i], bitwise
            bi = np.reshape(blk, (sl[i].stop - sl[i].start, -1))
            bj = np.reshape(H[j][i], (sl[j].stop - sl[j].start, -1))
            assert_array_equal(bi, bj.T)
    assert isinstance(H[1][1], float)
    # hvp takes and returns pieces; k directions give a trailing axis on every piece
    va, vb, vc = np.array([1.0, -2.0]), 0.5, np.array([[0.0, 1.0], [2.0, -1.0]])
    hv = tape.hvp(None, (va, vb, vc))
    want = full @ np.concatenate([va, [vb], vc.ravel()])
    assert isinstance(hv, tuple) and len(hv) == 3
    assert_allclose(hv[0], want[:2], rtol=1e-13, atol=1e-14)
    assert_allclose(hv[1], want[2], rtol=1e-13, atol=1e-14)
    assert_allclose(hv[2], want[3:].reshape(2, 2), rtol=1e-13, atol=1e-14)
    hvk = tape.hvp(None, (np.stack([va, va], -1), np.array([vb, vb]), np.stack([vc, vc], -1)))
    assert [np.shape(p) for p in hvk] == [(2, 2), (2,), (2, 2, 2)]
    assert_allclose(hvk[2][..., 1], hv[2], rtol=1e-15)


# ---- functional API, JAX conventions -----------------------------------------------------
def two_args(a, b):
    return ad.sin(a[0] * b) + a[1] ** 3 * b ** 2 + ad.exp(a[0] * a[1])


def test_ad_hessian_argnums_conventions():
    a, b = np.array([0.3, -0.7]), 1.1
    full = ad.record(lambda z: two_args(z[:2], z[2]), np.array([0.3, -0.7, 1.1])).hessian()
    H0 = ad.hessian(two_args)(a, b)                         # argnums=0: an array
    assert isinstance(H0, np.ndarray) and H0.shape == (2, 2)
    assert_allclose(H0, full[:2, :2], rtol=1e-14)
    H1 = ad.hessian(two_args, argnums=1)(a, b)              # a scalar argument: a float
    assert isinstance(H1, float)
    assert_allclose(H1, full[2, 2], rtol=1e-14)
    assert_allclose(ad.hessian(two_args, argnums=-1)(a, b), H1, rtol=0)
    Ht = ad.hessian(two_args, argnums=(0, 1))(a, b)         # a tuple: nested tuple of blocks
    assert len(Ht) == 2 and all(len(r) == 2 for r in Ht)
    assert_allclose(Ht[0][0], full[:2, :2], rtol=1e-14)
    assert_allclose(Ht[0][1], full[:2, 2], rtol=1e-14)
    assert_allclose(Ht[1][0], full[2, :2], rtol=1e-14)
    assert_allclose(Ht[1][1], full[2, 2], rtol=1e-14)
    H1t = ad.hessian(two_args, argnums=(0,))(a, b)          # one-element tuple: ((H,),)
    assert isinstance(H1t, tuple) and len(H1t) == 1 and len(H1t[0]) == 1
    assert_allclose(H1t[0][0], H0, rtol=0)
    with pytest.raises(ValueError):
        ad.hessian(two_args, argnums=2)(a, b)


def test_ad_hvp_conventions():
    a, b = np.array([0.3, -0.7]), 1.1
    va, vb = np.array([1.0, 2.0]), -0.5
    full = ad.record(lambda z: two_args(z[:2], z[2]), np.array([0.3, -0.7, 1.1])).hessian()
    r = ad.hvp(lambda x: two_args(x, b), (a,), (va,))       # one primal: shaped like it
    assert isinstance(r, np.ndarray) and r.shape == (2,)
    assert_allclose(r, full[:2, :2] @ va, rtol=1e-14)
    r2 = ad.hvp(two_args, (a, b), (va, vb))                 # several: a tuple, one per primal
    want = full @ np.array([va[0], va[1], vb])
    assert isinstance(r2, tuple) and len(r2) == 2
    assert_allclose(r2[0], want[:2], rtol=1e-14)
    assert_allclose(r2[1], want[2], rtol=1e-14)
    with pytest.raises(ValueError):
        ad.hvp(two_args, (a, b), (va,))
    # scalar primal, list primal
    assert_allclose(ad.hvp(lambda z: z ** 4, (2.0,), (3.0,)), 12 * 4.0 * 3.0, rtol=RTOL)


# ---- poly: a Horner polynomial --------------------------------------------------------------
@pytest.mark.parametrize("z", [0.0, 0.7, -1.3, 2.0])
def test_poly_second_derivative_in_z(z):
    a = np.array([0.5, -2.0, 1.5, 3.0, -0.25, 0.125])
    tape = ad.record(lambda zz: poly(a, zz), 1.0)
    want = sum(k * (k - 1) * a[k] * z ** (k - 2) for k in range(2, len(a)))
    assert_allclose(tape.hessian(z), want, rtol=RTOL, atol=1e-15)
    # the coefficients active too: d2p/dz2, d2p/(da_k dz) = k z^(k-1), d2p/da2 = 0
    t2 = ad.record(poly, a, 1.0)
    H = t2.hessian((a, z))
    assert_allclose(H[1][1], want, rtol=RTOL, atol=1e-15)
    mix = np.array([k * z ** (k - 1) if k else 0.0 for k in range(len(a))])
    assert_allclose(H[0][1], mix, rtol=RTOL, atol=1e-15)
    assert_array_equal(H[0][0], np.zeros((len(a), len(a))))


# ---- every op: mpmath's exact derivatives and central differences of tape.gradient --------------
SECOND = table("second")         # op -> its second-order cases (tests/op_cases.py)


def outer(z):
    """z -> z + 0.3 z^2: a nonzero adjoint tangent arrives at the op's result."""
    return z + 0.3 * z * z


def op_program(case, point):
    return lambda x: outer(case.f(*operands(point, x)))


_, OP_IDS, NO_RULE_IDS = case_params(SECOND)
test_every_op_has_a_second_order_case, test_op_case_records_its_op = \
    table_checks(SECOND, "second-order", op_program)


def _points(point, rng):
    """x = 0, where the tape was recorded (fresh), and a nearby x (the tape replayed)."""
    m = len(point)
    return [(np.zeros(m), True), (0.1 * rng.uniform(-1.0, 1.0, m), False)]


@pytest.mark.parametrize("op, k, point", OP_IDS)
def test_op_hessian_against_mpmath(op, k, point):
    mp = _mp()
    case, m, tape = recorded_case(SECOND, op_program, op, k, point)
    rng = np.random.default_rng(int(op) * 10 + k)
    with mp.workdps(40):
        def F(*xs):
            return outer(case.mp(*operands(point, xs)))
        for x, fresh in _points(point, rng):
            msg = context(op, f"case {k}", operands(point, x), fresh)
            H = tape.hessian(x)
            H = np.reshape(H, (m, m))
            want = np.empty((m, m))
            for i in range(m):
                for j in range(i, m):
                    order = [0] * m
                    order[i] += 1
                    order[j] += 1
                    want[i, j] = want[j, i] = float(mp.diff(F, tuple(float(v) for v in x),
                                                            tuple(order)))
            scale = max(1.0, np.abs(want).max())
            assert_allclose(H, want, rtol=1e-12, atol=1e-13 * scale, err_msg=msg)
            assert_array_equal(H, H.T, err_msg=msg)
            v = rng.normal(size=m)
            assert_allclose(np.reshape(tape.hvp(x, v), m), want @ v, rtol=1e-12,
                            atol=1e-13 * scale * np.abs(v).max(), err_msg=msg)


@pytest.mark.parametrize("op, k, point", OP_IDS)
def test_op_hessian_against_central_differences_of_gradient(op, k, point):
    case, m, tape = recorded_case(SECOND, op_program, op, k, point)
    rng = np.random.default_rng(int(op) * 10 + k + 1)
    for x, fresh in _points(point, rng):
        msg = context(op, f"case {k}", operands(point, x), fresh)
        H = np.reshape(tape.hessian(x), (m, m))
        fd, err = richardson_jacobian(lambda u: np.reshape(tape.gradient(u), m), x, h=1e-3)
        scale = max(1.0, np.abs(fd).max())
        assert err < 1e-7 * scale, msg
        assert_allclose(H, fd, rtol=FD_RTOL, atol=1e-8 * scale, err_msg=msg)


@pytest.mark.parametrize("op, k, point", NO_RULE_IDS)
def test_op_without_second_order_rule_raises_and_the_tape_stays_usable(op, k, point):
    case, m, tape = recorded_case(SECOND, op_program, op, k, point)
    x = np.full(m, 0.05)
    with pytest.raises(case.raises, match="primitive"):
        tape.hessian(x)
    with pytest.raises(case.raises, match="primitive"):
        tape.hvp(x, np.ones(m))
    g = np.reshape(tape.gradient(x), m)                     # first order still works
    fd, err = richardson_jacobian(lambda u: np.atleast_1d(tape.forward(u)), x)
    assert_allclose(g, fd.ravel(), rtol=1e-8, atol=1e-9,
                    err_msg=context(op, f"case {k}", operands(point, x), False))


# ---- branch guards: replays across a branch -----------------------------------------------------
def branchy(x):
    if x[0] > x[1]:
        return x[0] ** 3 * x[1]
    return ad.sin(x[0]) * x[1] ** 2


def branchy_hessian(x):
    a, b = x
    if a > b:
        return np.array([[6 * a * b, 3 * a * a], [3 * a * a, 0.0]])
    return np.array([[-math.sin(a) * b * b, 2 * b * math.cos(a)],
                     [2 * b * math.cos(a), 2 * math.sin(a)]])


def test_second_order_across_a_branch_rerecords_a_recorded_function():
    tape = ad.record(branchy, np.array([2.0, 1.0]))
    v = np.array([0.3, -1.1])
    for x in ([2.0, 1.0], [0.5, 1.0], [3.0, -1.0], [-1.0, 2.0]):
        x = np.array(x)
        H = branchy_hessian(x)
        assert_allclose(tape.hessian(x), H, rtol=RTOL, atol=1e-15)
        assert_allclose(tape.hvp(x, v), H @ v, rtol=RTOL, atol=1e-15)
    assert tape.stats()["rerecords"] == 3          # B, A, B: each switch re-records


def test_second_order_across_a_branch_raises_for_an_imperative_tape():
    with ad.Tape() as t:
        x = t.variables([2.0, 1.0])
        t.outputs(x[0] ** 3 * x[1] if x[0] > x[1] else ad.sin(x[0]) * x[1] ** 2)
    assert_allclose(t.hessian([3.0, 1.0]), branchy_hessian([3.0, 1.0]), rtol=RTOL)
    with pytest.raises(ad.BranchChanged, match=">"):
        t.hessian([0.5, 1.0])
    with pytest.raises(ad.BranchChanged):
        t.hvp([0.5, 1.0], [1.0, 0.0])
    assert_allclose(t.hvp([3.0, 1.0], [1.0, 0.0]), branchy_hessian([3.0, 1.0])[:, 0], rtol=RTOL)


def test_where_of_a_comparison_is_valid_on_both_sides_at_second_order():
    t = ad.record(lambda x: ad.where(x > 0, x ** 3, -x ** 2), 1.0)
    assert t.hessian(1.0) == 6.0 and t.hessian(-1.0) == -2.0 and t.hessian(2.0) == 12.0
    assert t.hvp(-1.0, 3.0) == -6.0
    assert t.stats()["rerecords"] == 0


# ---- conventions at non-smooth points stay NaN-free at second order -------------------------
@pytest.mark.parametrize("f, x, want", [
    (lambda x: x ** 3, 0.0, 0.0),                           # whole power at 0
    (lambda x: x ** 2, 0.0, 2.0),
    (lambda x: abs(x), 0.0, 0.0),                           # abs'(0) = 0, abs'' = 0
    (lambda x: abs(x) * x, 0.0, 0.0),
    (lambda x: ad.sign(x) * x * x, 0.0, 0.0),
    (lambda x: ad.where(x * 0.0, ad.sqrt(x), x * x), 0.0, 2.0),   # the NaN side is not taken
    (lambda x: ad.hypot(x, 0.0 * x), 0.0, 0.0),             # 0 at the origin
    (lambda x: ad.atan2(x, 0.0 * x), 0.0, 0.0),
])
def test_second_order_conventions_are_nan_free(f, x, want):
    tape = ad.record(f, x)
    H = tape.hessian(x)
    assert H == want
    assert tape.hvp(x, 1.0) == want


def test_maximum_and_minimum_tie_split_the_second_derivative_half_half():
    # max(x^2, y^2) at a tie: half of each operand's Hessian (as the first derivative splits)
    t = ad.record(lambda x, y: ad.maximum(x * x, y * y), 1.0, -1.0)
    assert t.hessian() == ((1.0, 0.0), (0.0, 1.0))
    t = ad.record(lambda x, y: ad.minimum(x ** 3, 2.0 * y), 1.0, 0.5)
    assert t.hessian() == ((3.0, 0.0), (0.0, 0.0))


def test_zero_tangent_never_meets_an_infinite_second_partial():
    # sqrt''(0) = -inf, but x does not move along v = (0, 1): H v has no NaN
    t = ad.record(lambda x, y: ad.sqrt(x) + y * y, 0.0, 1.0)
    assert t.hvp((0.0, 1.0), (0.0, 1.0)) == (0.0, 2.0)


# ---- hypothesis: random programs against central differences of the reverse gradient -------------
try:
    from hypothesis import HealthCheck, assume, given, settings
    from hypothesis import strategies as st
except ImportError:                                        # only the test below needs it
    st = None

UNARY = {      # total, smooth on the reals, moderate growth
    "sin": ad.sin, "cos": ad.cos, "tanh": ad.tanh, "atan": ad.atan, "asinh": ad.asinh,
    "erf": ad.erf, "neg": lambda u: -u, "sq": ad.square,
    "sqrt1": lambda u: ad.sqrt(u * u + 1.0), "log_sq1": lambda u: ad.log(u * u + 1.0),
    "exp_tanh": lambda u: ad.exp(ad.tanh(u)), "cbrt_sq": lambda u: ad.cbrt(u * u + 0.5),
    "asin_tanh": lambda u: ad.asin(0.9 * ad.tanh(u)), "acosh": lambda u: ad.acosh(u * u + 1.5),
    "pow_c": lambda u: (u * u + 1.0) ** 0.75, "rpow": lambda u: 1.5 ** ad.sin(u),
    "cube": lambda u: u ** 3, "log10": lambda u: ad.log10(ad.exp(ad.sin(u)) + 1.0),
}


def run(prog, x):
    """Run a program (m inputs, steps, output picks) on Vars or floats (helpers.run_program)."""
    return run_program(prog, x, UNARY)


def _random_program_test(m, body, outs, xs, seed):
    prog, x, tape = record_program(m, body, outs, xs, UNARY)
    rng = np.random.default_rng(seed)
    w = rng.normal(size=len(outs))
    H = tape.hessian(x, w=w)
    assert H.shape == (m, m)
    assert_array_equal(H, H.T)
    fd, err = richardson_jacobian(lambda u: tape.vjp(u, w)[1], x, h=2e-3)
    scale = max(1.0, np.abs(fd).max())
    assume(err < 1e-8 * scale)                              # the numeric oracle converged
    assert_allclose(H, fd, rtol=1e-6, atol=1e-7 * scale)
    V = rng.normal(size=(m, 3))
    assert_allclose(tape.hvp(x, V, w=w), H @ V, rtol=1e-12, atol=1e-12 * scale)


if st is not None:
    _steps = program_steps(UNARY)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.integers(1, 4), _steps, st.lists(st.integers(0, 999), min_size=1, max_size=3),
           st.lists(st.floats(-1.5, 1.5), min_size=4, max_size=4), st.integers(0, 2 ** 31))
    def test_random_programs_hessian_against_central_differences(m, body, outs, xs, seed):
        """Hessian of w·y of random programs = central differences of the reverse gradient."""
        _random_program_test(m, body, outs, xs, seed)
else:
    @pytest.mark.skip(reason="needs hypothesis")
    def test_random_programs_hessian_against_central_differences():
        pass


# ---- the compressed Hessian: one direction per colour of the sparsity pattern ---------------
def banded(x):
    """A pentadiagonal Hessian (couplings to i+1 and i+2), plus one dense coupling of x0, x_last."""
    s = x[0] * x[-1]
    for i in range(len(x) - 2):
        s = s + ad.sin(x[i] * x[i + 1]) + (x[i] - x[i + 2]) ** 2 + ad.exp(0.1 * x[i + 2])
    return s


@pytest.mark.parametrize("f, n", [(rosen_loop, 12), (banded, 15)])
def test_compressed_hessian_equals_the_dense_one(f, n):
    rng = np.random.default_rng(n)
    tape = ad.record(f, rng.uniform(-1, 1, n))
    for _ in range(3):
        x = rng.uniform(-1, 1, n)
        H = tape.hessian(x)                          # dense at first, then compressed
        dense = tape.hvp(x, np.eye(n))               # every column, uncompressed
        assert_allclose(H, (dense + dense.T) / 2, rtol=1e-13, atol=1e-13)
        assert np.array_equal(H, H.T)
    colours = tape._rec.colouring.p                  # the plan (tapead/hessian.py)
    assert colours < n                               # it did compress


def test_hessian_of_a_dense_function_is_not_compressed():
    tape = ad.record(lambda x: ad.exp(ad.sum(list(x))) * x[0], np.ones(6))
    tape.hessian(np.ones(6))
    H = tape.hessian(np.ones(6))
    assert tape._rec.colouring is Plan.DENSE
    assert_allclose(H, tape.hvp(np.ones(6), np.eye(6)), rtol=1e-14)



# ---- check_grads(order=2): the Hessian against differences of the checked gradient -----------
@pytest.mark.parametrize("f, args", [
    (lambda x: ad.sin(x[0]) * x[1] ** 3 + ad.exp(x[0] * x[1]), (np.array([0.3, 0.7]),)),
    (lambda a, b: ad.atan2(a, b) * ad.log1p(a * a) + ad.hypot(a, b) ** 3, (0.4, 1.3)),
    (lambda x: np.array([x[0] * x[1], ad.sin(x[0]) / x[1]]), (np.array([0.3, 0.7]),)),
    (lambda a, b: a[0] * b ** 2 + ad.cos(a[1]) * ad.tanh(b), (np.array([0.3, 0.7]), 1.1)),
], ids=["scalar", "two-args", "vector-output", "pieces"])
def test_check_grads_order_two(f, args):
    ad.check_grads(f, args, order=2)


def test_check_grads_order_two_refuses_what_it_cannot_check():
    with pytest.raises(ValueError, match="order"):
        ad.check_grads(lambda x: x * x, (1.0,), order=3)
    p = ad.primitive(lambda x: x ** 3, jvp=lambda x, v: 3 * x[0] ** 2 * v[0],
                     vjp=lambda x, w: (3 * x[0] ** 2 * w,))
    ad.check_grads(lambda x: p(x), (0.5,))                      # first order: fine
    with pytest.raises(TypeError, match="second-order"):
        ad.check_grads(lambda x: p(x), (0.5,), order=2)
