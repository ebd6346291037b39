"""Sparse derivatives of tapes holding array block ops (csrc/pattern.c's block_edges): the
Jacobian's pattern per element through MAP, REDUCE, AMAX/AMIN/PROD, MATMUL, PACK, GATHER,
SCATTER and SCATTER_ADD, exact on the test patterns (the same program recorded with scalar Vars
gives the reference pattern), sparse Jacobians and Hessians equal to the dense ones, and the
Hessian's pattern of a block tape a superset (J^T J's: conservative)."""
import numpy as np
import pytest

import tapead as ad
from tapead._core import lib

pytest.importorskip("scipy")
from test_sparse_jacobian import _c_pattern   # noqa: E402

rng = np.random.default_rng(7)


def scalar_record(f, x):
    """f recorded with scalar Vars (an object ndarray): the reference pattern, no block ops."""
    t = ad.Tape()
    with t:
        v = t.variables(x, array=False)
        t.outputs(f(v))
    return t


def pattern(t):
    return t.jacobian_sparsity().toarray()


def tridiag(x):
    return x[1:] - x[:-1] ** 2 + 0.5 * x[1:] * np.sin(x[:-1])


def banded(x):                        # bandwidth 2 each side, via slices and a constant
    y = np.exp(x[2:-2]) * x[4:] - x[:-4] * 3.0 + x[1:-3] / (1.0 + x[3:-1] ** 2)
    return y


def arrowhead(x):
    return x * x[0] + np.sum(x ** 2) * np.array([0.0] * (len(x) - 1) + [1.0]) + x[-1]


def blockdiag(x):                     # 4 blocks of 3: reshape + batched matmul
    X = x.reshape(4, 3)
    A = np.arange(1.0, 10.0).reshape(3, 3)
    return (X[:, None, :] @ A)[:, 0, :].reshape(-1) * X.reshape(-1) + np.tanh(X).reshape(-1)


def gathers(x):
    y = x[[3, 0, 0, 5, 7]] * x[[1, 1, 2, 6, 4]]
    z = x.copy()
    z[[1, 4]] = y[:2]                                   # SCATTER
    if hasattr(z, "at"):
        w = z.at[np.array([0, 0, 2])].add(y[2:] ** 2)   # SCATTER_ADD
    else:                                               # (the scalar reference)
        w = z.copy()
        np.add.at(w, [0, 0, 2], y[2:] ** 2)
    return np.concatenate([w, y[::-1]])


def reductions(x):
    X = x.reshape(3, 4)
    return np.concatenate([np.sum(X, axis=0), np.max(X, axis=1), np.prod(X[:, :2], axis=1),
                           np.min(X.T, axis=0) * X[:, 0], (X @ X.T).reshape(-1)])


def reductions_pattern(m):
    P = np.zeros((22, 12), dtype=bool)
    for j in range(4):
        P[j, j::4] = True                               # column sums
    for i in range(3):
        P[4 + i, 4 * i:4 * i + 4] = True                # row max: every element (structural)
        P[7 + i, 4 * i:4 * i + 2] = True                # prod of the first two
        P[10 + i, 4 * i:4 * i + 4] = True                # min of row i (X.T axis 0), X[i, 0]
    for i in range(3):
        for j in range(3):
            P[13 + 3 * i + j, 4 * i:4 * i + 4] = P[13 + 3 * i + j, 4 * j:4 * j + 4] = True
    return P


def maps_pattern(m):
    P = np.zeros((10, 10), dtype=bool)
    for r in range(2):
        for c in range(5):
            P[5 * r + c, [5 * r + c, 5 * (1 - r) + c]] = True   # where: both sides count
    return P


def maps(x):                          # where, comparisons, broadcasting, constants
    X = x.reshape(2, 5)
    c = np.array([[1.0], [2.0]])
    return np.where(X > 0.5, X * c, np.cos(X[::-1])).reshape(-1) + (x[0] < x[1]) * 1.0


CASES = [(tridiag, 10), (banded, 12), (arrowhead, 9), (blockdiag, 12), (gathers, 8),
         (reductions, 12), (maps, 10)]
# where a scalar recording follows one branch (a max's winner, where's taken side), the block
# pattern is structural: every element counts; the exact pattern is written out instead
EXACT = {reductions: reductions_pattern, maps: maps_pattern}


def same(a, b):                       # compressed directions may round differently (matmul)
    np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("f, m", CASES, ids=[c[0].__name__ for c in CASES])
def test_block_pattern_is_the_scalar_pattern(f, m):
    x = rng.uniform(0.1, 1.0, m)
    t = ad.record(f, x)
    assert lib.tp_first_block(t._rec._p) >= 0           # block ops, not scalar ones
    P = pattern(t)
    ref = pattern(scalar_record(f, x))
    assert not np.any(ref & ~P)
    assert np.array_equal(P, EXACT[f](m) if f in EXACT else ref)
    fwd = _c_pattern(t, 0)
    for other in (_c_pattern(t, 1), _c_pattern(t, 0, 8), _c_pattern(t, 1, 8)):
        assert all(np.array_equal(a, b) for a, b in zip(fwd, other))
    for _ in range(3):                                  # structural: a superset of nonzeros
        xp = rng.uniform(-1.0, 1.0, m)
        J = t.jacobian(xp)
        assert not np.any((J != 0) & ~P)
        for mode in ("forward", "reverse", "auto"):
            S = t.jacobian(xp, mode=mode, sparse=True)
            same(S.toarray(), J)


def test_array_tridiagonal_takes_three_colours():
    n = 10_000
    t = ad.record(lambda x: np.concatenate([x[:1], x[1:-1] ** 2 - x[:-2] + x[2:], x[-1:]]),
                  np.ones(n))
    x = rng.normal(size=n)
    S = t.jacobian(x, sparse=True)
    assert max(t.stats()["colours"]["jacobian"]) == 3
    assert S.nnz == 3 * n - 4
    J = S.toarray()
    assert np.array_equal(J[1:-1], t.jacobian(x)[1:-1])


def test_arrowhead_with_arrays_takes_three_sweeps():
    n = 1000
    t = ad.record(lambda x: np.concatenate([x[:-1] * x[-1], np.sum(x ** 2, keepdims=True)]),
                  np.ones(n))
    x = rng.normal(size=n)
    S = t.jacobian(x, sparse=True)
    assert sum(t.stats()["colours"]["jacobian"]) <= 3
    assert np.allclose(S.toarray(), t.jacobian(x), rtol=0, atol=0)


def test_block_diagonal_matmul_pattern():
    k, b = 50, 4
    A = rng.normal(size=(b, b))
    t = ad.record(lambda x: (x.reshape(k, 1, b) @ A).reshape(-1) ** 2, np.ones(k * b))
    P = pattern(t)
    assert np.array_equal(P, np.kron(np.eye(k, dtype=bool), np.ones((b, b), dtype=bool)))
    x = rng.normal(size=k * b)
    same(t.jacobian(x, sparse=True).toarray(), t.jacobian(x))
    assert max(t.stats()["colours"]["jacobian"]) == b


@pytest.mark.parametrize("f, m", CASES, ids=[c[0].__name__ for c in CASES])
def test_block_hessians_sparse_equal_dense(f, m):
    x = rng.uniform(0.1, 1.0, m)
    t = ad.record(f, x)
    n = t.n_outputs
    Hp = t.hessian_sparsity().toarray()
    Href = scalar_record(f, x).hessian_sparsity().toarray()
    assert not np.any(Href & ~Hp)                        # a superset of the exact pattern
    for _ in range(2):
        xp, w = rng.uniform(-1.0, 1.0, m), rng.normal(size=n)
        H = t.hessian(xp, w.reshape(t._out_shape))
        assert not np.any((H != 0) & ~Hp)
        same(t.hessian(xp, w.reshape(t._out_shape), sparse=True).toarray(), H)


def test_scalar_objective_with_arrays_hessian():
    f = lambda x: np.sum((x[1:] - x[:-1] ** 2) ** 2) + np.sum((1.0 - x) ** 2)   # noqa: E731
    x = rng.uniform(0.1, 1.0, 20)
    t = ad.record(f, x)
    H = t.hessian(x)
    assert np.allclose(t.hessian(x, sparse=True).toarray(), H, rtol=0, atol=0)
    assert not np.any((H != 0) & ~t.hessian_sparsity().toarray())


def test_traces_and_graphs_of_array_tapes_are_refused_clearly():
    t = ad.record(lambda x: x[1:] * x[:-1], np.ones(4))
    with pytest.raises(TypeError, match="block operations"):
        t.trace()
    with pytest.raises(TypeError, match="block operations"):
        t.to_dot()
