"""Derivatives against independent oracles: closed forms, scipy, linear algebra identities and
central differences, in both modes."""
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

import tapead as ad

from helpers import rosen_loop, seed_f, seed_grad


# ---- the seed's function (seed_f, seed_grad: helpers) ------------------------------------------
def seed_value(x1, x2):
    return x1 * math.sqrt(math.log(x1 / math.sin(x2 ** 2)))


SEED_POINTS = [(2.0, 1.0), (3.0, 0.5), (2.5, 1.1), (1.5, 0.7), (10.0, 1.7), (1.2, 0.3),
               (7.0, 1.25)]


def test_seed_function_imperative_both_modes():
    with ad.Tape() as t:
        x1, x2 = t.variables([2.0, 1.0])
        y = seed_f(x1, x2)
        t.outputs(y)
    assert (x1.index, x2.index) == (0, 1)
    assert t.stats()["by_opcode"] == {"square": 1, "sin": 1, "div": 1, "log": 1, "sqrt": 1,
                                      "mul": 1}
    y.backward()
    assert_allclose([x1.grad, x2.grad], seed_grad(2.0, 1.0), rtol=1e-13)
    for p in SEED_POINTS:
        g = seed_grad(*p)
        assert_allclose(t(p), seed_value(*p), rtol=1e-13)
        assert_allclose(t.gradient(p), g, rtol=1e-13)
        assert_allclose(t.jacobian(p, mode="reverse"), g, rtol=1e-13)
        assert_allclose(t.jacobian(p, mode="forward"), g, rtol=1e-13)
        # one tangent sweep per input direction, as in the seed's forward tangent trace
        assert_allclose([t.jvp(p, [1.0, 0.0])[1], t.jvp(p, [0.0, 1.0])[1]], g, rtol=1e-13)


@pytest.mark.parametrize("p", SEED_POINTS)
def test_seed_function_functional_both_modes(p):
    g = seed_grad(*p)
    assert_allclose(ad.grad(seed_f, argnums=(0, 1))(*p), g, rtol=1e-13)
    assert_allclose(ad.jacfwd(seed_f, argnums=(0, 1))(*p), g, rtol=1e-13)
    assert_allclose(ad.jacrev(seed_f, argnums=(0, 1))(*p), g, rtol=1e-13)
    assert_allclose(ad.grad(lambda x: seed_f(x[0], x[1]))(np.array(p)), g, rtol=1e-13)
    assert_allclose(ad.finite_diff(lambda x: seed_value(*x), np.array(p)), g, rtol=1e-7)


# ---- extended Rosenbrock, one tape replayed ---------------------------------------------------
@pytest.mark.parametrize("n", [2, 3, 50])
def test_rosenbrock_one_tape_replayed_against_scipy(n):
    opt = pytest.importorskip("scipy.optimize")
    rng = np.random.default_rng(n)
    tape = ad.record(rosen_loop, rng.uniform(-2, 2, n))
    ops = len(tape)
    for _ in range(10):
        x = rng.uniform(-2, 2, n)
        ref = opt.rosen_der(x)
        scale = np.abs(ref).max()
        assert_allclose(tape(x), opt.rosen(x), rtol=1e-13)
        assert_allclose(tape.gradient(x), ref, rtol=1e-13, atol=1e-14 * scale)
        assert_allclose(tape.jacobian(x, mode="forward"), ref, rtol=1e-13, atol=1e-14 * scale)
    assert len(tape) == ops                  # replays never re-record
    assert tape.stats()["rerecords"] == 0


# ---- determinant by expansion of minors ------------------------------------------------------
def det_minors(A):
    """Laplace expansion along the first row; A is a list of rows."""
    n = len(A)
    if n == 1:
        return A[0][0]
    s = 0.0
    for j in range(n):
        minor = [row[:j] + row[j + 1:] for row in A[1:]]
        term = A[0][j] * det_minors(minor)
        s = s + term if j % 2 == 0 else s - term
    return s


@pytest.mark.parametrize("n", [4, 5])
def test_determinant_gradient_is_cofactor_matrix(n):
    rng = np.random.default_rng(100 + n)
    tape = ad.record(lambda A: det_minors([list(r) for r in A]), rng.normal(size=(n, n)))
    for _ in range(3):
        A = rng.normal(size=(n, n)) + 2.0 * np.eye(n)     # well conditioned
        d = np.linalg.det(A)
        ref = d * np.linalg.inv(A).T
        tol = dict(rtol=1e-12, atol=1e-13 * np.abs(ref).max())
        assert_allclose(tape(A), d, rtol=1e-12)
        assert tape.gradient(A).shape == (n, n)
        assert_allclose(tape.gradient(A), ref, **tol)
        assert_allclose(tape.jacobian(A, mode="forward"), ref, **tol)
        assert_allclose(tape.jacobian(A, mode="reverse"), ref, **tol)


# ---- random m x n problems: forward Jacobian == reverse Jacobian == central differences -------
def make_problem(m, n, seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, m)) / math.sqrt(m)
    b = rng.normal(size=n)
    c = rng.uniform(0.5, 1.5, size=n)

    def f(x):
        out = []
        for i in range(n):
            s = ad.dot(A[i], x) + b[i]
            u, v, w = x[i % m], x[(i + 1) % m], x[(i + 2) % m]
            y = ad.sin(s) * ad.exp(0.3 * u) + c[i] * ad.log1p(v ** 2)
            y = y + ad.tanh(u * w) / (1.0 + v * v) - ad.atan(s) * ad.cosh(0.5 * w)
            y = y + ad.hypot(u, 1.0 + v ** 2) ** 1.5 + ad.sqrt(1.0 + s * s) * w
            out.append(y)
        return out
    return f, rng.uniform(-1.5, 1.5, size=m)


SHAPES = [(1, 1), (1, 6), (6, 1), (3, 4), (7, 2), (2, 9), (5, 5)]


@pytest.mark.parametrize("m,n", SHAPES)
def test_forward_equals_reverse_equals_central_differences(m, n):
    f, x0 = make_problem(m, n, seed=10 * m + n)
    tape = ad.record(f, x0)
    rng = np.random.default_rng(m * n)
    for x in (x0, rng.uniform(-1.5, 1.5, size=m)):
        Jf = tape.jacobian(x, mode="forward")
        Jr = tape.jacobian(x, mode="reverse")
        assert Jf.shape == Jr.shape == (n, m)
        assert_allclose(Jf, Jr, rtol=1e-12, atol=1e-13)
        assert_allclose(tape.jacobian(x), Jf, rtol=1e-12, atol=1e-13)        # mode="auto"
        fd = ad.finite_diff(lambda u: np.array(f(u)), x)
        assert fd.shape == (n, m)
        assert_allclose(Jr, fd, rtol=1e-6, atol=1e-7)
        assert_allclose(tape(x), np.array(f(x)), rtol=1e-13, atol=1e-14)
    # the functional API records its own tape and agrees
    assert_allclose(ad.jacfwd(f)(x0), ad.jacrev(f)(x0), rtol=1e-12, atol=1e-13)
    assert_allclose(ad.jacobian(f)(x0), tape.jacobian(x0), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("m,n", SHAPES)
@pytest.mark.parametrize("k", [2, 5])
def test_dot_product_identity_with_k_directions(m, n, k):
    """<w, J v> = <J^T w, v> with k tangent directions in one jvp and k weights in one vjp."""
    f, x0 = make_problem(m, n, seed=m + 7 * n)
    tape = ad.record(f, x0)
    rng = np.random.default_rng(k * 100 + m * n)
    x = rng.uniform(-1.5, 1.5, size=m)
    V = rng.normal(size=(m, k))              # trailing axis: k directions
    W = rng.normal(size=(k, n))              # leading axis: k weight vectors
    y1, JV = tape.jvp(x, V)
    y2, JtW = tape.vjp(x, W)
    assert JV.shape == (n, k) and JtW.shape == (k, m)
    assert_allclose(y1, y2, rtol=0, atol=0)
    scale = np.abs(W).sum() * np.abs(JV).max() + 1.0
    assert_allclose(W @ JV, JtW @ V, rtol=1e-12, atol=1e-13 * scale)
    J = tape.jacobian(x, mode="reverse")
    assert_allclose(JV, J @ V, rtol=1e-12, atol=1e-13)
    assert_allclose(JtW, W @ J, rtol=1e-12, atol=1e-13)
    # column by column equals one direction at a time
    for j in range(k):
        assert_allclose(tape.jvp(x, V[:, j])[1], JV[:, j], rtol=1e-14, atol=1e-15)
        assert_allclose(tape.vjp(x, W[j])[1], JtW[j], rtol=1e-14, atol=1e-15)
