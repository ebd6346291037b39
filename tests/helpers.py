"""Code shared by the test files (not tests): the seed's f and its closed-form gradient, the
Horner polynomial, running a function in several threads at once, the op-case tables of the
second-order and Taylor tests (mpmath oracles) and the random programs of the hypothesis tests.

tests/ has no __init__.py: pytest puts tests/ on sys.path, so the test files import this module
as ``from helpers import ...``.
"""
import math
import threading
from dataclasses import dataclass

import numpy as np
import pytest

import tapead as ad
from tapead._core import Op


# ---- the seed's f -----------------------------------------------------------------------------
def seed_f(x1, x2):
    return x1 * ad.sqrt(ad.log(x1 / ad.sin(x2 ** 2)))


def seed_grad(x1, x2):
    """The closed-form gradient of f(x1, x2) = x1 sqrt(log(x1 / sin(x2^2))):
    df/dx1 = sqrt(L) + 1 / (2 sqrt(L)), df/dx2 = -x1 x2 cot(x2^2) / sqrt(L), L = log(x1/sin x2^2).
    """
    L = math.log(x1 / math.sin(x2 ** 2))
    return np.array([math.sqrt(L) + 1.0 / (2.0 * math.sqrt(L)),
                     -x1 * x2 / math.tan(x2 ** 2) / math.sqrt(L)])


def seed_f_vec(x):
    """The seed's f of one input vector x = (x1, x2)."""
    return seed_f(x[0], x[1])


def seed_grad_vec(x):
    """seed_grad of one point x = (x1, x2)."""
    x1, x2 = x
    return seed_grad(x1, x2)


# ---- poly: a Horner polynomial ------------------------------------------------------------------
def poly(a, z):
    """p(z) = a_0 + a_1 z + ... + a_n z^n by Horner's rule."""
    p = a[-1]
    for c in a[-2::-1]:
        p = p * z + c
    return p


# ---- threads ------------------------------------------------------------------------------------
def run_in_threads(body, n_threads):
    """Run body(k) for k in range(n_threads), each in its own thread, all released at once by a
    barrier; the first exception a thread raised is raised again here."""
    barrier = threading.Barrier(n_threads)
    errors = []

    def worker(k):
        try:
            barrier.wait()
            body(k)
        except BaseException as e:          # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]


# ---- op cases: one function per op with its mpmath twin -----------------------------------------
@dataclass
class Case:
    f: object        # n operands (Var or float) -> one value, recording the op
    mp: object       # the same function on mpmath numbers
    points: list     # operand values, inside the domain and away from non-smooth points
    raises: object = None   # an op without rules for this sweep: the exception it raises


def _mp():
    return pytest.importorskip("mpmath")


def _mpfn(name):
    return lambda *a: getattr(_mp(), name)(*a)


def _mpcbrt(x):
    m = _mp()
    return m.sign(x) * m.cbrt(abs(x))


def C(f, mpf, *points, raises=None):
    return Case(f, mpf, list(points), raises)


def guard(rel):
    """A branch on a comparison of the operands (a guard op on the tape); the same code runs on
    mpmath numbers. Points keep away from ties, so nearby points take the same branch."""
    return lambda x, y: x * x * y if rel(x, y) else x * y * y


# user primitives (CALL; pair writes two outputs) with first-order rules only
def _cube_fun(x):
    return x ** 3


cube = ad.primitive(_cube_fun, jvp=lambda x, v: 3 * x[0] ** 2 * v[0],
                    vjp=lambda x, w: (3 * x[0] ** 2 * w,))
pair = ad.primitive(lambda x, y: np.array([x * y, x + y]),
                    jvp=lambda x, v: np.array([x[1] * v[0] + x[0] * v[1], v[0] + v[1]]),
                    vjp=lambda x, w: (x[1] * w[0] + w[1], x[0] * w[0] + w[1]), name="pair")


# The cases both the second-order and the Taylor tables hold; a test file adds its own ops
# (and extends these lists) with op_table.
OP_CASES = {
    Op.ADD: [C(lambda x, y: x + y, lambda x, y: x + y, (0.7, -1.2)),
             C(lambda x: 2.5 + x, lambda x: 2.5 + x, (0.3,))],
    Op.SUB: [C(lambda x, y: x - y, lambda x, y: x - y, (0.7, -1.2)),
             C(lambda x: 2.5 - x, lambda x: 2.5 - x, (0.3,))],
    Op.DIV: [C(lambda x, y: x / y, lambda x, y: x / y, (0.7, -1.2), (-2.0, 0.5)),
             C(lambda x: 1.5 / x, lambda x: 1.5 / x, (0.8,))],
    Op.SQUARE: [C(ad.square, lambda x: x * x, (0.7,), (-1.3,))],
    Op.SQRT: [C(ad.sqrt, _mpfn("sqrt"), (0.7,), (3.5,))],
    Op.CBRT: [C(ad.cbrt, _mpcbrt, (0.7,), (-3.5,))],
    Op.EXP: [C(ad.exp, _mpfn("exp"), (0.7,), (-1.3,))],
    Op.EXPM1: [C(ad.expm1, _mpfn("expm1"), (0.7,), (-1.3,))],
    Op.LOG: [C(ad.log, _mpfn("log"), (0.7,), (3.5,))],
    Op.LOG1P: [C(ad.log1p, _mpfn("log1p"), (0.7,), (-0.4,))],
    Op.LOG2: [C(ad.log2, lambda x: _mp().log(x, 2), (0.7,), (3.5,))],
    Op.LOG10: [C(ad.log10, _mpfn("log10"), (0.7,), (3.5,))],
    Op.SIN: [C(ad.sin, _mpfn("sin"), (0.7,), (-2.3,))],
    Op.COS: [C(ad.cos, _mpfn("cos"), (0.7,), (-2.3,))],
    Op.TAN: [C(ad.tan, _mpfn("tan"), (0.7,), (-1.1,))],
    Op.ASIN: [C(ad.asin, _mpfn("asin"), (0.3,), (-0.6,))],
    Op.ACOS: [C(ad.acos, _mpfn("acos"), (0.3,), (-0.6,))],
    Op.ATAN: [C(ad.atan, _mpfn("atan"), (0.7,), (-2.3,))],
    Op.SINH: [C(ad.sinh, _mpfn("sinh"), (0.7,), (-1.3,))],
    Op.COSH: [C(ad.cosh, _mpfn("cosh"), (0.7,), (-1.3,))],
    Op.TANH: [C(ad.tanh, _mpfn("tanh"), (0.7,), (-1.3,))],
    Op.ASINH: [C(ad.asinh, _mpfn("asinh"), (0.7,), (-2.3,))],
    Op.ACOSH: [C(ad.acosh, _mpfn("acosh"), (1.7,), (3.5,))],
    Op.ATANH: [C(ad.atanh, _mpfn("atanh"), (0.3,), (-0.6,))],
    Op.ATAN2: [C(ad.atan2, _mpfn("atan2"), (0.7, -1.2), (-2.0, 0.5), (0.4, 1.1)),
               C(lambda y: ad.atan2(y, 2.0), lambda y: _mp().atan2(y, 2.0), (0.6,))],
    Op.HYPOT: [C(ad.hypot, _mpfn("hypot"), (0.7, -1.2), (-2.0, 0.5)),
               C(lambda y: ad.hypot(1.5, y), lambda y: _mp().hypot(1.5, y), (0.6,))],
    Op.ERF: [C(ad.erf, _mpfn("erf"), (0.7,), (-1.3,))],
    Op.ABS: [C(abs, abs, (0.7,), (-1.3,))],
    Op.SIGN: [C(lambda x: ad.sign(x) * x, lambda x: _mp().sign(x) * x, (0.7,), (-1.3,))],
    Op.MAX: [C(ad.maximum, max, (0.7, -1.2), (-2.0, 0.5))],
    Op.MIN: [C(ad.minimum, min, (0.7, -1.2), (-2.0, 0.5))],
    Op.WHERE: [C(lambda c, y, w: ad.where(c * c + 1.0, y * y, ad.sin(w)),
                 lambda c, y, w: y * y, (0.4, 0.7, -1.2)),
               C(lambda c, y, w: ad.where(c - c, y * y, ad.sin(w)),
                 lambda c, y, w: _mp().sin(w), (0.4, 0.7, -1.2))],
    Op.SUM: [C(lambda x, y, z: ad.sum([x, y * y, z, x * z]), lambda x, y, z: x + y * y + z + x * z,
               (0.4, 0.7, -1.2))],
    Op.DOT: [C(lambda x, y, z: ad.dot([x, y, z], [y, z, x]), lambda x, y, z: x * y + y * z + z * x,
               (0.4, 0.7, -1.2)),
             C(lambda x, y: ad.dot([x, x, 2.0], [x, y, y]), lambda x, y: x * x + x * y + 2 * y,
               (0.4, -0.7))],
    Op.LT: [C(guard(lambda x, y: x < y), guard(lambda x, y: x < y), (0.7, -1.2), (-2.0, 0.5))],
    Op.LE: [C(guard(lambda x, y: x <= y), guard(lambda x, y: x <= y), (0.7, -1.2), (-2.0, 0.5))],
    Op.GT: [C(guard(lambda x, y: x > y), guard(lambda x, y: x > y), (0.7, -1.2), (-2.0, 0.5))],
    Op.GE: [C(guard(lambda x, y: x >= y), guard(lambda x, y: x >= y), (0.7, -1.2), (-2.0, 0.5))],
    Op.EQ: [C(guard(lambda x, y: x == y), guard(lambda x, y: x == y), (0.7, -1.2))],
    Op.NE: [C(guard(lambda x, y: x != y), guard(lambda x, y: x != y), (0.7, -1.2))],
    # user primitives carry first-order rules only: second order and Taylor raise TypeError
    Op.CALL: [C(lambda x: cube(x) + x * x, None, (0.7,), raises=TypeError),
              C(lambda x, y: ad.sum(pair(x, y)) * x, None, (0.7, -1.2), raises=TypeError)],
}


def op_table(own):
    """A test file's op -> cases table: its own entries (own), else the shared OP_CASES, in the
    order of Op. An op in neither stays out, so a test for a missing case still fails."""
    return {op: own[op] if op in own else OP_CASES[op] for op in Op
            if op in own or op in OP_CASES}


def case_params(table):
    """(all, with rules, without rules): pytest params (op, k, point) for every point of every
    case of table, id "OP-k-j"."""
    all_ids = [pytest.param(op, k, p, id=f"{op.name}-{k}-{j}")
               for op, cases in table.items() for k, case in enumerate(cases)
               for j, p in enumerate(case.points)]
    op_ids = [p for p in all_ids if table[p.values[0]][p.values[1]].raises is None]
    no_rule_ids = [p for p in all_ids if table[p.values[0]][p.values[1]].raises is not None]
    return all_ids, op_ids, no_rule_ids


SLOPES = (1.0, -0.75, 1.5, 0.5)


def operands(point, x):
    """Operand i = a_i + x_i (b_i + x_i / 2): at x = 0 the case's point, with curvature, so the
    op's first partials meet the operands' second derivatives and vice versa; along a direction
    its series has a nonzero second coefficient, so every term of the op's recurrence is
    exercised."""
    return [a + xi * (b + 0.5 * xi) for a, xi, b in zip(point, x, SLOPES)]


# ---- random programs (hypothesis) ---------------------------------------------------------------
BINARY = {
    "add": lambda u, v: u + v, "sub": lambda u, v: u - v, "mul": lambda u, v: u * v,
    "div": lambda u, v: u / (1.0 + v * v), "pow": lambda u, v: (u * u + 1.0) ** ad.sin(v),
    "hypot": lambda u, v: ad.hypot(u, v * v + 0.5), "atan2": lambda u, v: ad.atan2(u, v * v + 1.0),
    "sum": lambda u, v: ad.sum([u, v, u * v]), "dot": lambda u, v: ad.dot([u, v], [v, ad.sin(u)]),
}


def run_program(prog, x, unary, binary=BINARY):
    """Run a program (m inputs, steps, output picks) on Vars or floats: a DAG that reuses any
    earlier value, with short loops; steps name functions of unary and binary."""
    m, body, outs = prog
    vals = [x[i] for i in range(m)]
    for s in body:
        if s[0] == "u":
            vals.append(unary[s[1]](vals[s[2] % len(vals)]))
        elif s[0] == "b":
            vals.append(binary[s[1]](vals[s[2] % len(vals)], vals[s[3] % len(vals)]))
        else:
            acc, other = vals[s[2] % len(vals)], vals[s[3] % len(vals)]
            for _ in range(s[4]):
                acc = binary[s[1]](acc, other)
                vals.append(acc)
    return [vals[-1 - (o % len(vals))] for o in outs]


def program_steps(unary, binary=BINARY):
    """The hypothesis strategy of a program's steps: unary, binary and loop steps over the names
    of unary and binary (hypothesis needed)."""
    from hypothesis import strategies as st
    return st.lists(st.one_of(
        st.tuples(st.just("u"), st.sampled_from(sorted(unary)), st.integers(0, 999)),
        st.tuples(st.just("b"), st.sampled_from(sorted(binary)), st.integers(0, 999),
                  st.integers(0, 999)),
        st.tuples(st.just("loop"), st.sampled_from(sorted(binary)), st.integers(0, 999),
                  st.integers(0, 999), st.integers(2, 4))), min_size=1, max_size=12)
