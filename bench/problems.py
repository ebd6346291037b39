"""The problem suite, as in CppAD's speed tests, in plain Python scalar code.

Every problem is one function ``f(x, ops)``: ``x`` a Python list of scalars of whatever kind
the system under test uses (floats, tapead Vars, 0-d torch tensors, JAX tracers, CasADi SX,
micrograd Values), ``ops`` a small namespace of math-like functions for that kind (``ops.exp``,
``ops.abs``); arithmetic and comparisons are Python's operators. So the same code runs on every
system, and on floats it is the plain-Python baseline.

| problem | CppAD test | f | derivative | oracle |
| --- | --- | --- | --- | --- |
| rosen | (core speed) | extended Rosenbrock loop | gradient | scipy.optimize.rosen_der |
| det_minor | det_minor | det by expansion in minors | gradient | det(A)·inv(A)ᵀ |
| det_lu | det_lu | det by LU, partial pivoting | gradient | det(A)·inv(A)ᵀ |
| mat_mul | mat_mul | z = Σ (X·X)ij | gradient | colsum(X)_a + rowsum(X)_b |
| ode | ode | y(1), y' = (0, y0, …, y_{n-2}), RK4, 10 steps | Jacobian | R(A/10)^10, R the RK4 polynomial |
| poly | poly | Horner, degree d, in z | d²p/dz² | np.polyder |
| sparse_jacobian | sparse_jacobian | f_row[k] += exp(x_col[k]²/2), 3n outputs, K = 10·3n | Jacobian | closed form |
| sparse_hessian | sparse_hessian | Σ_k exp(x_row[k]·x_col[k]), K = 5n pairs | Hessian | closed form |

Each ``Problem`` carries its recording point ``x0``, a new point ``x1`` for warm replays, the
value and derivative oracles and the derivative kind ("gradient", "jacobian", "hessian").
"""
import math
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Callable

import numpy as np
from scipy.optimize import rosen, rosen_der

from benchlib import rosen_loop

PLAIN = SimpleNamespace(name="plain", exp=math.exp, abs=abs, sin=math.sin, cos=math.cos)


# ---- the functions ---------------------------------------------------------------------------
def f_rosen(x, ops):
    return rosen_loop(x)


def f_det_minor(x, ops):
    """Determinant of the n×n matrix x (row-major) by expansion in minors along the first
    remaining row (CppAD det_by_minor): n!·e operations, no pivoting, no branches on values."""
    n = math.isqrt(len(x))

    def det(r, cols):               # minor of rows r.., columns cols
        if len(cols) == 1:
            return x[r * n + cols[0]]
        s = None
        for j, c in enumerate(cols):
            term = x[r * n + c] * det(r + 1, cols[:j] + cols[j + 1:])
            s = term if s is None else (s + term if j % 2 == 0 else s - term)
        return s

    return det(0, tuple(range(n)))


def f_det_lu(x, ops):
    """Determinant of x (row-major n×n) by LU factorisation with partial pivoting (the pivot is
    the largest |a_ik| of column k: the comparisons run on values)."""
    n = math.isqrt(len(x))
    a = [list(x[i * n:(i + 1) * n]) for i in range(n)]
    det, negate = None, False
    for k in range(n):
        p = k
        for i in range(k + 1, n):
            if ops.abs(a[i][k]) > ops.abs(a[p][k]):
                p = i
        if p != k:
            a[k], a[p] = a[p], a[k]
            negate = not negate
        piv = a[k][k]
        det = piv if det is None else det * piv
        rk = a[k]
        for i in range(k + 1, n):
            ri = a[i]
            l = ri[k] / piv
            for j in range(k + 1, n):
                ri[j] = ri[j] - l * rk[j]
    return -det if negate else det


def f_mat_mul(x, ops):
    """z = Σ_ij (X·X)_ij for the n×n matrix X = x (row-major), as CppAD's mat_sum_sq."""
    n = math.isqrt(len(x))
    z = None
    for i in range(n):
        for j in range(n):
            s = x[i * n] * x[j]
            for k in range(1, n):
                s = s + x[i * n + k] * x[k * n + j]
            z = s if z is None else z + s
    return z


ODE_STEPS = 10


def f_ode(x, ops):
    """y(1) where y(0) = x and y' = g(y), g_0 = 0, g_k = y_{k-1} (CppAD's ode_evaluate), by
    ODE_STEPS fixed steps of the classical Runge–Kutta method (RK4)."""
    h = 1.0 / ODE_STEPS

    def g(y):
        return [0.0] + y[:-1]

    y = list(x)
    for _ in range(ODE_STEPS):
        k1 = g(y)
        k2 = g([yi + (0.5 * h) * ki for yi, ki in zip(y, k1)])
        k3 = g([yi + (0.5 * h) * ki for yi, ki in zip(y, k2)])
        k4 = g([yi + h * ki for yi, ki in zip(y, k3)])
        y = [yi + (h / 6) * (a + 2 * b + 2 * c + d)
             for yi, a, b, c, d in zip(y, k1, k2, k3, k4)]
    return y


def poly_coefficients(degree, seed=0):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, degree + 1).tolist()  # a_0 .. a_d


def make_f_poly(coef):
    def f_poly(x, ops):
        """p(z) = Σ a_k z^k by Horner's rule, z = x[0]."""
        z = x[0]
        p = coef[-1] * z + coef[-2]
        for a in reversed(coef[:-2]):
            p = p * z + a
        return p
    return f_poly


def sparse_jacobian_pattern(n, seed=0):
    """(m, row, col) of CppAD's sparse_jacobian test: m = 3n outputs, K = 10m terms; every
    output gets a term, the rest are random (row, col) pairs."""
    m = 3 * n
    rng = np.random.default_rng(seed)
    K = 10 * m
    row = np.concatenate([np.arange(m), rng.integers(0, m, K - m)]).tolist()
    col = rng.integers(0, n, K).tolist()
    return m, row, col


def make_f_sparse_jacobian(m, row, col):
    def f_sparse_jacobian(x, ops):
        """f_i = Σ_{k: row[k] = i} exp(x[col[k]]² / 2)  (CppAD's sparse_jac_fun)."""
        y = [None] * m
        for i, j in zip(row, col):
            t = ops.exp(x[j] * x[j] * 0.5)
            y[i] = t if y[i] is None else y[i] + t
        return y
    return f_sparse_jacobian


def sparse_hessian_pattern(n, seed=0):
    """(row, col) with K = 5n distinct pairs row <= col, the diagonal always included."""
    rng = np.random.default_rng(seed)
    pairs = {(i, i) for i in range(n)}
    while len(pairs) < min(5 * n, n * (n + 1) // 2):
        i, j = sorted(rng.integers(0, n, 2).tolist())
        pairs.add((i, j))
    pairs = sorted(pairs)
    return [p[0] for p in pairs], [p[1] for p in pairs]


def make_f_sparse_hessian(row, col):
    def f_sparse_hessian(x, ops):
        """f = Σ_k exp(x[row[k]]·x[col[k]])  (CppAD's sparse_hes_fun)."""
        s = None
        for i, j in zip(row, col):
            t = ops.exp(x[i] * x[j])
            s = t if s is None else s + t
        return s
    return f_sparse_hessian


# ---- oracles ---------------------------------------------------------------------------------
def _det_grad(x):
    n = math.isqrt(len(x))
    A = np.asarray(x, dtype=float).reshape(n, n)
    return (np.linalg.det(A) * np.linalg.inv(A).T).ravel()


def _det_value(x):
    n = math.isqrt(len(x))
    return np.linalg.det(np.asarray(x, dtype=float).reshape(n, n))


def _mat_mul_grad(x):
    n = math.isqrt(len(x))
    X = np.asarray(x).reshape(n, n)
    return (X.sum(axis=0)[:, None] + X.sum(axis=1)[None, :]).ravel()   # colsum_a + rowsum_b


def _rk4_matrix(n):
    """The exact Jacobian of ODE_STEPS RK4 steps of y' = A y: R(hA)^M with R(z) the RK4
    stability polynomial 1 + z + z²/2 + z³/6 + z⁴/24 and A the shift (subdiagonal ones)."""
    A = np.eye(n, k=-1) * (1.0 / ODE_STEPS)
    R = np.eye(n) + A + A @ A / 2 + A @ A @ A / 6 + A @ A @ A @ A / 24
    return np.linalg.matrix_power(R, ODE_STEPS)


def _sparse_jacobian_jac(x, m, row, col):
    J = np.zeros((m, len(x)))
    for i, j in zip(row, col):
        J[i, j] += math.exp(x[j] ** 2 / 2) * x[j]
    return J


def _sparse_hessian_hes(x, row, col):
    n = len(x)
    H = np.zeros((n, n))
    for i, j in zip(row, col):
        t = math.exp(x[i] * x[j])
        if i == j:
            H[i, i] += (2 + 4 * x[i] ** 2) * t
        else:
            H[i, j] += (1 + x[i] * x[j]) * t
            H[j, i] += (1 + x[i] * x[j]) * t
            H[i, i] += x[j] ** 2 * t
            H[j, j] += x[i] ** 2 * t
    return H


# ---- the problems ----------------------------------------------------------------------------
@dataclass
class Problem:
    name: str
    size: int                      # the size as CppAD names it (n, degree, ...)
    f: Callable                    # f(x, ops)
    x0: np.ndarray                 # recording point
    x1: np.ndarray                 # new point for warm replays
    value: Callable                # value oracle: x -> scalar or vector
    deriv: Callable                # derivative oracle: x -> gradient / Jacobian / Hessian
    kind: str = "gradient"         # "gradient" | "jacobian" | "hessian"
    rtol: float = 1e-10
    atol: float = 1e-12
    branches: bool = False         # value-dependent control flow (pivoting)
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def id(self):
        return f"{self.name}-{self.size}"

    def check(self, got, x, what=""):
        """Assert a derivative against the oracle (on a failure, the worst entry is named)."""
        want = np.asarray(self.deriv(np.asarray(x, dtype=float)), dtype=float)
        got = np.asarray(got, dtype=float).reshape(want.shape)
        np.testing.assert_allclose(got, want, rtol=self.rtol, atol=self.atol,
                                   err_msg=f"{self.id} {what}: derivative disagrees with oracle")

    def check_value(self, got, x):
        want = np.asarray(self.value(np.asarray(x, dtype=float)), dtype=float)
        np.testing.assert_allclose(np.asarray(got, dtype=float).reshape(want.shape), want,
                                   rtol=self.rtol, atol=self.atol,
                                   err_msg=f"{self.id}: value disagrees with oracle")


def _matrix(n, seed):
    """A well-conditioned random n×n matrix (flat): random entries plus n on the diagonal, so
    det and inv are accurate and the pivots of LU stay away from zero."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(-1, 1, (n, n)) + np.eye(n) * 0.5 * n ** 0.5).ravel()


def make(name, size):
    """The Problem `name` at `size`."""
    if name == "rosen":
        x0, x1 = (np.random.default_rng(s).uniform(-2, 2, size) for s in (0, 1))
        return Problem(name, size, f_rosen, x0, x1, rosen, rosen_der, rtol=1e-12, atol=1e-10)
    if name in ("det_minor", "det_lu"):
        # det_minor's value is a sum of n! products: compare with a relative tolerance
        f = f_det_minor if name == "det_minor" else f_det_lu
        return Problem(name, size, f, _matrix(size, 0), _matrix(size, 1), _det_value, _det_grad,
                       rtol=1e-9, atol=1e-9, branches=name == "det_lu")
    if name == "mat_mul":
        x0, x1 = (np.random.default_rng(s).uniform(-1, 1, size * size) for s in (0, 1))
        val = (lambda x: float(np.sum(np.asarray(x).reshape(size, size)
                                      @ np.asarray(x).reshape(size, size))))
        return Problem(name, size, f_mat_mul, x0, x1, val, _mat_mul_grad, rtol=1e-12,
                       atol=1e-12)
    if name == "ode":
        R = _rk4_matrix(size)
        x0, x1 = (np.random.default_rng(s).uniform(-1, 1, size) for s in (0, 1))
        return Problem(name, size, f_ode, x0, x1, lambda x: R @ x, lambda x: R,
                       kind="jacobian", rtol=1e-12, atol=1e-13)
    if name == "poly":
        coef = poly_coefficients(size)
        d2 = np.polyder(np.array(coef[::-1]), 2)
        return Problem(name, size, make_f_poly(coef), np.array([0.3]), np.array([-0.7]),
                       lambda x: np.polyval(coef[::-1], x[0]),
                       lambda x: np.array([[np.polyval(d2, x[0])]]),
                       kind="hessian", rtol=1e-12, atol=1e-12)
    if name == "sparse_jacobian":
        m, row, col = sparse_jacobian_pattern(size)
        x0, x1 = (np.random.default_rng(s).uniform(-1, 1, size) for s in (0, 1))
        f = make_f_sparse_jacobian(m, row, col)

        def val(x):
            y = np.zeros(m)
            for i, j in zip(row, col):
                y[i] += math.exp(x[j] ** 2 / 2)
            return y
        return Problem(name, size, f, x0, x1, val,
                       lambda x: _sparse_jacobian_jac(x, m, row, col), kind="jacobian",
                       rtol=1e-12, atol=1e-12, extra={"outputs": m, "K": len(row)})
    if name == "sparse_hessian":
        row, col = sparse_hessian_pattern(size)
        x0, x1 = (np.random.default_rng(s).uniform(-1, 1, size) for s in (0, 1))
        f = make_f_sparse_hessian(row, col)
        val = (lambda x: sum(math.exp(x[i] * x[j]) for i, j in zip(row, col)))
        return Problem(name, size, f, x0, x1, val,
                       lambda x: _sparse_hessian_hes(x, row, col), kind="hessian",
                       rtol=1e-11, atol=1e-11, extra={"K": len(row)})
    raise ValueError(f"unknown problem {name!r}")


NAMES = ("rosen", "det_minor", "det_lu", "mat_mul", "ode", "poly", "sparse_jacobian",
         "sparse_hessian")
