"""Control flow and safe replay (docs/API.md §6): branch guards, re-recording,
ad.BranchChanged, and ad.where.

Piecewise programs are recorded at one point and replayed on the other side of each branch; the
results must equal a fresh recording at the new point (bit for bit: a re-recording *is* a fresh
recording) and independent oracles (closed forms, NumPy's linear algebra, central differences of
the same program on plain floats).
"""
import math
import os
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import tapead as ad

from helpers import run_in_threads

HERE = os.path.basename(__file__)


def line_of(marker):
    """Line number (1-based) of the line of this file that holds `marker` (and is not this
    call)."""
    lines = Path(__file__).read_text().splitlines()
    hits = [i + 1 for i, s in enumerate(lines) if marker in s and "line_of(" not in s]
    assert len(hits) == 1, (marker, hits)
    return hits[0]


def fd(f, x, rel=None):
    """Central differences of f on plain floats (the seed's numerical method); `rel` gives a step
    relative to |x| (for inputs far below 1)."""
    return ad.finite_diff(f, x, h=None if rel is None else rel * np.abs(x))


def rerecords(tape):
    return tape.stats()["rerecords"]


# ---- piecewise programs (each works on Vars and on plain floats) ----------------------------
def piecewise(x):
    if x > 1.0:                                              # GUARD-PIECEWISE
        return x * x * ad.sin(x)
    else:
        return 3.0 * x - ad.exp(x)


def piecewise_grad(x):
    return 2 * x * math.sin(x) + x * x * math.cos(x) if x > 1 else 3.0 - math.exp(x)


def max_if(x):
    """max via `if`, then something smooth."""
    m = x[0]
    for xi in x[1:]:
        if xi > m:
            m = xi
    return m * m + ad.sum(x)


def max_if_grad(x):
    g = np.ones_like(x)
    k = int(np.argmax(x))
    g[k] += 2 * x[k]
    return g


def clipped(x):
    """Σ clip(x_i, -1, 1)·exp(x_i), clipping by if/elif/else."""
    s = 0.0
    for xi in x:
        if xi < -1.0:
            c = -1.0
        elif xi > 1.0:
            c = 1.0
        else:
            c = xi
        s = s + c * ad.exp(xi)
    return s


def clipped_grad(x):
    return np.where(x < -1, -np.exp(x), np.where(x > 1, np.exp(x), (1 + x) * np.exp(x)))


def newton_cbrt(a, steps=None):
    """a^(1/3) by Newton's method, stopping when the step is below 1e-15·x: the number of steps
    (and so the tape) depends on a."""
    x = a if a > 1.0 else 1.0 + 0.0 * a
    for k in range(200):
        dx = (x * x * x - a) / (3.0 * x * x)
        x = x - dx
        if abs(dx) <= 1e-15 * x:
            break
    if steps is not None:
        steps.append(k + 1)
    return x


def newton_steps(a):
    s = []
    newton_cbrt(float(a), s)
    return s[0]


def halvings(x):
    """A while loop: halve until below 1, then a smooth function of the result and the count."""
    n = 0
    while x > 1.0:
        x = x / 2.0
        n += 1
    return x * x + ad.sin(x) * n


def halvings_count(x):
    n = 0
    while x > 1.0:
        x, n = x / 2.0, n + 1
    return n


def halvings_grad(x):
    n = halvings_count(x)
    r = x / 2.0 ** n
    return (2 * r + math.cos(r) * n) / 2.0 ** n


def builtin_maxmin(x):
    """Python's builtin max/min and sorted on Vars (their comparisons are guards)."""
    hi = max(x[0], x[1], x[2])
    lo = min(x[0] * x[1], x[2])
    med = sorted([x[0], x[1], x[2]])[1]
    return hi * lo + med


def builtin_maxmin_grad(x):
    x = np.asarray(x, dtype=float)
    g = np.zeros(3)
    i_hi = int(np.argmax(x))
    hi = x[i_hi]
    if x[0] * x[1] < x[2]:
        lo = x[0] * x[1]
        g[0] += hi * x[1]
        g[1] += hi * x[0]
    else:
        lo = x[2]
        g[2] += hi
    g[i_hi] += lo
    g[int(np.argsort(x)[1])] += 1.0
    return g


N_LU = 3


def lu_solve(z):
    """Solve A y = b by Gaussian elimination with partial pivoting (the pivot by builtin max with
    a key: comparisons of Vars); z = A.ravel() ++ b."""
    n = N_LU
    A = [[z[i * n + j] for j in range(n)] for i in range(n)]
    b = [z[n * n + i] for i in range(n)]
    for k in range(n):
        p = max(range(k, n), key=lambda i: abs(A[i][k]))
        A[k], A[p] = A[p], A[k]
        b[k], b[p] = b[p], b[k]
        for i in range(k + 1, n):
            li = A[i][k] / A[k][k]
            for j in range(k, n):
                A[i][j] = A[i][j] - li * A[k][j]
            b[i] = b[i] - li * b[k]
    y = [None] * n
    for i in reversed(range(n)):
        s = b[i]
        for j in range(i + 1, n):
            s = s - A[i][j] * y[j]
        y[i] = s / A[i][i]
    return y


def lu_oracle(z):
    """y = A⁻¹ b and its Jacobian: ∂y/∂b = A⁻¹, ∂y/∂A_ij = -A⁻¹[:, i]·y_j."""
    n = N_LU
    A, b = z[:n * n].reshape(n, n), z[n * n:]
    Ai = np.linalg.inv(A)
    y = Ai @ b
    JA = -np.einsum("ki,j->kij", Ai, y).reshape(n, n * n)
    return y, np.hstack([JA, Ai])


A0 = np.array([[4.0, 1.0, -0.5], [0.5, 3.0, 1.0], [-1.0, 0.25, 5.0]])   # no row swaps
B0 = np.array([1.0, -2.0, 0.5])
Z0 = np.concatenate([A0.ravel(), B0])
Z_SWAP = np.concatenate([A0[[2, 0, 1]].ravel(), B0[[2, 0, 1]]])        # other pivots
Z_NEAR = Z0 + 1e-3 * np.arange(12)                                       # the same pivots


def pivots(z):
    """The row chosen at each step of lu_solve on plain floats."""
    n = N_LU
    A = z[:n * n].reshape(n, n).copy()
    out = []
    for k in range(n):
        p = k + int(np.argmax(np.abs(A[k:, k])))
        out.append(p)
        A[[k, p]] = A[[p, k]]
        A[k + 1:] -= np.outer(A[k + 1:, k] / A[k, k], A[k])
    return out


# ---- recorded on one side, replayed on the other ----------------------------------------------
SCALAR_CASES = [
    # (f, recording point, replay points, closed-form gradient, the path taken at a point)
    pytest.param(piecewise, 2.0, [0.5, 3.0, -1.0, -2.0], piecewise_grad, lambda x: x > 1,
                 id="if-else"),
    pytest.param(halvings, 3.0, [10.0, 0.5, 100.0, 3.5, 0.75], halvings_grad, halvings_count,
                 id="while"),
    pytest.param(newton_cbrt, 2.0, [1000.0, 0.3, 1e-3, 5.5e7, 5.6e7],
                 lambda a: a ** (-2.0 / 3.0) / 3.0, newton_steps, id="newton"),
]


@pytest.mark.parametrize("f, x0, points, grad, path", SCALAR_CASES)
def test_scalar_branches_replayed_on_the_other_side(f, x0, points, grad, path):
    tape = ad.record(f, x0)
    assert tape.stats()["guards"] >= 1
    expected, last = 0, path(x0)
    assert len({path(x) for x in [x0] + points}) >= 2
    for x in points:
        fresh = ad.record(f, x)
        g = tape.gradient(x)
        expected += path(x) != last                 # a re-recording exactly when the path differs
        last = path(x)
        assert rerecords(tape) == expected
        assert g == fresh.gradient(x)
        assert tape.forward(x) == fresh.forward(x)
        assert_allclose(tape.forward(x), f(x), rtol=1e-15)
        assert_allclose(g, grad(x), rtol=1e-12)
        assert_allclose(g, fd(f, x, rel=1e-5), rtol=1e-7)
        assert rerecords(tape) == expected          # forward at the same point: no flip
    assert expected >= 3


def test_newton_steps_depend_on_the_input():
    steps = {a: newton_steps(a) for a in (2.0, 1000.0, 1e-3)}
    assert len(set(steps.values())) == 3, steps          # each point its own tape length
    tape = ad.record(newton_cbrt, 2.0)
    n0 = len(tape)
    tape.gradient(1000.0)
    assert rerecords(tape) == 1 and len(tape) > n0
    assert len(tape) == len(ad.record(newton_cbrt, 1000.0))
    # a nearby point with the same number of steps takes every branch as recorded
    a_near = 1000.0 * (1 + 1e-9)
    assert newton_steps(a_near) == steps[1000.0]
    assert_allclose(tape.gradient(a_near), a_near ** (-2 / 3) / 3, rtol=1e-12)
    assert rerecords(tape) == 1


VECTOR_CASES = [
    pytest.param(max_if, np.array([1.0, 3.0, 2.0]),
                 [np.array([4.0, 3.0, 2.0]), np.array([1.0, 3.0, 5.0]),
                  np.array([-1.0, -3.0, -2.0])], max_if_grad, id="max-via-if"),
    pytest.param(clipped, np.array([-2.0, 0.5, 1.5]),
                 [np.array([0.5, -2.0, 0.25]), np.array([1.5, 1.25, -1.5]),
                  np.array([0.1, 0.2, 0.3])], clipped_grad, id="clip"),
    pytest.param(builtin_maxmin, np.array([1.0, 2.0, 3.0]),
                 [np.array([3.0, 2.0, 1.0]), np.array([0.5, 0.25, 2.0]),
                  np.array([2.0, 3.0, 1.0])], builtin_maxmin_grad, id="builtin-max-min-sorted"),
]


@pytest.mark.parametrize("f, x0, points, grad", VECTOR_CASES)
def test_vector_branches_replayed_on_the_other_side(f, x0, points, grad):
    tape = ad.record(f, x0)
    assert tape.stats()["guards"] >= 2
    for k, x in enumerate(points, 1):
        fresh = ad.record(f, x)
        g = tape.gradient(x)
        assert rerecords(tape) == k
        assert_array_equal(g, fresh.gradient(x))
        assert_allclose(g, grad(x), rtol=1e-13, atol=1e-14)
        assert_allclose(g, fd(f, x), rtol=1e-8, atol=1e-9)
        J = tape.jacobian(x, mode="forward")
        assert_array_equal(J, fresh.jacobian(x, mode="forward"))
        assert rerecords(tape) == k


def test_lu_with_pivoting_re_records_when_the_pivots_change():
    assert pivots(Z0) == [0, 1, 2] and pivots(Z_SWAP) != pivots(Z0)
    assert pivots(Z_NEAR) == pivots(Z0)
    tape = ad.record(lu_solve, Z0)
    for z, n_rerecords in [(Z0, 0), (Z_NEAR, 0), (Z_SWAP, 1), (Z_NEAR, 2)]:
        y, J = lu_oracle(z)
        assert_allclose(tape(z), y, rtol=1e-13)
        for mode in ("forward", "reverse"):
            Jz = tape.jacobian(z, mode=mode)
            assert_allclose(Jz, J, rtol=1e-12, atol=1e-14)
            assert_array_equal(Jz, ad.record(lu_solve, z).jacobian(z, mode=mode))
        assert rerecords(tape) == n_rerecords
    assert_allclose(tape.jacobian(Z_SWAP), fd(lambda z: np.array(lu_solve(z)), Z_SWAP),
                    rtol=1e-7, atol=1e-9)


def test_replays_where_no_guard_flips_do_not_re_record():
    tape = ad.record(clipped, np.array([-2.0, 0.5, 1.5]))
    ops, guards = len(tape), tape.stats()["guards"]
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = np.array([-3.0, 0.0, 2.0]) + rng.uniform(-0.9, 0.9, 3)
        assert_allclose(tape.gradient(x), clipped_grad(x), rtol=1e-14)
        tape.forward(x)
        tape.jvp(x, np.ones(3))
        tape.vjp(x, 1.0)
        tape.hessian(x)
    assert rerecords(tape) == 0
    assert len(tape) == ops and tape.stats()["guards"] == guards


def test_back_and_forth_re_records_each_time():
    tape = ad.record(piecewise, 2.0)
    for k, x in enumerate([0.5, 2.0, 0.5, 2.0], 1):
        assert_allclose(tape.gradient(x), piecewise_grad(x), rtol=1e-15)
        assert rerecords(tape) == k


# ---- every replay re-records -----------------------------------------------------------------
def two_sided(x):
    """R^2 -> R: a branch on x0 with different smooth pieces."""
    if x[0] > 0:
        return ad.exp(x[0]) * x[1] ** 3
    return ad.sin(x[1]) * x[0] ** 2 + x[1]


X_POS, X_NEG = np.array([0.5, 1.5]), np.array([-0.5, 1.5])
V2, W1 = np.array([0.3, -0.7]), 1.0

REPLAYS = {
    "forward": lambda t, x: t.forward(x),
    "call": lambda t, x: t(x),
    "gradient": lambda t, x: t.gradient(x),
    "jvp": lambda t, x: t.jvp(x, V2),
    "jvp-k": lambda t, x: t.jvp(x, np.eye(2)),
    "vjp": lambda t, x: t.vjp(x, W1),
    "jacobian-fwd": lambda t, x: t.jacobian(x, mode="forward"),
    "jacobian-rev": lambda t, x: t.jacobian(x, mode="reverse"),
    "jacobian-auto": lambda t, x: t.jacobian(x),
    "hvp": lambda t, x: t.hvp(x, V2),
    "hessian": lambda t, x: t.hessian(x),
    "taylor": lambda t, x: t.taylor(x, V2, order=4),
}


def flat(r):
    if isinstance(r, tuple):
        return np.concatenate([np.ravel(e) for e in r])
    return np.ravel(r)


@pytest.mark.parametrize("replay", list(REPLAYS))
def test_every_replay_re_records(replay):
    call = REPLAYS[replay]
    tape = ad.record(two_sided, X_POS)
    want = call(ad.record(two_sided, X_NEG), X_NEG)
    got = call(tape, X_NEG)
    assert rerecords(tape) == 1
    assert_array_equal(flat(got), flat(want))
    # the answer on the negative side by hand: f = sin(x1)·x0² + x1
    x0, x1 = X_NEG
    g = np.array([2 * x0 * math.sin(x1), x0 ** 2 * math.cos(x1) + 1])
    H = np.array([[2 * math.sin(x1), 2 * x0 * math.cos(x1)],
                  [2 * x0 * math.cos(x1), -x0 ** 2 * math.sin(x1)]])
    oracle = {
        "gradient": g, "jvp": np.concatenate([[two_sided(X_NEG)], [g @ V2]]),
        "jacobian-fwd": g, "jacobian-rev": g, "jacobian-auto": g, "hvp": H @ V2,
        "hessian": H.ravel(),
    }
    if replay in oracle:
        assert_allclose(flat(got), oracle[replay], rtol=1e-14)
    # back on the recorded side: another re-recording
    call(tape, X_POS)
    assert rerecords(tape) == 2


def test_taylor_after_re_record_matches_the_series():
    tape = ad.record(two_sided, X_POS)
    c = tape.taylor(X_NEG, V2, order=3)
    # f(x + t v) on the negative side, coefficients by a fresh recording and by hand (order 1)
    assert_array_equal(c, ad.record(two_sided, X_NEG).taylor(X_NEG, V2, order=3))
    assert rerecords(tape) == 1
    h = 1e-3
    d2 = (two_sided(X_NEG + h * V2) - 2 * two_sided(X_NEG) + two_sided(X_NEG - h * V2)) / h ** 2
    assert_allclose(2 * c[2], d2, rtol=1e-5)


def test_multiple_arguments_re_record():
    def f(a, b):
        return a * ad.sum(b) if a > ad.sum(b) else ad.sum(b * b)
    tape = ad.record(f, 5.0, np.array([1.0, 2.0]))
    ga, gb = tape.gradient((1.0, np.array([1.0, 2.0])))
    assert rerecords(tape) == 1
    assert ga == 0.0
    assert_array_equal(gb, [2.0, 4.0])
    ga, gb = tape.gradient((5.0, np.array([1.0, 2.0])))
    assert rerecords(tape) == 2 and ga == 3.0
    assert_array_equal(gb, [5.0, 5.0])


# ---- imperative tapes raise BranchChanged --------------------------------------------------------
def guarded(x, op):
    if op == "<":
        return x * x if x < 1.0 else x          # GUARD-REL-LT
    if op == "<=":
        return x * x if x <= 1.0 else x         # GUARD-REL-LE
    if op == ">":
        return x * x if x > 1.0 else x          # GUARD-REL-GT
    if op == ">=":
        return x * x if x >= 1.0 else x         # GUARD-REL-GE
    if op == "==":
        return x * x if x == 1.0 else x         # GUARD-REL-EQ
    return x * x if x != 1.0 else x             # GUARD-REL-NE


REL_CASES = [("<", 0.5, 2.0, "LT"), ("<=", 1.0, 1.5, "LE"), (">", 2.0, 1.0, "GT"),
             (">=", 1.0, 0.5, "GE"), ("==", 1.0, 1.25, "EQ"), ("!=", 1.0, 3.0, "NE")]


@pytest.mark.parametrize("op, x0, x1, tag", REL_CASES, ids=[c[0] for c in REL_CASES])
def test_branch_changed_names_guard_values_and_line(op, x0, x1, tag):
    with ad.Tape() as t:
        x = t.variables(x0)
        t.outputs(guarded(x, op))
    was = {"<": x0 < 1, "<=": x0 <= 1, ">": x0 > 1, ">=": x0 >= 1, "==": x0 == 1,
           "!=": x0 != 1}[op]
    with pytest.raises(ad.BranchChanged) as e:
        t.gradient(x1)
    msg = str(e.value)
    assert isinstance(e.value, ad.TapeError)
    assert f"v[0] {op} 1.0" in msg
    assert f"{HERE}:{line_of('GUARD-REL-' + tag)}" in msg
    assert f"was {was} at recording (v[0] = {x0!r})" in msg
    assert f"is {not was} now (v[0] = {x1!r})" in msg
    # the tape is still usable where the guard holds
    assert t.gradient(x0) == (2 * x0 if was else 1.0)


def test_branch_changed_for_var_vs_var_names_both_operands():
    with ad.Tape() as t:
        a, b = t.variables([1.0, 2.0])
        y = a * b if a < b else a - b           # GUARD-VAR-VAR
        t.outputs(y)
    with pytest.raises(ad.BranchChanged) as e:
        t.forward([3.0, 2.5])
    msg = str(e.value)
    assert "v[-1] < v[0]" in msg
    assert "(v[-1] = 1.0, v[0] = 2.0)" in msg and "(v[-1] = 3.0, v[0] = 2.5)" in msg
    assert f"{HERE}:{line_of('GUARD-VAR-VAR')}" in msg
    assert_array_equal(t.gradient([2.0, 3.0]), [3.0, 2.0])      # same side: fine


def test_branch_changed_from_bool_of_a_var_and_builtin_max():
    with ad.Tape() as t:
        x = t.variables([1.0, 2.0])
        d = x[1] - x[0]
        y = x[0] if d else x[1]                 # GUARD-BOOL
        t.outputs(y)
    with pytest.raises(ad.BranchChanged) as e:
        t.forward([2.0, 2.0])
    msg = str(e.value)
    assert "!= 0.0" in msg and f"{HERE}:{line_of('GUARD-BOOL')}" in msg
    assert "was True at recording (v[1] = 1.0)" in msg and "(v[1] = 0.0)" in msg

    with ad.Tape() as t:
        x = t.variables([1.0, 2.0])
        t.outputs(max(x[0], x[1]) * 2.0)        # GUARD-BUILTIN-MAX
    assert_array_equal(t.gradient([0.0, 5.0]), [0.0, 2.0])
    with pytest.raises(ad.BranchChanged, match=f"{HERE}:{line_of('GUARD-BUILTIN-MAX')}"):
        t.gradient([5.0, 0.0])


@pytest.mark.parametrize("replay", list(REPLAYS))
def test_imperative_tape_raises_in_every_replay_and_stays_usable(replay):
    with ad.Tape() as t:
        x = t.variables(X_POS)
        t.outputs(two_sided(x))
    want = REPLAYS[replay](ad.record(two_sided, X_POS), X_POS)
    with pytest.raises(ad.BranchChanged, match="two_sided|test_control_flow.py"):
        REPLAYS[replay](t, X_NEG)
    with pytest.raises(ad.TapeError):
        REPLAYS[replay](t, X_NEG)
    assert_array_equal(flat(REPLAYS[replay](t, X_POS)), flat(want))
    assert t.stats()["rerecords"] == 0


def test_x_none_after_a_re_recording_is_the_new_point():
    tape = ad.record(two_sided, X_POS)
    g = tape.gradient(X_NEG)
    assert rerecords(tape) == 1
    assert_array_equal(tape.gradient(), g)
    assert tape.forward() == two_sided(X_NEG) and rerecords(tape) == 1


def test_f_raising_at_the_new_point_leaves_the_tape_as_it_was():
    def f(x):
        if x > 0:
            return x * 2.0
        raise ValueError("f is defined for x > 0 only")
    tape = ad.record(f, 1.0)
    ops = len(tape)
    with pytest.raises(ValueError, match="x > 0 only"):
        tape.gradient(-1.0)
    assert rerecords(tape) == 0 and len(tape) == ops
    assert tape.gradient(3.0) == 2.0 and tape.forward(3.0) == 6.0


def test_backward_and_recording_point_need_no_check():
    with ad.Tape() as t:
        x = t.variables(2.0)
        y = piecewise(x)
        t.outputs(y)
    y.backward()
    assert x.grad == piecewise_grad(2.0)
    assert t.gradient(3.0) == piecewise_grad(3.0)
    with pytest.raises(ad.BranchChanged, match=f"{HERE}:{line_of('GUARD-PIECEWISE')}"):
        t.gradient(0.5)


def test_branch_changed_in_threads_names_each_threads_values():
    with ad.Tape() as t:
        x = t.variables(1.0)
        t.outputs(x * x if x < 2.0 else x)      # GUARD-THREADS
    site = f"{HERE}:{line_of('GUARD-THREADS')}"
    n_threads, rounds = 8, 30

    def worker(k):
        for r in range(rounds):
            x1 = 2.0 + k + r / 64
            with pytest.raises(ad.BranchChanged) as e:
                t.gradient(x1)
            msg = str(e.value)
            assert f"is False now (v[0] = {x1!r})" in msg and site in msg, msg
            assert t.gradient(1.0 - k / 16) == 2.0 * (1.0 - k / 16)

    run_in_threads(worker, n_threads)


# ---- what is not a guard ----------------------------------------------------------------------
def test_plain_comparisons_stay_plain():
    with ad.Tape() as t:
        x = t.variables(2.0)
        a, b = 1.0, np.float64(2.0)
        assert a < b and not (a == b)               # plain numbers: nothing recorded
        y = x * 3.0
        t.outputs(y)
    assert t.stats()["guards"] == 0 and len(t) == 1
    assert t.gradient(-5.0) == 3.0


def test_comparisons_after_the_recording_ended_stay_plain():
    with ad.Tape() as t:
        x, z = t.variables([2.0, 3.0])
        y = x * 3.0
        t.outputs(y)
    # after the recording ended: plain bools, nothing recorded, replays unaffected
    assert (x > 1.0) is True and (y < 1.0) is False and (x < z) is True and bool(x) is True
    assert t.stats()["guards"] == 0 and len(t) == 1
    assert t.gradient([-5.0, 1.0]).tolist() == [3.0, 0.0]
    # Vars of a closed tape compared while another tape records: plain on both
    with ad.Tape() as t2:
        w = t2.variables(1.0)
        assert (x > 0.5) is True
        t2.outputs(w * 2)
    assert t2.stats()["guards"] == 0 and t.stats()["guards"] == 0


def test_comparison_returns_cond_that_guards_when_its_truth_is_taken():
    with ad.Tape() as t:
        x = t.variables([1.0, 2.0])
        r = [x[0] < x[1], x[0] <= 1.0, 3.0 > x[1], x[0] >= x[1], x[0] == 1.0, x[1] != 2.0]
        assert all(type(e) is ad.Cond for e in r) and t.stats()["guards"] == 0
        assert r == [True, True, True, False, True, False]    # == takes each truth value
        t.outputs(x[0] + x[1])
    assert t.stats()["guards"] == 6
    # 3.0 > x[1] is Python's reflected x[1] < 3.0
    assert {k: v for k, v in t.stats()["by_opcode"].items() if k in
            ("lt", "le", "gt", "ge", "eq", "ne")} == {"lt": 2, "le": 1, "ge": 1, "eq": 1, "ne": 1}


def test_abs_maximum_minimum_sign_are_ops_not_guards():
    def f(x):
        return abs(x[0]) + ad.maximum(x[0], x[1]) * ad.minimum(x[1], x[2]) + ad.sign(x[2]) * x[2]
    tape = ad.record(f, np.array([1.0, 2.0, 3.0]))
    assert tape.stats()["guards"] == 0
    for x in ([-1.0, -2.0, -3.0], [2.0, 1.0, 0.5], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]):
        x = np.array(x)
        g = tape.gradient(x)
        # one-sided conventions: abs'(0) = 0, ties split ½/½, sign' = 0
        a, b, c = x
        mx, mn = max(a, b), min(b, c)
        dmax = np.array([1.0, 0.0]) if a > b else np.array([0.0, 1.0]) if b > a else \
            np.array([0.5, 0.5])
        dmin = np.array([1.0, 0.0]) if b < c else np.array([0.0, 1.0]) if c < b else \
            np.array([0.5, 0.5])
        want = np.array([np.sign(a), 0.0, np.sign(c)])
        want[:2] += dmax * mn
        want[1:] += dmin * mx
        assert_allclose(g, want, rtol=1e-15)
    assert rerecords(tape) == 0


def test_branch_free_clipping_with_maximum_minimum_and_np_clip_guards():
    def clip_ops(x):
        return ad.sum(ad.minimum(ad.maximum(x, -1.0), 1.0) * ad.exp(x))

    def clip_np(x):
        return ad.sum(np.clip(x, -1.0, 1.0) * ad.exp(x))   # NumPy compares: guards
    x0 = np.array([-2.0, 0.5, 1.5])
    t_ops, t_np = ad.record(clip_ops, x0), ad.record(clip_np, x0, arrays=False)   # NumPy's clip
    assert t_ops.stats()["guards"] == 0 and t_np.stats()["guards"] > 0
    for x in (np.array([0.5, -2.0, 0.25]), np.array([1.5, 1.25, -1.5]), x0):
        assert_allclose(t_ops.gradient(x), clipped_grad(x), rtol=1e-15)
        assert_allclose(t_np.gradient(x), clipped_grad(x), rtol=1e-15)
    assert rerecords(t_ops) == 0 and rerecords(t_np) == 3


# ---- threads ---------------------------------------------------------------------------------
def branchy_sum(x):
    s = 0.0
    for xi in x:
        if xi > 0:
            s = s + ad.sin(xi) * xi
        else:
            s = s - xi ** 3
    return s


def test_threads_replaying_a_re_recording_tape():
    m, n_threads, rounds = 12, 8, 25
    rng = np.random.default_rng(1)
    points = [rng.uniform(-1, 1, m) for _ in range(12)]
    want = [(ad.record(branchy_sum, p).forward(), ad.record(branchy_sum, p).gradient())
            for p in points]
    tape = ad.record(branchy_sum, points[0])

    def worker(k):
        for r in range(rounds):
            i = (3 * k + r) % len(points)
            g = tape.gradient(points[i])
            assert_array_equal(g, want[i][1], err_msg=f"thread {k} round {r}")
            assert tape.forward(points[i]) == want[i][0]

    run_in_threads(worker, n_threads)
    assert rerecords(tape) >= 1
    # afterwards the tape still answers right on both sides
    for p, (y, g) in zip(points, want):
        assert_array_equal(tape.gradient(p), g)


# ---- ad.where -----------------------------------------------------------------------------------
def sqrt_or_zero(x):
    return ad.where(x > 0, ad.sqrt(x), 0.0)


def log_or_x(x):
    return ad.where(x > 0, ad.log(x), x)


def recip_or_square(x):
    return ad.where(x != 0, 1.0 / x, x * x)


WHERE_CASES = [
    # f, recording point, [(x, value, derivative)]
    pytest.param(sqrt_or_zero, 4.0, [(4.0, 2.0, 0.25), (0.0, 0.0, 0.0), (-1.0, 0.0, 0.0),
                                     (-1e300, 0.0, 0.0), (1e-100, 1e-50, 0.5e50)],
                 id="sqrt-or-0"),
    pytest.param(sqrt_or_zero, -4.0, [(9.0, 3.0, 1 / 6), (0.0, 0.0, 0.0), (-2.0, 0.0, 0.0)],
                 id="sqrt-or-0-recorded-negative"),
    pytest.param(log_or_x, 2.0, [(2.0, math.log(2), 0.5), (-3.0, -3.0, 1.0), (0.0, 0.0, 1.0)],
                 id="log-or-x"),
    pytest.param(recip_or_square, 0.5, [(0.5, 2.0, -4.0), (0.0, 0.0, 0.0), (-2.0, -0.5, -0.25)],
                 id="recip-or-square"),
]


@pytest.mark.parametrize("f, x0, points", WHERE_CASES)
def test_where_scalar_both_sides_finite_no_re_record(f, x0, points):
    tape = ad.record(f, x0)
    assert tape.stats()["guards"] == 0
    assert tape.stats()["by_opcode"]["where"] == 1
    for x, value, deriv in points:
        assert tape.forward(x) == value
        for got in (tape.gradient(x), tape.jvp(x, 1.0)[1], tape.vjp(x, 1.0)[1],
                    float(tape.jacobian(x, mode="forward")),
                    float(tape.jacobian(x, mode="reverse"))):
            assert math.isfinite(got)
            assert_allclose(got, deriv, rtol=1e-15)
        assert np.all(np.isfinite(tape.hessian(x)))
        assert np.all(np.isfinite(tape.taylor(x, 1.0, order=3)))
    assert rerecords(tape) == 0 and tape.stats()["guards"] == 0


def test_where_second_order_follows_the_selected_branch():
    tape = ad.record(log_or_x, 2.0)
    assert tape.hessian(2.0) == -0.25 and tape.hessian(-2.0) == 0.0
    assert_allclose(tape.taylor(2.0, 1.0, order=3), [math.log(2), 0.5, -0.125, 1 / 24],
                    rtol=1e-15)
    assert_array_equal(tape.taylor(-2.0, 1.0, order=3), [-2.0, 1.0, 0.0, 0.0])
    assert rerecords(tape) == 0


def test_where_two_inputs_derivative_only_through_selected():
    def f(x):
        return ad.where(x[0] > x[1], x[0] * x[1] * x[1], ad.exp(x[0] - x[1]))
    tape = ad.record(f, np.array([2.0, 1.0]))
    assert tape.stats()["guards"] == 0
    assert_allclose(tape.gradient([2.0, 1.0]), [1.0, 4.0], rtol=1e-15)
    e = math.exp(-1.0)
    assert_allclose(tape.gradient([1.0, 2.0]), [e, -e], rtol=1e-15)
    assert_allclose(tape.gradient([3.0, 0.5]), fd(f, np.array([3.0, 0.5])), rtol=1e-9)
    assert rerecords(tape) == 0


def relu_sq(a):
    return ad.where(np.greater(a, 0, dtype=object), a ** 2, -a)    # an object array of Conds


def relu_sq_guarded(a):
    return ad.where(a > 0, a ** 2, -a)        # NumPy turns an object array's comparisons to bools


def test_where_on_numpy_bools_of_object_arrays_keeps_their_guards():
    x0 = np.array([1.0, -2.0, 3.0, -0.5])
    tape = ad.record(relu_sq_guarded, x0, arrays=False)          # object arrays' comparisons
    assert tape.stats()["guards"] == 4
    x = np.array([-1.0, 2.0, 3.0, 4.0])
    assert_array_equal(tape(x), np.where(x > 0, x ** 2, -x))
    assert_array_equal(tape.jacobian(x),
                       np.diag(np.where(x > 0, 2 * x, -1.0)))
    assert rerecords(tape) == 1


def test_where_elementwise_on_object_arrays():
    x0 = np.array([1.0, -2.0, 3.0, -0.5])
    tape = ad.record(relu_sq, x0, arrays=False)        # ad.where over object arrays
    st = tape.stats()
    assert st["guards"] == 0 and st["by_opcode"]["where"] == 4
    for x in (x0, -x0, np.array([0.0, 2.0, -1e-300, 7.0]), np.zeros(4)):
        want_y = np.where(x > 0, x ** 2, -x)
        want_J = np.diag(np.where(x > 0, 2 * x, -1.0))
        assert_array_equal(tape(x), want_y)
        assert_array_equal(tape.jacobian(x, mode="forward"), want_J)
        assert_array_equal(tape.jacobian(x, mode="reverse"), want_J)
    assert rerecords(tape) == 0

    # the NaN side elementwise, with a scalar broadcast in the other operand
    with np.errstate(invalid="ignore"):           # sqrt(-2) on the side not taken
        tape = ad.record(lambda a: ad.sum(ad.where(np.greater(a, 0, dtype=object), ad.sqrt(a),
                                                   0.0) * a), x0, arrays=False)
    assert tape.stats()["guards"] == 0
    x = np.array([4.0, -1.0, 0.0, 1.0])
    assert_allclose(tape.gradient(x), [3.0, 0.0, 0.0, 1.5], rtol=1e-15)
    assert rerecords(tape) == 0


def test_where_var_condition_nonzero_is_true():
    tape = ad.record(lambda c, a: ad.where(c, a * a, -a), 1.0, 3.0)
    assert tape.stats()["guards"] == 0
    for c, dc in [(0.0, -1.0), (2.0, 6.0), (-2.0, 6.0), (1e-300, 6.0), (-0.0, -1.0)]:
        gc, ga = tape.gradient((c, 3.0))
        assert gc == 0.0 and ga == dc
    assert rerecords(tape) == 0


def cond_on_earlier_line(x):
    c = x > 0
    return ad.where(c, x * x, -x)


def cond_on_earlier_line_also_branched(x):
    c = x > 0
    if c:                                        # GUARD-EARLIER-LINE
        pass
    return ad.where(c, x * x, -x)


def test_where_with_a_condition_from_an_earlier_line():
    tape = ad.record(cond_on_earlier_line, 2.0)
    assert tape.stats()["guards"] == 0           # the Cond is where's: no guard
    assert tape.gradient(3.0) == 6.0 and tape.gradient(-1.0) == -1.0
    assert tape.gradient(5.0) == 10.0 and rerecords(tape) == 0
    # the same Cond also taken as a bool: a guard (an `if` branched on it)
    tape = ad.record(cond_on_earlier_line_also_branched, 2.0)
    assert tape.stats()["guards"] == 1
    assert tape.gradient(3.0) == 6.0 and rerecords(tape) == 0
    assert tape.gradient(-1.0) == -1.0 and rerecords(tape) == 1
    with ad.Tape() as t:
        x = t.variables(2.0)
        t.outputs(cond_on_earlier_line_also_branched(x))
    assert t.gradient(3.0) == 6.0
    with pytest.raises(ad.BranchChanged, match=f"{HERE}:{line_of('GUARD-EARLIER-LINE')}"):
        t.gradient(-1.0)


def test_where_in_a_helper_and_in_a_loop():
    def relu(v):
        return ad.where(v > 0, v, 0.0)

    def net(x):
        h = [relu(x[0] * 2.0 - x[1]), relu(x[1] - 1.0)]
        out = 0.0
        for i in range(2):
            out = out + ad.where(h[i] > 0.5, h[i] ** 2, h[i])
        return out
    tape = ad.record(net, np.array([1.0, 2.0]))
    assert tape.stats()["guards"] == 0
    rng = np.random.default_rng(3)
    for _ in range(10):
        x = rng.uniform(-2, 3, 2)
        assert_allclose(tape.gradient(x), ad.record(net, x).gradient(), rtol=1e-15)
        assert_allclose(tape.gradient(x), fd(net, x), rtol=1e-7, atol=1e-8)
    assert rerecords(tape) == 0


def test_where_plain_and_mixed():
    assert ad.where(True, 1.0, 2.0) == 1.0
    assert_array_equal(ad.where(np.array([True, False]), [1.0, 2.0], [3.0, 4.0]), [1.0, 4.0])
    with ad.Tape() as t:
        x = t.variables(2.0)
        y = ad.where(1.0 > 0.0, x * 3.0, x)      # a plain condition: just selects
        t.outputs(y)
    assert t.stats()["guards"] == 0 and "where" not in t.stats()["by_opcode"]
    assert t.gradient(-4.0) == 3.0


# ---- bugs: ad.where takes over a guard that is not its condition's -----------------------------
# _claim_guards takes the *last* n guards recorded inside the call's source span, and the
# outcome check passes whenever they happen to agree; a condition made of several comparisons
# (short-circuit `or`/`and`, a chained comparison) or an operand with its own comparison
# (a conditional expression) then has the wrong guard removed, and replays silently answer on
# the wrong branch. Correct behaviour: such a condition is not a single comparison, so its
# guards stay (conservative) and the replay re-records.
def where_or(x):
    return ad.where(x[0] > 0 or x[1] > 0, x[0] * x[1], x[0] + x[1])


def where_chained(x):
    return ad.where(0 < x < 1, x * x, -x)


def where_ifexp_operand(x):
    return ad.where(x > 0, ad.sqrt(x) if x > 1 else x, 0.0)


def where_array_ifexp(a):
    return ad.where(a > 0, a * 2.0 if a[0] > 5 else a * 3.0, -a)


def _plain_or(x):
    return x[0] * x[1] if (x[0] > 0 or x[1] > 0) else x[0] + x[1]


def test_where_condition_with_or_is_not_a_single_comparison():
    tape = ad.record(where_or, np.array([1.0, 1.0]))
    x = np.array([-1.0, 2.0])
    assert tape.forward(x) == _plain_or(x) == -2.0


def test_where_chained_comparison_condition():
    tape = ad.record(where_chained, -1.0)
    assert tape.forward(2.0) == -2.0
    assert tape.gradient(2.0) == -1.0


def test_where_operand_with_its_own_comparison():
    tape = ad.record(where_ifexp_operand, 4.0)
    assert tape.forward(0.5) == 0.5
    assert tape.gradient(0.5) == 1.0


def test_where_elementwise_operand_with_its_own_comparison():
    tape = ad.record(where_array_ifexp, np.array([6.0, 2.0]), arrays=False)   # object arrays
    assert_array_equal(tape.forward([6.0, -1.0]), [12.0, 1.0])
