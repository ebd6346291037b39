"""Sparse Jacobians and Hessians (tapead/sparse.py, csrc/pattern.c, csrc/colour.c): results equal
the dense ones entry for entry, patterns are supersets of the true nonzeros and exact on
structured ones, the colourings take the sweeps they should, the cache follows the recording,
and the errors are clear (SciPy missing, no outputs, bad x)."""
import sys

import numpy as np
import pytest

sp = pytest.importorskip("scipy.sparse")

import tapead as ad                                                    # noqa: E402
from helpers import program_steps, run_in_threads, run_program         # noqa: E402
from tapead import sparse as sparse_mod                                # noqa: E402
from tapead.errors import TapeError                                    # noqa: E402

MODES = ("auto", "forward", "reverse")


# ---- functions with known patterns -------------------------------------------------------------
def tridiagonal(x):
    n = len(x)
    return [(x[i - 1] if i else 0.0) - 2.0 * x[i] * x[i] + (ad.sin(x[i + 1]) if i < n - 1 else 0.0)
            for i in range(n)]


def tridiagonal_pattern(n):
    return {(i, j) for i in range(n) for j in (i - 1, i, i + 1) if 0 <= j < n}


def arrowhead(x):
    n = len(x)
    return [ad.sum([xi * xi for xi in x])] + [x[0] * x[i] + ad.exp(x[i]) for i in range(1, n)]


def arrowhead_pattern(n):
    return {(0, j) for j in range(n)} | {(i, 0) for i in range(n)} | {(i, i) for i in range(n)}


def block_diagonal(x, b=4):
    out = []
    for i in range(len(x)):
        lo = i // b * b
        out.append(ad.sum([ad.sin(x[j] * (i + 1)) for j in range(lo, min(lo + b, len(x)))]))
    return out


def block_diagonal_pattern(n, b=4):
    return {(i, j) for i in range(n) for j in range(i // b * b, min(i // b * b + b, n))}


def random_pairs(n_out, n_in, k, seed):
    rng = np.random.default_rng(seed)
    rows = np.concatenate([np.arange(n_out), rng.integers(0, n_out, k)])
    cols = rng.integers(0, n_in, rows.size)
    return list(zip(rows.tolist(), cols.tolist()))


def from_pairs(pairs, n_out):
    """f_r = Σ_{(r, c)} exp(x_c² / 2) (CppAD's sparse_jacobian function)."""
    def f(x):
        y = [0.0] * n_out
        for r, c in pairs:
            y[r] = y[r] + ad.exp(x[c] * x[c] * 0.5)
        return y
    return f


def pattern_set(S):
    coo = sp.coo_array(S)
    return set(zip(coo.row.tolist(), coo.col.tolist()))


def nonzeros(J):
    return set(zip(*(a.tolist() for a in np.nonzero(J))))


def dense2d(t, x, mode="auto"):
    """The dense Jacobian as (n_outputs, n_inputs)."""
    J = t.jacobian(x, mode=mode)
    if isinstance(J, tuple):
        return np.concatenate([j.reshape(t.n_outputs, -1) for j in J], axis=1)
    return np.asarray(J).reshape(t.n_outputs, t.n_inputs)


def check_equal(t, x, mode="auto"):
    """The sparse Jacobian is the dense one of its mode to the last bit (auto: each entry the
    dense entry of the mode it came from; forward and reverse sum in different orders)."""
    S = t.jacobian(x, mode=mode, sparse=True)
    assert isinstance(S, sp.csr_array) and S.shape == (t.n_outputs, t.n_inputs)
    A = S.toarray()
    fwd, rev = dense2d(t, x, "forward"), dense2d(t, x, "reverse")
    same = {"forward": A == fwd, "reverse": A == rev, "auto": (A == fwd) | (A == rev)}[mode]
    assert same.all(), (mode, np.argwhere(~same)[:5])
    assert nonzeros(fwd) <= pattern_set(S)
    return S


# ---- values -------------------------------------------------------------------------------------
CASES = {
    "tridiagonal": (tridiagonal, tridiagonal_pattern, 12),
    "arrowhead": (arrowhead, arrowhead_pattern, 15),
    "block_diagonal": (block_diagonal, block_diagonal_pattern, 14),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_sparse_equals_dense_and_pattern_is_exact(name, mode):
    f, pattern, n = CASES[name]
    rng = np.random.default_rng(1)
    t = ad.record(lambda x: f(list(x)), rng.uniform(0.5, 1.5, n))
    assert pattern_set(t.jacobian_sparsity()) == pattern(n)
    assert t.jacobian_sparsity().dtype == bool
    for _ in range(3):
        check_equal(t, rng.uniform(-2, 2, n), mode)


@pytest.mark.parametrize("shape", [(30, 20), (5, 60), (60, 5)])
def test_random_pattern_exact(shape):
    n_out, n_in = shape
    pairs = random_pairs(n_out, n_in, 3 * n_out, seed=n_out)
    t = ad.record(from_pairs(pairs, n_out), np.linspace(0.1, 1.0, n_in))
    assert pattern_set(t.jacobian_sparsity()) == set(pairs)
    x = np.random.default_rng(2).uniform(-1, 1, n_in)
    for mode in MODES:
        check_equal(t, x, mode)


def guarded(x):
    """Guards, where, abs/max, a constant output and an output that is an input."""
    a = ad.where(x[0] > x[1], x[2] * x[3], ad.sin(x[4]))
    b = abs(x[1]) + ad.maximum(x[3], x[5]) if x[5] > 0 else x[1] * 2.0
    c = (x[0] < x[4]) * 1.0 + x[6] ** 3
    return [a, b, c, 4.0, x[7], ad.sign(x[2]) + x[0]]


@pytest.mark.parametrize("seed", range(6))
def test_pattern_superset_with_guards_where_and_constants(seed):
    rng = np.random.default_rng(seed)
    t = ad.record(guarded, rng.uniform(-1, 1, 8))
    for mode in MODES:
        x = rng.uniform(-1, 1, 8)
        check_equal(t, x, mode)
    P = pattern_set(t.jacobian_sparsity())
    assert not any(r == 3 for r, _ in P)                 # the constant output
    assert (0, 0) not in P and (0, 1) not in P           # where's condition carries nothing
    assert {(0, 2), (0, 3), (0, 4)} <= P                 # both of where's sides count
    assert (2, 0) not in P and (2, 6) in P               # a comparison's result neither


UNARY = {"sin": ad.sin, "exp_tanh": lambda u: ad.exp(ad.tanh(u)), "neg": lambda u: -u,
         "sq": lambda u: u * u, "where": lambda u: ad.where(u > 0.1, u * 2.0, ad.cos(u))}


def test_random_programs_sparse_equals_dense():
    """Random DAGs (helpers.run_program): many inputs, several outputs, each mode."""
    hyp = pytest.importorskip("hypothesis")
    st = hyp.strategies

    @hyp.settings(max_examples=60, deadline=None)
    @hyp.given(st.integers(1, 9), program_steps(UNARY),
               st.lists(st.integers(0, 999), min_size=1, max_size=6), st.integers(0, 2 ** 31))
    def check(m, body, outs, seed):
        prog = (m, body, outs)
        t = ad.record(lambda x: run_program(prog, x, UNARY), np.full(m, 0.3))
        x = np.random.default_rng(seed).uniform(-1, 1, m)
        try:
            for mode in MODES:
                check_equal(t, x, mode)
        except ad.BranchChanged:
            pass
    check()


def test_threads_share_a_tape():
    n = 200
    t = ad.record(lambda x: arrowhead(list(x)), np.linspace(0.5, 1.5, n))
    points = [np.random.default_rng(k).uniform(-1, 1, n) for k in range(4)]
    want = [t.jacobian(x, mode="forward") for x in points]
    t2 = ad.record(lambda x: arrowhead(list(x)), np.linspace(0.5, 1.5, n))   # cache made racing

    def body(k):
        for _ in range(5):
            for tape in (t, t2):
                S = tape.jacobian(points[k], sparse=True).toarray()
                assert np.allclose(S, want[k], rtol=1e-14, atol=0)
    run_in_threads(body, 4)


def test_primitive_outputs_depend_on_all_inputs():
    @ad.primitive
    def two(a, b):
        return np.array([a * b, b * b])
    two.defjvp(lambda x, v: np.array([v[0] * x[1] + x[0] * v[1], 2 * x[1] * v[1]]))
    two.defvjp(lambda x, w: (w[0] * x[1], w[0] * x[0] + 2 * x[1] * w[1]))

    def f(x):
        y = two(x[0], x[1])
        return [y[0] + x[2], y[1], ad.sin(x[3]), x[2] * x[3]]
    t = ad.record(f, np.arange(1.0, 5.0))
    assert pattern_set(t.jacobian_sparsity()) == {(0, 0), (0, 1), (0, 2), (1, 0), (1, 1),
                                                  (2, 3), (3, 2), (3, 3)}
    for mode in MODES:
        check_equal(t, np.array([0.3, 0.5, 0.7, 1.1]), mode)


def _c_pattern(t, reverse, pass_bytes=0):
    """The pattern from csrc/pattern.c's forward (over inputs) or reverse (over outputs) sweep,
    in passes of pass_bytes (0: the default)."""
    from tapead._core import ffi, lib
    indptr = np.empty(t.n_outputs + 1, dtype=np.int64)
    out = ffi.new("int32_t **")
    nnz = lib.tp_jac_pattern(t._rec._p, reverse, pass_bytes, ffi.from_buffer("int64_t[]", indptr),
                             out)
    assert nnz >= 0
    idx = np.frombuffer(ffi.buffer(out[0], 4 * nnz), dtype=np.int32).copy()
    lib.tp_free_pattern(out[0])
    return indptr, idx


def test_forward_and_reverse_pattern_passes_agree():
    """Both sweeps, on tapes with guards, where, primitives with several outputs, constants and
    more than 64 inputs and outputs (several words a set), in one pass or many."""
    @ad.primitive
    def three(a, b, c):
        return np.array([a * b, b + c, c * c])
    three.defjvp(lambda x, v: np.array([v[0] * x[1] + x[0] * v[1], v[1] + v[2], 2 * x[2] * v[2]]))
    three.defvjp(lambda x, w: (w[0] * x[1], w[0] * x[0] + w[1], w[1] + 2 * x[2] * w[2]))

    def f(x):
        out = []
        for i in range(0, len(x) - 3, 3):
            y = three(x[i], x[i + 2], x[i + 3])
            out += [y[0] + ad.where(x[i] > 0, x[i + 1], 2.0), y[2] * x[-1], 1.5]
        return out + [ad.sum(list(x)[::7])]          # scalar ops (x[::7] would be a block op)
    for m in (10, 70, 200):
        t = ad.record(f, np.linspace(0.5, 1.5, m))
        fwd = _c_pattern(t, 0)
        for other in (_c_pattern(t, 1), _c_pattern(t, 0, 8), _c_pattern(t, 1, 8),
                      _c_pattern(t, 0, 1000), _c_pattern(t, 1, 1000)):
            assert all(np.array_equal(a, b) for a, b in zip(fwd, other))
        for mode in MODES:
            check_equal(t, np.linspace(-1, 1, m), mode)


def test_shapes_pieces_and_scalars():
    """Rows: y flattened (C order); columns: the inputs' pieces flattened, in order."""
    def f(a, b):
        return np.array([[a[0, 0] * b, a[1, 1]], [ad.exp(a[0, 1]), 2.0 * b]], dtype=object)
    t = ad.record(f, np.ones((2, 2)), 0.5)
    x = (np.array([[0.1, 0.2], [0.3, 0.4]]), 0.7)
    S = check_equal(t, x)
    Ja, Jb = t.jacobian(x)
    assert S.shape == (4, 5)
    assert np.array_equal(S.toarray()[:, :4].reshape(2, 2, 2, 2), Ja)
    assert np.array_equal(S.toarray()[:, 4].reshape(2, 2), Jb)
    ts = ad.record(lambda u: u * u, 3.0)                  # scalar in, scalar out
    assert ts.jacobian(2.0, sparse=True).toarray().tolist() == [[4.0]]
    tc = ad.record(lambda x: [1.0, 2.0], np.ones(3))      # constant outputs: no nonzeros
    Z = tc.jacobian(np.zeros(3), sparse=True)
    assert Z.shape == (2, 3) and Z.nnz == 0 and tc.stats()["colours"]["jacobian"] == (0, 0)


# ---- colours and sweeps -------------------------------------------------------------------------
def _visits(t, fn):
    before = dict(t.stats()["swept"])
    fn()
    after = t.stats()["swept"]
    return after["tangent"] - before["tangent"], after["adjoint"] - before["adjoint"]


def test_tridiagonal_1e4_in_three_directions():
    n = 10 ** 4
    t = ad.record(lambda x: tridiagonal(list(x)), np.linspace(0.5, 1.5, n))
    x = np.linspace(-1, 1, n)
    assert _visits(t, lambda: t.jacobian(x, sparse=True)) == (3 * len(t), 0)
    assert t.stats()["colours"]["jacobian"] == (3, 0)
    S = t.jacobian(x, sparse=True)
    assert S.nnz == 3 * n - 2
    for reverse in (0, 1):
        for pass_bytes in (0, 4096):                         # one pass, or many
            indptr, indices = _c_pattern(t, reverse, pass_bytes)
            assert np.array_equal(indptr, S.indptr) and np.array_equal(indices, S.indices)
    d = np.arange(n)
    assert np.array_equal(S.diagonal(), -4.0 * x)
    assert np.array_equal(S[d[1:], d[:-1]], np.ones(n - 1))
    assert np.array_equal(S[d[:-1], d[1:]], np.cos(x[1:]))


def test_arrowhead_1000_in_at_most_three_sweeps():
    n = 1000
    t = ad.record(lambda x: arrowhead(list(x)), np.linspace(0.5, 1.5, n))
    x = np.linspace(-1, 1, n)
    tangent, adjoint = _visits(t, lambda: t.jacobian(x, sparse=True))
    pf, pr = t.stats()["colours"]["jacobian"]
    check_equal(t, x)
    assert pf + pr <= 3 and pr >= 1                      # the dense row done in reverse
    assert (tangent, adjoint) == (pf * len(t), pr * len(t))
    assert t.stats()["colours"]["jacobian"] == (pf, pr)
    t.jacobian(x, mode="forward", sparse=True)           # no split: the dense row costs n
    assert t.stats()["colours"]["jacobian"] == (n, 0)


def test_dense_column_split_off_to_forward():
    """Block rows sharing one column: reverse for the blocks, the shared column forward."""
    blocks, width = 10, 100
    m = blocks * width + 1

    def f(x):
        return [x[-1] * ad.sum([x[j] * x[j] for j in range(i * width, (i + 1) * width)])
                for i in range(blocks)]
    t = ad.record(lambda x: f(list(x)), np.linspace(0.5, 1.5, m))
    check_equal(t, np.linspace(-1, 1, m))
    assert t.stats()["colours"]["jacobian"] == (1, 1)
    check_equal(t, np.linspace(-1, 1, m), "reverse")
    assert t.stats()["colours"]["jacobian"] == (0, blocks)


def test_stats_colours_and_hessian():
    n = 30
    t = ad.record(lambda x: ad.sum(tridiagonal(list(x))), np.linspace(0.5, 1.5, n))
    assert t.stats()["colours"] == {"jacobian": None, "hessian": None}
    x = np.linspace(-1, 1, n)
    H = t.hessian(x, sparse=True)
    assert isinstance(H, sp.csr_array) and H.shape == (n, n)
    assert np.array_equal(H.toarray(), t.hessian(x))
    assert t.stats()["colours"]["hessian"] == 1          # diagonal: one direction
    P = t.hessian_sparsity()
    assert P.dtype == bool and pattern_set(P) == {(i, i) for i in range(n)}
    t.jacobian(x, sparse=True)
    assert t.stats()["colours"]["jacobian"] == (1, 0) or t.stats()["colours"]["jacobian"] == (0, 1)


@pytest.mark.parametrize("name", sorted(CASES))
def test_sparse_hessian_equals_dense(name):
    f, _, n = CASES[name]
    w = np.linspace(0.5, 2.0, n)
    t = ad.record(lambda x: f(list(x)), np.linspace(0.5, 1.5, n))
    x = np.random.default_rng(3).uniform(-1, 1, n)
    H, D = t.hessian(x, w=w, sparse=True), t.hessian(x, w=w)
    assert np.array_equal(H.toarray(), D)
    assert nonzeros(D) <= pattern_set(t.hessian_sparsity()) == pattern_set(H)
    small = ad.record(lambda u: u[0] * u[1], np.ones(2))         # m < 3: no colouring
    assert np.array_equal(small.hessian(np.ones(2), sparse=True).toarray(), [[0, 1], [1, 0]])


# ---- the cache follows the recording ------------------------------------------------------------
def test_rerecord_invalidates_the_cache():
    def f(x):
        if x[0] > 0:
            return tridiagonal(list(x))
        return [xi * xi for xi in x]                     # diagonal
    n = 20
    t = ad.record(f, np.ones(n))
    x = np.linspace(0.5, 1.5, n)
    assert pattern_set(t.jacobian_sparsity()) == tridiagonal_pattern(n)
    check_equal(t, x)
    assert t.stats()["colours"]["jacobian"] == (3, 0)
    x[0] = -1.0                                          # the guard flips: f is recorded again
    S = t.jacobian(x, sparse=True)
    assert t.stats()["rerecords"] == 1
    assert np.array_equal(S.toarray(), np.diag(2 * x))
    assert t.stats()["colours"]["jacobian"] == (1, 0)
    assert pattern_set(t.jacobian_sparsity()) == {(i, i) for i in range(n)}


def test_open_tape_is_not_cached():
    """While recording, the outputs may still change: nothing is kept until the tape closes."""
    with ad.Tape() as t:
        x = t.variables(np.ones(4))
        t.outputs([x[0] * x[1], x[2]])
        assert pattern_set(t.jacobian_sparsity()) == {(0, 0), (0, 1), (1, 2)}
        t.outputs([x[3] * x[0]])
        assert pattern_set(t.jacobian_sparsity()) == {(0, 0), (0, 3)}
        S = t.jacobian(np.arange(4.0), sparse=True)
        assert S.toarray().tolist() == [[3.0, 0.0, 0.0, 0.0]]
    assert pattern_set(t.jacobian_sparsity()) == {(0, 0), (0, 3)}


# ---- errors -------------------------------------------------------------------------------------
@pytest.fixture
def no_scipy(monkeypatch):
    for name in list(sys.modules):
        if name == "scipy" or name.startswith("scipy."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "scipy", None)      # import scipy raises ImportError
    monkeypatch.setitem(sys.modules, "scipy.sparse", None)


def test_without_scipy_import_error_names_the_extra(no_scipy):
    t = ad.record(lambda x: tridiagonal(list(x)), np.ones(5))
    for call in (lambda: t.jacobian(np.ones(5), sparse=True),
                 lambda: t.hessian(np.ones(5), w=np.ones(5), sparse=True),
                 t.jacobian_sparsity, t.hessian_sparsity):
        with pytest.raises(ImportError, match=r"tapead\[sparse\]"):
            call()
    assert t.jacobian(np.ones(5)).shape == (5, 5)        # dense needs no SciPy


def test_bad_input():
    t = ad.record(lambda x: tridiagonal(list(x)), np.ones(5))
    with pytest.raises(ValueError, match="shape"):
        t.jacobian(np.ones(4), sparse=True)
    with pytest.raises(TypeError):
        t.jacobian(["a"] * 5, sparse=True)
    with pytest.raises(TypeError, match="sparse must be True or False"):
        t.jacobian(np.ones(5), sparse="yes")
    with pytest.raises(ValueError, match="mode"):
        t.jacobian(np.ones(5), mode="sideways", sparse=True)
    with pytest.raises(ValueError, match="weights w"):
        t.hessian(np.ones(5), sparse=True)               # vector output without w
    tape = ad.Tape()
    with tape:
        v = tape.variables(np.ones(3))
        v * 2.0
    for call in (lambda: tape.jacobian(np.ones(3), sparse=True), tape.jacobian_sparsity,
                 tape.hessian_sparsity):
        with pytest.raises(TapeError, match="no outputs"):
            call()


def test_colouring_over_budget_falls_back_to_unit_directions(monkeypatch):
    monkeypatch.setattr(sparse_mod, "COLOUR_BUDGET", 0)
    n = 12
    t = ad.record(lambda x: tridiagonal(list(x)), np.linspace(0.5, 1.5, n))
    check_equal(t, np.linspace(-1, 1, n), "forward")
    assert t.stats()["colours"]["jacobian"] == (n, 0)
