"""Tape.optimize (csrc/optimize.c, tapead/optimize.py; docs/API.md "Optimising a tape").

Every kind of tape the suite records is optimised here and compared with its original at
several points in every mode: the op cases of op_cases.py (each wrapped so that it repeats
itself, forwards through exact identities and leaves dead code), random programs, the problem
suite of bench/problems.py, guards, ad.where, primitives and .value guards. The optimised tape
must give the same outputs bit for bit (a NaN may carry another payload: operands of a
commutative op may come in the other order), the same branch guards (a re-recording or a
BranchChanged naming the same line at the same points) and the same derivatives to rounding; it
must be its own optimisation, and leave the original as it was. No identity may be one that
fails at -0.0, inf or NaN.
"""
import copy
import gc
import math
import os
import re
import sys
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
from numpy.testing import assert_allclose

import tapead as ad
from tapead._core import Op, ffi, lib
from tapead.program import listing
from tapead.var import _make

from helpers import BINARY, program_steps, run_in_threads, run_program
from op_cases import CASES, operands

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "bench"))
try:
    import problems                               # bench/problems.py: the problem suite
except ImportError:                               # a tree without bench/
    problems = None
needs_problems = pytest.mark.skipif(problems is None, reason="bench/problems.py not found")

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

KEYS = ("cse", "folded", "identities", "dead", "ops_before", "ops_after")
SPECIAL = (0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, -1.5)


# ---- comparing a tape with its optimisation ---------------------------------------------------
def same_bits(a, b, what=""):
    """Equal to the bit (NaN: any NaN), shapes and types alike."""
    assert type(a) is type(b), what
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape, what
    ok = (a.view(np.uint64) == b.view(np.uint64)) | (np.isnan(a) & np.isnan(b))
    assert ok.all(), f"{what}: {a[~ok]} != {b[~ok]}"


def close(a, b, what=""):
    """Equal to rounding (accumulation order may differ)."""
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b), what
        for u, v in zip(a, b):
            close(u, v, what)
        return
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape, what
    finite = np.isfinite(a)
    scale = max(1.0, float(np.abs(a[finite]).max())) if finite.any() else 1.0
    assert_allclose(b, a, rtol=1e-9, atol=1e-9 * scale, equal_nan=True, err_msg=what)


def outcome(fn):
    """("ok", result) or ("raise", exception type, the line a BranchChanged names)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ("ok", fn())
    except ad.BranchChanged as e:
        return ("raise", ad.BranchChanged, re.findall(r"at (\S+:\d+)", str(e)))
    except (TypeError, ValueError, ZeroDivisionError) as e:
        return ("raise", type(e), None)


def modes(t, x, rng):
    """Every replay of tape t at x: (name, thunk, compare bitwise?)."""
    n, m, shape = t.n_outputs, t.n_inputs, np.shape(x)
    v = rng.normal(size=shape)
    V = rng.normal(size=shape + (3,))
    w = rng.normal(size=t._out_shape) if t._out_shape else rng.normal()
    W = rng.normal(size=(2,) + t._out_shape)
    out = [("forward", lambda: t(x), True),
           ("jvp", lambda: t.jvp(x, v), False), ("jvp3", lambda: t.jvp(x, V), False),
           ("vjp", lambda: t.vjp(x, w), False), ("vjp2", lambda: t.vjp(x, W), False),
           ("jacfwd", lambda: t.jacobian(x, mode="forward"), False),
           ("jacrev", lambda: t.jacobian(x, mode="reverse"), False),
           ("hvp", lambda: t.hvp(x, v, w if n > 1 else None), False),
           ("hessian", lambda: t.hessian(x, w if n > 1 else None), False),
           ("taylor", lambda: t.taylor(x, v, 3), False),
           ("jacsparse", lambda: t.jacobian(x, sparse=True).toarray(), False)]
    if n == 1:
        out.append(("gradient", lambda: t.gradient(x), False))
    return out if m else out[:1]


def finite(a):
    if isinstance(a, tuple):
        return all(finite(u) for u in a)
    return bool(np.all(np.isfinite(np.asarray(a, dtype=float))))


def regular(x):
    """Whether x keeps away from 0, inf, NaN and tiny numbers (every input of magnitude >= 1e-3,
    finite): derivatives of the random programs are compared there only."""
    x = np.asarray(x, dtype=float)
    return bool(np.all(np.isfinite(x) & (np.abs(x) >= 1e-3)))


def check_same(t, o, points, seed=0, loose=()):
    """o computes what t computes at every point, in every mode (the same exceptions and
    BranchChanged lines): outputs bit for bit, derivatives to rounding. At the loose points
    (0, inf, NaN, 5e-324, ...) derivatives are not compared: there one may be infinite, NaN
    through 0 * inf, or a sum of terms far larger than itself (x/x near 0: +-1/x), and merged
    adjoints, summed in another order, change it beyond rounding (w1*inf + w2*inf is NaN,
    (w1 + w2)*inf is not); outputs, guards and exceptions still are. So at a point where an
    output is not finite, and for a derivative the original has as inf or NaN (0 * inf: a
    compressed Hessian spreads its NaN by a colouring that dead code changes)."""
    for j, x in enumerate(list(points) + list(loose)):
        y = outcome(lambda: t(x))
        strict = j < len(points) and y[0] == "ok" and finite(y[1])
        for (name, a, bits), (_, b, _) in zip(modes(t, x, np.random.default_rng(seed + j)),
                                               modes(o, x, np.random.default_rng(seed + j))):
            ra, rb = outcome(a), outcome(b)
            what = f"{name} at {x}"
            assert ra[0] == rb[0], f"{what}: {ra} vs {rb}"
            if ra[0] == "raise":
                assert ra == rb, what
            else:
                if bits:
                    same_bits(ra[1], rb[1], what)
                elif name in ("jvp", "jvp3", "vjp", "vjp2"):
                    same_bits(ra[1][0], rb[1][0], what)
                    if strict and finite(ra[1][1]):
                        close(ra[1][1], rb[1][1], what)
                else:
                    if name == "taylor":
                        same_bits(ra[1][0], rb[1][0], what)
                    if strict and finite(ra[1]):
                        close(ra[1], rb[1], what)


def program_of(t):
    steps, consts, outputs = listing(t)
    return ([(s.op, s.operands, s.results) for s in steps], consts.view(np.uint64).tolist(),
            outputs.tolist())


def optimise(t):
    """t.optimize(), checked: the original unchanged, stats consistent, a fixed point."""
    before = program_of(t)
    o = t.optimize()
    assert program_of(t) == before, "the original tape changed"
    assert "optimized" not in t.stats() or t._optimize
    s = o.stats()["optimized"]
    assert set(s) == set(KEYS)
    assert s["ops_before"] == len(t) and s["ops_after"] == len(o) <= len(t)
    assert s["ops_before"] - s["ops_after"] == s["cse"] + s["folded"] + s["identities"] + \
        s["dead"]
    assert o.n_inputs == t.n_inputs and o.n_outputs == t.n_outputs
    assert o.stats()["guards"] <= t.stats()["guards"]
    again = o.optimize()
    assert program_of(again) == program_of(o), "optimising twice changed the tape"
    assert again.stats()["optimized"] == dict(s, cse=0, folded=0, identities=0, dead=0,
                                              ops_before=len(o))
    return o


# ---- every op case, repeated, forwarded and with dead code ------------------------------------
def noisy(fn):
    """fn three times over: once used, once again (merged), once dead; through x*1, -(-y), /1,
    - 0.0 (forwarded)."""
    def g(*x):
        y, y2, _ = fn(*x), fn(*x), fn(*x) * 3.0
        return (y * 1.0 + -(-y2)) / 1.0 - 0.0
    return g


OP_CASES = [(op, k, case) for op, cases in CASES.items() for k, case in enumerate(cases)]


@pytest.mark.parametrize("op,k,case", OP_CASES, ids=[f"{op.name}-{k}" for op, k, _ in OP_CASES])
def test_every_op_case(op, k, case):
    """Recorded at the case's first point, replayed at all of them (a guard flips: both tapes
    re-record) and at 0, -0.0 and inf."""
    n = len(case.points[0])
    if case.partials is not None:                 # each spelling of the op on the inputs
        fns = case.spellings
        pts = [np.array(p, dtype=float) for p in case.points]
    else:                                         # on curved operands (op_cases.operands)
        fns = [lambda *x: case.f(*operands(case.points[0], x))]
        pts = [np.zeros(n), np.full(n, 0.01), np.full(n, -0.02)]
    for fn in fns:
        f = noisy(fn)
        t = ad.record(lambda x: f(*[x[i] for i in range(n)]), pts[0])
        o = optimise(t)
        assert op.name.lower() in o.stats()["by_opcode"] or op is Op.NEG
        s = o.stats()["optimized"]
        assert s["cse"] + s["identities"] + s["dead"] > 0
        check_same(t, o, pts, int(op), [np.full(n, v) for v in SPECIAL[:3]])


# ---- random programs -------------------------------------------------------------------------
UNARY = {
    "sin": ad.sin, "tanh": ad.tanh, "exp_tanh": lambda u: ad.exp(ad.tanh(u)),
    "log_sq1": lambda u: ad.log(u * u + 1.0), "sqrt": ad.sqrt, "abs": ad.abs,
    "mul1": lambda u: u * 1.0, "one_mul": lambda u: 1.0 * u, "div1": lambda u: u / 1.0,
    "neg2": lambda u: -(-u), "sub0": lambda u: u - 0.0, "add_m0": lambda u: u + (-0.0),
    "add0": lambda u: u + 0.0, "mul0": lambda u: u * 0.0, "self_sub": lambda u: u - u,
    "self_div": lambda u: u / u, "square": ad.square, "max0": lambda u: ad.maximum(u, 0.0),
    "where": lambda u: ad.where(u > 0.5, u * u, -u),
}
MORE = dict(BINARY, max=ad.maximum, min=ad.minimum, rmax=lambda u, v: ad.maximum(v, u),
            yx_add=lambda u, v: v + u, yx_mul=lambda u, v: v * u)


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 3), steps=program_steps(UNARY, MORE),
       outs=st.lists(st.integers(0, 99), min_size=1, max_size=3),
       x=st.lists(st.floats(-2.0, 2.0), min_size=3, max_size=3))
def test_random_programs(m, steps, outs, x):
    """A program run twice on the same inputs (the second run merges into the first)."""
    prog = (m, steps, outs)

    def f(u):
        return run_program(prog, u, UNARY, MORE) + run_program(prog, u, UNARY, MORE)

    x0 = np.array(x[:m])
    t = ad.record(f, x0)
    o = optimise(t)
    assert len(o) <= len(t) // 2 + 1
    pts = [x0, x0 + 0.3, -x0] + [np.full(m, v) for v in SPECIAL]
    check_same(t, o, [p for p in pts if regular(p)], len(steps),
               [p for p in pts if not regular(p)])


# ---- the problem suite -----------------------------------------------------------------------
OPS = SimpleNamespace(name="tapead", exp=ad.exp, abs=ad.abs, sin=ad.sin, cos=ad.cos)
PROBLEMS = [("rosen", 6), ("det_minor", 4), ("det_minor", 5), ("det_lu", 5), ("mat_mul", 3),
            ("ode", 4), ("poly", 8), ("sparse_jacobian", 6), ("sparse_hessian", 6)]


@needs_problems
@pytest.mark.parametrize("name,size", PROBLEMS, ids=[f"{n}-{s}" for n, s in PROBLEMS])
def test_problem_suite(name, size):
    p = problems.make(name, size)
    t = ad.record(lambda xv: p.f(list(xv), OPS), p.x0)
    o = optimise(t)
    check_same(t, o, [p.x0, p.x1], seed=size)
    if name == "det_minor":                       # minors repeat: merged
        assert len(o) < len(t)
    p.check(getattr(o, {"gradient": "gradient", "jacobian": "jacobian",
                        "hessian": "hessian"}[p.kind])(p.x1), p.x1, "optimised")


@needs_problems
def test_det_minor_and_sparse_jacobian_shrink():
    """The issue's figures: expansion by minors repeats each minor; exp(x_j^2/2) repeats."""
    for name, size, factor in (("det_minor", 7, 10), ("sparse_jacobian", 30, 3)):
        p = problems.make(name, size)
        t = ad.record(lambda xv: p.f(list(xv), OPS), p.x0)
        o = t.optimize()
        assert len(o) * factor <= len(t), (name, len(t), len(o))


# ---- guards ----------------------------------------------------------------------------------
def sites_of(fn):
    return outcome(fn)[2]


def test_imperative_guards_raise_at_the_same_points_naming_the_same_line():
    def f(x, y):
        a = x * y
        if x > y:                                 # GUARD-A
            a = a * 2.0
        if x > y:                                 # the same guard again: merged into GUARD-A
            a = a + 1.0
        if y > 0.0:                               # GUARD-B
            a = a - y
        return a * 1.0

    with ad.Tape() as t:
        x, y = t.variables([2.0, 1.0])
        t.outputs(f(x, y))
    o = optimise(t)
    assert o.stats()["guards"] == 2 and t.stats()["guards"] == 3
    check_same(t, o, [np.array(p) for p in ([3.0, 1.5], [1.0, 3.0], [2.0, -1.0], [-1.0, -2.0])])
    for p in ([1.0, 3.0], [2.0, -1.0], [-1.0, -2.0]):
        got = sites_of(lambda: o(np.array(p)))
        assert got and got == sites_of(lambda: t(np.array(p))), p


def test_recorded_guards_re_record_and_are_optimised_again():
    """ad.record tapes: the optimised tape re-records where the original does, and optimises
    the new recording (every path: the C gradient of a vector, of scalars, the general one)."""
    def f(x):
        s = x[0] * x[1]
        if x[0] > x[1]:
            s = s + x[0] * x[1] * 1.0
        return s + x[0] * x[1]

    def g(a, b):
        return f([a, b])

    for rec, x0, x1 in ((f, np.array([2.0, 1.0]), np.array([1.0, 2.0])),
                        (g, (2.0, 1.0), (1.0, 2.0))):
        for replay in ("gradient", "forward", "jacobian", "hessian"):
            t = ad.record(rec, *([x0] if rec is f else x0))
            o = t.optimize()
            before = o.stats()["optimized"]
            ra = getattr(t, replay)(x1)
            rb = getattr(o, replay)(x1)
            close(ra, rb, replay)
            assert o.stats()["rerecords"] == t.stats()["rerecords"] == 1
            after = o.stats()["optimized"]
            assert after["ops_before"] == len(t) and after["ops_after"] == len(o) < len(t)
            assert after != before
            assert o._optimize


def test_record_with_optimize_true():
    def f(x):
        y = ad.sin(x[0]) * x[1]
        return y + ad.sin(x[0]) * x[1] if x[0] > 0 else -y

    x0 = np.array([0.5, 2.0])
    t, o = ad.record(f, x0), ad.record(f, x0, optimize=True)
    assert len(o) < len(t) and o.stats()["optimized"]["cse"] == 2
    assert program_of(o) == program_of(t.optimize())
    check_same(t, o, [x0, np.array([-0.5, 1.0]), np.array([0.1, -3.0])])
    assert o.stats()["optimized"]["ops_before"] == len(ad.record(f, np.array([0.1, -3.0])))
    with pytest.raises(TypeError, match="at least one argument"):
        ad.record(f, optimize=True)
    s = ad.record(lambda a, b: a * b + b * a, 2.0, 3.0, optimize=True)   # the C record path
    assert len(s) == 2 and s.gradient((1.0, 5.0)) == (10.0, 2.0)


def test_value_guards_name_the_line_and_value():
    def f(x):
        return x * x.value + x * x.value          # VALUE-READ: two guards, merged

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with ad.Tape() as t:
            x = t.variables(2.0)
            t.outputs(f(x))
        z = ad.Tape()
        with z:
            u = z.variables(-0.0)
            z.outputs(u * u.value + 1.0)          # a zero's sign is guarded too
    for tape, pts in ((t, [2.0, 3.0, math.nan]), (z, [-0.0, 0.0, 1.0])):
        o = optimise(tape)
        assert o.stats()["guards"] < tape.stats()["guards"] or tape is z
        check_same(tape, o, [p for p in pts if regular(p)], 0,
                   [p for p in pts if not regular(p)])
        ea, eb = outcome(lambda: tape(pts[1])), outcome(lambda: o(pts[1]))
        assert ea == eb and ea[1] is ad.BranchChanged
        with pytest.raises(ad.BranchChanged, match=r"\.value .* fixed the tape to v\[0\] = "):
            o(pts[1])


def test_guards_in_dead_code_stay_and_unchecked_comparisons_go():
    with ad.Tape() as t:
        x = t.variables(np.array([1.0, 2.0]))
        unused = ad.sin(x[0]) > x[1]              # a comparison never asked: dead
        if ad.cos(x[1]) < 0.0:                    # a guard whose result is not used: kept
            pass
        y = ad.where(x[0] < x[1], x[0], x[1]) + ad.where(x[0] < x[1], x[0], x[1])
        t.outputs(y)
    del unused
    o = optimise(t)
    ops = o.stats()["by_opcode"]
    assert "sin" not in ops and ops["lt"] == 2 and ops["cos"] == 1 and ops["where"] == 1
    check_same(t, o, [np.array([3.0, 2.0]), np.array([0.0, 1.0])], 0,
               [np.array([1.0, math.nan])])


# ---- primitives ------------------------------------------------------------------------------
def polar_tape(calls):
    """A tape calling a primitive (of two outputs) three times: twice on the same inputs, once
    dead; only the primitive's second outputs are used. The primitive is referenced by the
    tape alone."""
    @ad.primitive
    def polar(r, a):
        calls.append((r, a))
        return np.array([r * np.cos(a), r * np.sin(a)])

    polar.defjvp(lambda x, v: np.array([v[0] * np.cos(x[1]) - x[0] * np.sin(x[1]) * v[1],
                                        v[0] * np.sin(x[1]) + x[0] * np.cos(x[1]) * v[1]]))
    polar.defvjp(lambda x, w: (w[0] * np.cos(x[1]) + w[1] * np.sin(x[1]),
                               x[0] * (w[1] * np.cos(x[1]) - w[0] * np.sin(x[1]))))

    def f(x):
        p, q, _ = polar(x[0], x[1]), polar(x[0], x[1]), polar(x[1], x[0])
        return p[1] * 1.0 + q[1]
    return ad.record(f, np.array([2.0, 0.5]))


def test_primitives_are_kept_unmerged_or_removed_when_dead():
    calls = []
    t = polar_tape(calls)
    x0 = np.array([2.0, 0.5])
    o = optimise(t)
    assert o.stats()["by_opcode"]["call"] == 2 and t.stats()["by_opcode"]["call"] == 3
    calls.clear()
    o(x0)
    assert len(calls) == 2                        # impure functions: each call made
    check_same(t, o, [x0, np.array([-1.0, 3.0])])   # taylor, hessian: TypeError in both
    g = t.gradient(x0)
    del t
    gc.collect()
    close(g, o.gradient(x0))                      # o keeps its primitive alive


# ---- folding ---------------------------------------------------------------------------------
def test_operations_on_constants_fold_bit_for_bit():
    """Folded by the op's own PRIMAL rule: a where on equal constants forwards a constant, the
    ops on it fold; low-level recordings of ops on constants fold too, a guard on constants
    (which can never flip) with them."""
    with ad.Tape() as t:
        x = t.variables(np.array([0.7, -1.3]))
        rec = t._rec

        def c(v):                                 # the operand code of constant v
            out = ffi.new("int32_t *")
            assert lib.tp_const(rec._p, v, out) == 0
            return out[0]

        k = ad.where(x[0] > 0, 2.0, 2.0) * 3.0                            # where -> 2.0 -> 6.0
        s = _make(rec, lib.tp_rec1(rec._p, int(Op.SIN), c(0.3)))          # sin(0.3)
        p = _make(rec, lib.tp_rec2(rec._p, int(Op.POW), c(1.1), c(2.5)))  # 1.1 ** 2.5
        g = _make(rec, lib.tp_rec3(rec._p, int(Op.LT), c(1.0), c(2.0), c(1.0)))  # guard: true
        y = x[0] * k + s * x[1] + p * ad.exp(x[0]) + ad.where(g, x[0], x[1]) * ad.atan2(s, p)
        t.outputs(y)
    o = optimise(t)
    st_ = o.stats()["optimized"]
    assert st_["folded"] >= 5 and st_["identities"] >= 2
    assert set(o.stats()["by_opcode"]) <= {"mul", "add", "exp"}
    assert lib.tp_value(t._rec._p, s.index) == math.sin(0.3)
    assert lib.tp_value(t._rec._p, p.index) == 1.1 ** 2.5
    check_same(t, o, [np.array([0.7, -1.3]), np.array([-2.0, 0.5])], 0,
               [np.full(2, v) for v in SPECIAL])


# ---- IEEE: what must not be simplified ----------------------------------------------------------
def test_no_unsafe_identity():
    """x + 0.0 (-0.0 + 0.0 is +0.0), x * 0.0 (inf, NaN, -0.0), x - x (inf, NaN), x / x and
    maximum(x, y) against maximum(y, x) (max(+0, -0) is -0) all stay."""
    def f(x):
        u, v = x[0], x[1]
        return [u + 0.0, u * 0.0, u - u, u / u, ad.maximum(u, v), ad.maximum(v, u),
                ad.minimum(u, v), ad.minimum(v, u), 0.0 - u, u * -1.0, u ** 1.0]

    x0 = np.array([1.0, 2.0])
    t = ad.record(f, x0)
    o = optimise(t)
    assert len(o) == len(t)
    pts = [np.array([a, b]) for a in SPECIAL for b in (0.0, -0.0, math.inf, math.nan)]
    check_same(t, o, [np.array([-1.5, 2.0])], 0, pts)
    same_bits(o(np.array([0.0, -0.0]))[4:6], np.array([-0.0, 0.0]))


def test_exact_identities_hold_at_every_special_value():
    def f(x):
        u, v = x[0], x[1]
        return [u * 1.0, 1.0 * u, u / 1.0, u + (-0.0), (-0.0) + u, u - 0.0, -(-u),
                u * v + v * u, ad.where(v > 0, u, u)]

    x0 = np.array([1.0, 2.0])
    t = ad.record(f, x0)
    o = optimise(t)
    assert o.stats()["optimized"]["identities"] == 8 and o.stats()["optimized"]["cse"] == 1
    check_same(t, o, [np.array([-1.5, 2.0])], 0, [np.array([a, b]) for a in SPECIAL
                                                  for b in SPECIAL])


# ---- with the rest of tapead: batches, saving ------------------------------------------------
def guarded(x):
    """At module level, so that t.dumps() can pickle it."""
    s = x[0] * x[1] + x[1] * x[0]
    return s * 2.0 if x[0] > x[1] else s - x[0] * x[1]


def test_batched_and_saved():
    x0 = np.array([2.0, 1.0])
    X = np.array([[2.0, 1.0], [3.0, -1.0], [0.5, 0.25]])      # one side of the guard
    t, o = ad.record(guarded, x0), ad.record(guarded, x0, optimize=True)
    close(t.gradient(X, batch=True), o.gradient(X, batch=True))
    same_bits(t(X, batch=True), o(X, batch=True))
    back = ad.loads(o.dumps())
    assert program_of(back) == program_of(o) and back.stats()["guards"] == 1
    close(t.gradient(X[1]), back.gradient(X[1]))
    close(t.gradient(np.array([1.0, 2.0])), back.gradient(np.array([1.0, 2.0])))  # re-records


# ---- the API -----------------------------------------------------------------------------------
def test_api():
    t = ad.Tape()
    with t:
        x = t.variables(np.array([1.0, 2.0]))
        with pytest.raises(ad.TapeError, match="still recording"):
            t.optimize()
        t.outputs([x[0] * x[1], x[1] * x[0], 3.0])
    o = t.optimize()
    assert isinstance(o, ad.Tape) and not o.recording and o is not t
    assert "optimized" not in t.stats() and not t._optimize and o._optimize
    assert o(np.array([2.0, 3.0])).tolist() == [6.0, 6.0, 3.0]
    assert copy.copy(o)._optimize and len(copy.copy(o)) == len(o) == 1
    assert "1 operation (mul 1), 3 outputs" in o.trace(np.array([2.0, 3.0]))
    assert "digraph" in o.to_dot()
    empty = ad.Tape()
    with empty:
        empty.variables(1.0)
    assert len(empty.optimize()) == 0             # no outputs: nothing lives


@needs_problems
def test_optimise_while_other_threads_replay():
    p = problems.make("det_minor", 5)
    t = ad.record(lambda xv: p.f(list(xv), OPS), p.x0)
    want = program_of(t.optimize())
    g = t.gradient(p.x1)

    def body(k):
        for _ in range(20):
            if k % 2:
                assert program_of(t.optimize()) == want
            else:
                close(t.gradient(p.x1), g)
    run_in_threads(body, 4)


# ---- array block ops ---------------------------------------------------------------------------
def _arrays_twice(w):
    """Block ops repeated (merged), dead (removed), a range over several scalar results (pinned)
    and broadcast constants; a second output through a strided view."""
    X = w[:6].reshape(2, 3)
    h = np.tanh(X @ X.T + np.array([0.5, -1.0]))
    h2 = np.tanh(X @ X.T + np.array([0.5, -1.0]))          # the same ops again: merged
    _ = np.exp(X) * 2.0                                    # dead
    a, b = w[0] * w[1], w[2] * w[3]                        # consecutive: one range, no PACK
    v = ad.asarray([a, b])
    u = ad.asarray([w[1] * w[0], b * 1.0])                 # merged scalars, through a PACK
    s = ad.sum(h * h2) + ad.sum(v * v) + v @ u
    return ad.asarray([s, ad.sum(X.T[::2]) * w[5]])


def test_array_tapes_optimise():
    rng = np.random.default_rng(3)
    t = ad.record(_arrays_twice, rng.normal(size=6), arrays=True)
    o = optimise(t)
    s = o.stats()["optimized"]
    assert s["cse"] >= 1 and s["dead"] >= 1, s
    assert o.stats()["by_opcode"]["matmul"] < t.stats()["by_opcode"]["matmul"]   # merged
    assert len(o) < len(t)
    check_same(t, o, [rng.normal(size=6) for _ in range(3)])
    x = rng.normal(size=(9, 6))                 # batched, saved and loaded as the original
    np.testing.assert_array_equal(o.forward(x, batch=True), t.forward(x, batch=True))
    u = ad.loads(o.dumps())
    np.testing.assert_array_equal(u.forward(x[0]), t.forward(x[0]))
    np.testing.assert_allclose(u.jacobian(x, batch=True), t.jacobian(x, batch=True),
                               rtol=1e-13, atol=1e-15)
