"""The op test cases: one table keyed by op (tapead._core.Op), one Case type (not tests).

A case is functions of the op's n operands that record it, and points. Its first-order fields
(value, partials: closed forms on floats, math module) serve tests/test_ops.py; its mp field (the
function on mpmath numbers) or raises serve test_second_order.py and test_taylor.py, both unless
`only` names one. One case may serve all three: a new op needs one row here, and
tests/test_optable.py fails without it.
"""
import math
from dataclasses import dataclass

import numpy as np
import pytest

import tapead as ad
from tapead._core import Op


@dataclass
class Case:
    spellings: list          # functions of the n operands (Var or float), each recording the op
    points: list             # operand tuples inside the domain, away from non-smooth points
    value: object = None     # first order: the function on floats
    partials: object = None  # first order: its partial derivatives on floats, a list of n
    fd: bool = True          # first order: check the closed forms by central differences
    mp: object = None        # second order and Taylor: the function on mpmath numbers
    raises: object = None    # second order and Taylor: an op without their rules raises this
    only: str = None         # "second" or "taylor": a case of that file only

    @property
    def f(self):
        return self.spellings[0]

    def serves(self, test):
        """Whether test ("first", "second" or "taylor") uses this case."""
        if test == "first":
            return self.partials is not None
        return (self.mp is not None or self.raises is not None) and self.only in (None, test)


def first(spellings, value, partials, points, fd=True):
    return Case(list(spellings), list(points), value, partials, fd)


def unary(adfn, npfn, value, deriv, points, extra=()):
    return first([adfn] + ([npfn] if npfn is not None else []) + list(extra),
                 lambda x: value(x), lambda x: [deriv(x)], [(p,) for p in points])


def higher(f, mp, *points, raises=None, only=None):
    return Case([f], list(points), mp=mp, raises=raises, only=only)


def _mp():
    return pytest.importorskip("mpmath")


def _mpfn(name):
    return lambda *a: getattr(_mp(), name)(*a)


def _mpcbrt(x):
    m = _mp()
    return m.sign(x) * m.cbrt(abs(x))


def _lae(x, y):
    m = max(x, y)
    return m + math.log1p(math.exp(-abs(x - y)))


def _sec2(x):
    return 1.0 / math.cos(x) ** 2


def _cbrt(x):
    return math.copysign(abs(x) ** (1.0 / 3.0), x)


def guard(rel):
    """A branch on a comparison of the operands (a guard op on the tape); the same code runs on
    mpmath numbers. Points keep away from ties, so nearby points take the same branch."""
    return lambda x, y: x * x * y if rel(x, y) else x * y * y


# ---- user primitives: first-order rules in NumPy, no second-order or Taylor rules -------------
@ad.primitive
def _xsiny(x, y):
    """x sin(y) as a user primitive of two scalars (its rules in NumPy)."""
    return x * np.sin(y)


@_xsiny.defjvp
def _xsiny_jvp(x, v):
    return v[0] * np.sin(x[1]) + x[0] * np.cos(x[1]) * v[1]


@_xsiny.defvjp
def _xsiny_vjp(x, w):
    return (w * np.sin(x[1]), w * x[0] * np.cos(x[1]))


@ad.primitive
def _polar(r, a):
    """(r cos a, r sin a): a user primitive with two outputs (one CALL writing both)."""
    return np.array([r * np.cos(a), r * np.sin(a)])


@_polar.defjvp
def _polar_jvp(x, v):
    r, a = x
    return np.array([v[0] * np.cos(a) - r * np.sin(a) * v[1],
                     v[0] * np.sin(a) + r * np.cos(a) * v[1]])


@_polar.defvjp
def _polar_vjp(x, w):
    r, a = x
    return (w[0] * np.cos(a) + w[1] * np.sin(a), r * (w[1] * np.cos(a) - w[0] * np.sin(a)))


def _cube_fun(x):
    return x ** 3


cube = ad.primitive(_cube_fun, jvp=lambda x, v: 3 * x[0] ** 2 * v[0],
                    vjp=lambda x, w: (3 * x[0] ** 2 * w,))
pair = ad.primitive(lambda x, y: np.array([x * y, x + y]),
                    jvp=lambda x, v: np.array([x[1] * v[0] + x[0] * v[1], v[0] + v[1]]),
                    vjp=lambda x, w: (x[1] * w[0] + w[1], x[0] * w[0] + w[1]), name="pair")

_P2 = [(1.5, 2.25), (-3.0, 0.5), (1e3, -1e-3)]
_TRIG = [1.3, -0.7, 0.0, 10.0]

def _set_twice(x, y):
    """SCATTER by item assignment: the last write to a position wins."""
    a = ad.asarray([x, y, 1.0])
    a[[0, 2, 0]] = ad.asarray([x, x, y * y])
    return ad.sum(a * ad.asarray([1.0, x, 2.0]))


CASES = {
    # ---- arithmetic ---------------------------------------------------------------------------
    Op.NEG: [unary(lambda x: -x, np.negative, lambda x: -x, lambda x: -1.0, [1.3, -0.7, 0.0]),
             higher(lambda x: -x, lambda x: -x, (0.7,), (-1.3,), only="second"),
             higher(lambda x: -x, lambda x: -x, (0.7,), only="taylor")],
    Op.ADD: [first([lambda x, y: x + y, np.add], lambda x, y: x + y, lambda x, y: [1.0, 1.0], _P2),
             higher(lambda x, y: x + y, lambda x, y: x + y, (0.7, -1.2)),
             higher(lambda x: 2.5 + x, lambda x: 2.5 + x, (0.3,))],
    Op.SUB: [first([lambda x, y: x - y, np.subtract], lambda x, y: x - y,
                   lambda x, y: [1.0, -1.0], _P2),
             higher(lambda x, y: x - y, lambda x, y: x - y, (0.7, -1.2)),
             higher(lambda x: 2.5 - x, lambda x: 2.5 - x, (0.3,))],
    Op.MUL: [first([lambda x, y: x * y, np.multiply], lambda x, y: x * y, lambda x, y: [y, x],
                   [(1.5, 2.25), (-3.0, 0.5), (0.0, 4.0)]),
             higher(lambda x, y: x * y, lambda x, y: x * y, (0.7, -1.2), (0.0, 2.0),
                    only="second"),
             higher(lambda x: x * x, lambda x: x * x, (-0.6,), only="second"),
             higher(lambda x: 3 * x, lambda x: 3 * x, (0.4,), only="second"),
             higher(lambda x, y: x * y, lambda x, y: x * y, (0.7, -1.2), only="taylor"),
             higher(lambda x: x * x, lambda x: x * x, (-0.6,), only="taylor"),
             higher(lambda x: 3 * x, lambda x: 3 * x, (0.4,), only="taylor")],
    Op.DIV: [first([lambda x, y: x / y, np.divide, np.true_divide], lambda x, y: x / y,
                   lambda x, y: [1.0 / y, -x / y ** 2], [(1.5, 2.25), (-3.0, 0.5), (0.0, -4.0)]),
             higher(lambda x, y: x / y, lambda x, y: x / y, (0.7, -1.2), (-2.0, 0.5)),
             higher(lambda x: 1.5 / x, lambda x: 1.5 / x, (0.8,)),
             higher(lambda x: x / 4.0, lambda x: x / 4.0, (0.8,), only="second")],
    Op.POW: [first([lambda x, y: x ** y, ad.pow, np.power], lambda x, y: x ** y,
                   lambda x, y: [y * x ** (y - 1), x ** y * math.log(x)],
                   [(1.5, 2.25), (0.3, -1.7), (2.0, 0.5), (2.5, 2.0), (4.0, 3.0)]),
             higher(lambda x, y: x ** y, lambda x, y: x ** y, (1.5, 2.25), (0.3, -1.7), (2.0, 0.5),
                    only="second"),
             higher(lambda x: x ** 3.7, lambda x: x ** 3.7, (1.3,), only="second"),
             higher(lambda x: x ** 3, lambda x: x ** 3, (-1.3,), only="second"),
             higher(lambda x: 2.5 ** x, lambda x: 2.5 ** x, (0.6,), only="second"),
             higher(lambda x, y: ad.pow(x, y), lambda x, y: x ** y, (0.9, 3.0), only="second"),
             higher(lambda x, y: x ** y, lambda x, y: x ** y, (1.5, 2.25), (0.3, -1.7),
                    only="taylor"),
             higher(lambda x: x ** 3.7, lambda x: x ** 3.7, (1.3,), only="taylor"),
             higher(lambda x: x ** 3, lambda x: x ** 3, (-1.3,), only="taylor"),
             higher(lambda x: x ** -2, lambda x: x ** -2, (-0.9,), only="taylor"),
             higher(lambda x: 2.5 ** x, lambda x: _mp().mpf(2.5) ** x, (0.6,), only="taylor")],
    Op.SQUARE: [unary(ad.square, np.square, lambda x: x * x, lambda x: 2 * x, [1.3, -0.7, 0.0],
                      extra=[lambda x: x ** 2, lambda x: x ** 2.0]),
                higher(ad.square, lambda x: x * x, (0.7,), (-1.3,)),
                higher(lambda x: x ** 2, lambda x: x * x, (0.4,), only="second")],
    Op.SQRT: [unary(ad.sqrt, np.sqrt, math.sqrt, lambda x: 0.5 / math.sqrt(x), [1.3, 0.02, 40.0]),
              higher(ad.sqrt, _mpfn("sqrt"), (0.7,), (3.5,))],
    Op.CBRT: [unary(ad.cbrt, np.cbrt, _cbrt, lambda x: 1.0 / (3.0 * _cbrt(x) ** 2),
                    [1.3, -8.0, 0.02, 27.0]),
              higher(ad.cbrt, _mpcbrt, (0.7,), (-3.5,))],
    # ---- exponentials and logarithms ----------------------------------------------------------
    Op.EXP: [unary(ad.exp, np.exp, math.exp, math.exp, [1.3, -0.7, 0.0, 20.0]),
             higher(ad.exp, _mpfn("exp"), (0.7,), (-1.3,))],
    Op.EXPM1: [unary(ad.expm1, np.expm1, math.expm1, math.exp, [1.3, -0.7, 1e-8]),
               higher(ad.expm1, _mpfn("expm1"), (0.7,), (-1.3,))],
    Op.LOG: [unary(ad.log, np.log, math.log, lambda x: 1.0 / x, [1.3, 0.07, 50.0]),
             higher(ad.log, _mpfn("log"), (0.7,), (3.5,))],
    Op.LOG1P: [unary(ad.log1p, np.log1p, math.log1p, lambda x: 1.0 / (1.0 + x),
                     [1.3, -0.7, 1e-9]),
               higher(ad.log1p, _mpfn("log1p"), (0.7,), (-0.4,))],
    Op.LOG2: [unary(ad.log2, np.log2, math.log2, lambda x: 1.0 / (x * math.log(2.0)),
                    [1.3, 0.07, 50.0]),
              higher(ad.log2, lambda x: _mp().log(x, 2), (0.7,), (3.5,))],
    Op.LOG10: [unary(ad.log10, np.log10, math.log10, lambda x: 1.0 / (x * math.log(10.0)),
                     [1.3, 0.07, 50.0]),
               higher(ad.log10, _mpfn("log10"), (0.7,), (3.5,))],
    # ---- trigonometric and hyperbolic ---------------------------------------------------------
    Op.SIN: [unary(ad.sin, np.sin, math.sin, math.cos, _TRIG),
             higher(ad.sin, _mpfn("sin"), (0.7,), (-2.3,))],
    Op.COS: [unary(ad.cos, np.cos, math.cos, lambda x: -math.sin(x), _TRIG),
             higher(ad.cos, _mpfn("cos"), (0.7,), (-2.3,))],
    Op.TAN: [unary(ad.tan, np.tan, math.tan, _sec2, [1.3, -0.7, 0.0, 4.0]),
             higher(ad.tan, _mpfn("tan"), (0.7,), (-1.1,))],
    Op.ASIN: [unary(ad.asin, np.arcsin, math.asin, lambda x: 1.0 / math.sqrt(1 - x * x),
                    [0.3, -0.7, 0.0, 0.99]),
              higher(ad.asin, _mpfn("asin"), (0.3,), (-0.6,))],
    Op.ACOS: [unary(ad.acos, np.arccos, math.acos, lambda x: -1.0 / math.sqrt(1 - x * x),
                    [0.3, -0.7, 0.0, 0.99]),
              higher(ad.acos, _mpfn("acos"), (0.3,), (-0.6,))],
    Op.ATAN: [unary(ad.atan, np.arctan, math.atan, lambda x: 1.0 / (1 + x * x),
                    [1.3, -0.7, 0.0, 30.0]),
              higher(ad.atan, _mpfn("atan"), (0.7,), (-2.3,))],
    Op.SINH: [unary(ad.sinh, np.sinh, math.sinh, math.cosh, [1.3, -0.7, 0.0, 5.0]),
              higher(ad.sinh, _mpfn("sinh"), (0.7,), (-1.3,))],
    Op.COSH: [unary(ad.cosh, np.cosh, math.cosh, math.sinh, [1.3, -0.7, 0.0, 5.0]),
              higher(ad.cosh, _mpfn("cosh"), (0.7,), (-1.3,))],
    Op.TANH: [unary(ad.tanh, np.tanh, math.tanh, lambda x: 1.0 / math.cosh(x) ** 2,
                    [1.3, -0.7, 0.0, 3.0]),
              higher(ad.tanh, _mpfn("tanh"), (0.7,), (-1.3,))],
    Op.ASINH: [unary(ad.asinh, np.arcsinh, math.asinh, lambda x: 1.0 / math.sqrt(x * x + 1),
                     [1.3, -0.7, 0.0, 30.0]),
               higher(ad.asinh, _mpfn("asinh"), (0.7,), (-2.3,))],
    Op.ACOSH: [unary(ad.acosh, np.arccosh, math.acosh, lambda x: 1.0 / math.sqrt(x * x - 1),
                     [1.3, 1.01, 30.0]),
               higher(ad.acosh, _mpfn("acosh"), (1.7,), (3.5,))],
    Op.ATANH: [unary(ad.atanh, np.arctanh, math.atanh, lambda x: 1.0 / (1 - x * x),
                     [0.3, -0.7, 0.0, 0.95]),
               higher(ad.atanh, _mpfn("atanh"), (0.3,), (-0.6,))],
    Op.ATAN2: [first([ad.atan2, np.arctan2], math.atan2,
                     lambda x, y: [y / (x * x + y * y), -x / (x * x + y * y)],
                     [(1.5, 2.25), (-3.0, 0.5), (0.5, -3.0), (-1.0, -1e-3)]),
               higher(ad.atan2, _mpfn("atan2"), (0.7, -1.2), (-2.0, 0.5), (0.4, 1.1)),
               higher(lambda y: ad.atan2(y, 2.0), lambda y: _mp().atan2(y, 2.0), (0.6,))],
    Op.HYPOT: [first([ad.hypot, np.hypot], math.hypot,
                     lambda x, y: [x / math.hypot(x, y), y / math.hypot(x, y)],
                     [(1.5, 2.25), (-3.0, 0.5), (0.0, -4.0)]),
               higher(ad.hypot, _mpfn("hypot"), (0.7, -1.2), (-2.0, 0.5)),
               higher(lambda y: ad.hypot(1.5, y), lambda y: _mp().hypot(1.5, y), (0.6,))],
    # ---- special functions --------------------------------------------------------------------
    Op.ERF: [unary(ad.erf, None, math.erf,
                   lambda x: 2.0 / math.sqrt(math.pi) * math.exp(-x * x), [1.3, -0.7, 0.0, 3.0]),
             higher(ad.erf, _mpfn("erf"), (0.7,), (-1.3,))],
    # ---- non-smooth (smooth points here; test_ops.py tests the conventions) --------------------
    Op.ABS: [unary(ad.abs, np.abs, abs, lambda x: math.copysign(1.0, x), [1.3, -0.7],
                   extra=[lambda x: abs(x), np.absolute]),
             higher(abs, abs, (0.7,), (-1.3,))],
    Op.SIGN: [unary(ad.sign, np.sign, lambda x: math.copysign(1.0, x), lambda x: 0.0, [1.3, -0.7]),
              higher(lambda x: ad.sign(x) * x, lambda x: _mp().sign(x) * x, (0.7,), (-1.3,))],
    Op.MAX: [first([ad.maximum, np.maximum], max, lambda x, y: [1.0, 0.0] if x > y else [0.0, 1.0],
                   [(1.5, 2.25), (-3.0, -4.5), (0.0, -1e-3)]),
             higher(ad.maximum, max, (0.7, -1.2), (-2.0, 0.5))],
    Op.MIN: [first([ad.minimum, np.minimum], min, lambda x, y: [1.0, 0.0] if x < y else [0.0, 1.0],
                   [(1.5, 2.25), (-3.0, -4.5), (0.0, -1e-3)]),
             higher(ad.minimum, min, (0.7, -1.2), (-2.0, 0.5))],
    # ---- selection (a Var condition: nonzero means true) ---------------------------------------
    Op.WHERE: [first([ad.where,
                      lambda c, a, b: ad.where(np.array([c]), np.array([a]), np.array([b]))[0]],
                     lambda c, a, b: a if c != 0 else b,
                     lambda c, a, b: [0.0, 1.0, 0.0] if c != 0 else [0.0, 0.0, 1.0],
                     [(1.0, 2.5, -3.0), (-0.5, 2.5, -3.0), (0.0, 2.5, -3.0), (3.0, -1.0, 7.0)],
                     fd=False),
               higher(lambda c, y, w: ad.where(c * c + 1.0, y * y, ad.sin(w)),
                      lambda c, y, w: y * y, (0.4, 0.7, -1.2)),
               higher(lambda c, y, w: ad.where(c - c, y * y, ad.sin(w)),
                      lambda c, y, w: _mp().sin(w), (0.4, 0.7, -1.2))],
    # ---- n-ary --------------------------------------------------------------------------------
    Op.SUM: [first([lambda x, y, z: ad.sum([x, y, z]),
                    lambda x, y, z: ad.sum(np.array([x, y, z, x], dtype=object)) - x,
                    lambda x, y, z: ad.sum((x, 2.5, y, z)) - 2.5],
                   lambda x, y, z: x + y + z, lambda x, y, z: [1.0, 1.0, 1.0],
                   [(1.5, -2.0, 0.25), (0.0, 3.0, -7.5)]),
             higher(lambda x, y, z: ad.sum([x, y * y, z, x * z]),
                    lambda x, y, z: x + y * y + z + x * z, (0.4, 0.7, -1.2)),
             higher(lambda x, y: ad.sum([x, 2.5, y]), lambda x, y: x + 2.5 + y, (0.4, 0.7),
                    only="second")],
    Op.DOT: [first([lambda x, y, z: ad.dot([x, y, z], [y, z, x]),
                    lambda x, y, z: ad.dot(np.array([x, y, z]), np.array([y, z, x])),
                    lambda x, y, z: ad.dot([x, 2.0, z], [y, 0.0, x]) + y * z],
                   lambda x, y, z: x * y + y * z + z * x, lambda x, y, z: [y + z, x + z, x + y],
                   [(1.5, -2.0, 0.25), (0.0, 3.0, -7.5)]),
             higher(lambda x, y, z: ad.dot([x, y, z], [y, z, x]),
                    lambda x, y, z: x * y + y * z + z * x, (0.4, 0.7, -1.2)),
             higher(lambda x, y: ad.dot([x, x, 2.0], [x, y, y]),
                    lambda x, y: x * x + x * y + 2 * y, (0.4, -0.7))],
    # ---- branch guards: a comparison of Vars gives a bool and records a guard; a tape of
    # ad.record re-records when a replay flips it, so each case is right on both sides -------
    Op.LT: [first([lambda x, y: x * y if x < y else x - y], lambda x, y: x * y if x < y else x - y,
                  lambda x, y: [y, x] if x < y else [1.0, -1.0],
                  [(1.0, 2.0), (3.0, 2.0), (-1.5, -0.5), (0.5, -0.5)]),
            higher(guard(lambda x, y: x < y), guard(lambda x, y: x < y), (0.7, -1.2),
                   (-2.0, 0.5))],
    Op.LE: [first([lambda x, y: ad.sin(x) * y if x <= y else x / y],
                  lambda x, y: math.sin(x) * y if x <= y else x / y,
                  lambda x, y: [math.cos(x) * y, math.sin(x)] if x <= y else [1 / y, -x / y ** 2],
                  [(1.0, 2.0), (3.0, 2.0), (-1.5, -0.5)]),
            higher(guard(lambda x, y: x <= y), guard(lambda x, y: x <= y), (0.7, -1.2),
                   (-2.0, 0.5))],
    Op.GT: [first([lambda x, y: x * x if x > y else y * 3.0],
                  lambda x, y: x * x if x > y else y * 3.0,
                  lambda x, y: [2 * x, 0.0] if x > y else [0.0, 3.0],
                  [(1.0, 2.0), (3.0, 2.0), (-0.5, -1.5)]),
            higher(guard(lambda x, y: x > y), guard(lambda x, y: x > y), (0.7, -1.2),
                   (-2.0, 0.5))],
    Op.GE: [first([lambda x, y: ad.exp(x) if x >= y else ad.exp(y)],
                  lambda x, y: math.exp(x) if x >= y else math.exp(y),
                  lambda x, y: [math.exp(x), 0.0] if x >= y else [0.0, math.exp(y)],
                  [(1.0, 2.0), (3.0, 2.0), (2.5, 1.0)]),
            higher(guard(lambda x, y: x >= y), guard(lambda x, y: x >= y), (0.7, -1.2),
                   (-2.0, 0.5))],
    Op.EQ: [first([lambda x, y: x * 2.0 if x == y else x * y],
                  lambda x, y: x * 2.0 if x == y else x * y,
                  lambda x, y: [2.0, 0.0] if x == y else [y, x],
                  [(1.0, 1.0), (1.0, 2.0), (-3.0, -3.0), (0.5, 4.0)], fd=False),
            higher(guard(lambda x, y: x == y), guard(lambda x, y: x == y), (0.7, -1.2))],
    Op.NE: [first([lambda x, y: x * y if x != y else x + 1.0],
                  lambda x, y: x * y if x != y else x + 1.0,
                  lambda x, y: [y, x] if x != y else [1.0, 0.0],
                  [(1.0, 2.0), (2.0, 2.0), (-3.0, 0.5)], fd=False),
            higher(guard(lambda x, y: x != y), guard(lambda x, y: x != y), (0.7, -1.2))],
    # ---- user-defined primitives: CALL writes all of a call's outputs (_polar, pair: two);
    # first-order rules only, so second order and Taylor raise TypeError ---------------------
    Op.CALL: [first([_xsiny, lambda x, y: _xsiny(x * 1.0, y)], lambda x, y: x * math.sin(y),
                    lambda x, y: [math.sin(y), x * math.cos(y)],
                    [(1.5, 0.5), (-2.0, 2.5), (0.0, 1.0)]),
              first([lambda r, a: _polar(r, a)[1]], lambda r, a: r * math.sin(a),
                    lambda r, a: [math.sin(a), r * math.cos(a)],
                    [(1.5, 0.5), (-2.0, 2.5), (0.0, 1.0)]),
              higher(lambda x: cube(x) + x * x, None, (0.7,), raises=TypeError),
              higher(lambda x, y: ad.sum(pair(x, y)) * x, None, (0.7, -1.2), raises=TypeError)],
    # ---- array block ops (ad.Array): one op over a block of variables, read back as Vars ----
    Op.MAP: [first([lambda x, y: (np.exp(ad.asarray([x, y])) * ad.asarray([y, 2.0]))[0],
                    lambda x, y: (ad.exp(ad.asarray([x])) * y)[0]],
                   lambda x, y: math.exp(x) * y, lambda x, y: [math.exp(x) * y, math.exp(x)],
                   [(0.5, -1.5), (-2.0, 3.0)]),
             higher(lambda x, y: ad.sum(ad.atan2(ad.asarray([x, y]), y) * ad.asarray([x, y])),
                    lambda x, y: _mp().atan2(x, y) * x + _mp().atan2(y, y) * y, (0.4, 0.7))],
    Op.REDUCE: [first([lambda x, y, z: ad.asarray([x, y, z]).sum(),
                       lambda x, y, z: np.sum(ad.asarray([[x, y, z]]), axis=1)[0]],
                      lambda x, y, z: x + y + z, lambda x, y, z: [1.0, 1.0, 1.0],
                      [(1.5, -2.0, 0.25), (0.0, 3.0, -7.5)]),
                higher(lambda x, y, z: np.mean(ad.asarray([x * y, y, z * z])),
                       lambda x, y, z: (x * y + y + z * z) / 3, (0.4, 0.7, -1.2))],
    Op.MATMUL: [first([lambda x, y, z: ad.asarray([x, y]) @ ad.asarray([y, z]),
                       lambda x, y, z: np.dot(ad.asarray([[x, y]]), ad.asarray([y, z]))[0]],
                      lambda x, y, z: x * y + y * z, lambda x, y, z: [y, x + z, y],
                      [(1.5, -2.0, 0.25), (0.0, 3.0, -7.5)]),
                higher(lambda x, y: ad.asarray([x, y]) @ ad.asarray([x * y, y]),
                       lambda x, y: x * x * y + y * y, (0.4, -0.7))],
    Op.PACK: [first([lambda x, y: ad.asarray([y, x, 3.0])[1] * ad.asarray([y, x])[0],
                     lambda x, y: ad.asarray([y, x]).reshape(2, 1).T.T[0, 0] * x],
                    lambda x, y: x * y, lambda x, y: [y, x], [(1.5, -2.0), (0.0, 3.0)]),
              higher(lambda x, y: ad.sum(ad.asarray([y * y, x]) * ad.asarray([x, 2.0])),
                     lambda x, y: y * y * x + 2 * x, (0.4, -0.7))],
    Op.GATHER: [first([lambda x, y: ad.sum(ad.asarray([x, y])[[1, 1, 0]] * ad.asarray([x, 2.0, y])),
                       lambda x, y: np.sum(np.take(ad.asarray([[x, y]]), [1, 1, 0], axis=1) *
                                           ad.asarray([x, 2.0, y]))],
                      lambda x, y: 2 * x * y + 2 * y, lambda x, y: [2 * y, 2 * x + 2],
                      [(1.5, -2.0), (0.0, 3.0)]),
                higher(lambda x, y: ad.sum(ad.asarray([x * y, y])[[0, 1, 0]] *
                                           ad.asarray([x, y, y])),
                       lambda x, y: x * y * x + y * y + x * y * y, (0.4, -0.7))],
    Op.SCATTER: [first([lambda x, y: ad.sum(ad.asarray([x, y, 1.0]).at[[0, 2]].set(
                            ad.asarray([y * y, x])) * ad.asarray([1.0, x, 2.0])), _set_twice],
                       lambda x, y: y * y + x * y + 2 * x, lambda x, y: [y + 2, 2 * y + x],
                       [(1.5, -2.0), (0.0, 3.0)]),
                 higher(lambda x, y: ad.sum(ad.asarray([x, y]).at[1].set(x * y) *
                                            ad.asarray([y, x])),
                        lambda x, y: x * y + x * x * y, (0.4, -0.7))],
    Op.SCATTER_ADD: [first([lambda x, y: ad.sum(ad.asarray([x, y]).at[[1, 1, 0]].add(
                                ad.asarray([x, y * y, 3.0])) * ad.asarray([y, 2.0]))],
                           lambda x, y: x * y + 5 * y + 2 * x + 2 * y * y,
                           lambda x, y: [y + 2, x + 5 + 4 * y], [(1.5, -2.0), (0.0, 3.0)]),
                     higher(lambda x, y: ad.sum(ad.asarray([x, y]).at[[0, 0]].add(x * y) ** 2),
                            lambda x, y: (x + 2 * x * y) ** 2 + y * y, (0.4, -0.7))],
    Op.LOGADDEXP: [first([ad.logaddexp, np.logaddexp], _lae,
                         lambda x, y: [1 / (1 + math.exp(y - x)), 1 / (1 + math.exp(x - y))],
                         [(0.5, -1.5), (-2.0, 3.0), (800.0, 799.0), (1.0, 1.0)]),
                   higher(lambda x, y: ad.logaddexp(x * y, y), lambda x, y: _mp().log(
                       _mp().exp(x * y) + _mp().exp(y)), (0.4, 0.7), (1.0, 1.0), (-3.0, 2.0))],
    # max/min over axes: the derivative to the extreme element (split evenly among ties)
    Op.AMAX: [first([lambda x, y, z: np.max(ad.asarray([x, y, z])),
                     lambda x, y, z: ad.asarray([[x, y], [z, y]]).max(axis=1)[0] + 0.0 * z],
                    lambda x, y, z: max(x, y), lambda x, y, z: [1.0 * (x > y), 1.0 * (y > x), 0.0],
                    [(1.5, -2.0, 0.25), (0.0, 3.0, -7.5)], fd=True),
              higher(lambda x, y, z: np.max(ad.asarray([x * y, y, z * z])) * x,
                     lambda x, y, z: max(x * y, y, z * z) * x, (0.4, 0.7, -1.2))],
    Op.AMIN: [first([lambda x, y, z: np.min(ad.asarray([x, y, z])),
                     lambda x, y, z: np.amin(ad.asarray([[x], [y], [z]]), axis=0)[0]],
                    lambda x, y, z: min(x, y, z),
                    lambda x, y, z: [1.0 * (x < min(y, z)), 1.0 * (y < min(x, z)),
                                     1.0 * (z < min(x, y))],
                    [(1.5, -2.0, 0.25), (0.0, 3.0, -7.5)]),
              higher(lambda x, y, z: ad.asarray([x * y, y, z * z]).min() * y,
                     lambda x, y, z: min(x * y, y, z * z) * y, (0.4, 0.7, -1.2))],
    # product over axes: exact with zeros (no division)
    Op.PROD: [first([lambda x, y, z: np.prod(ad.asarray([x, y, z])),
                     lambda x, y, z: ad.asarray([[x, y], [z, 1.0]]).prod(axis=0)[0] * y],
                    lambda x, y, z: x * y * z, lambda x, y, z: [y * z, x * z, x * y],
                    [(1.5, -2.0, 0.25), (0.0, 3.0, -7.5), (0.0, 0.0, 2.0)]),
              higher(lambda x, y, z: np.prod(ad.asarray([x * y, y, z + x])),
                     lambda x, y, z: x * y * y * (z + x), (0.4, 0.7, -1.2), (0.0, 0.5, 0.0))],
}


def table(test):
    """op -> its cases for test ("first", "second" or "taylor"), in op order; an op without any
    stays out, so the test for a missing case fails."""
    out = {op: [c for c in CASES.get(op, []) if c.serves(test)] for op in Op}
    return {op: cases for op, cases in out.items() if cases}


def case_params(cases):
    """(all, with rules, without rules): pytest params (op, k, point) for every point of every
    case of a table, id "OP-k-j"."""
    all_ids = [pytest.param(op, k, p, id=f"{op.name}-{k}-{j}")
               for op, cs in cases.items() for k, case in enumerate(cs)
               for j, p in enumerate(case.points)]
    op_ids = [p for p in all_ids if cases[p.values[0]][p.values[1]].raises is None]
    no_rule_ids = [p for p in all_ids if cases[p.values[0]][p.values[1]].raises is not None]
    return all_ids, op_ids, no_rule_ids


SLOPES = (1.0, -0.75, 1.5, 0.5)


def operands(point, x):
    """Operand i = a_i + x_i (b_i + x_i / 2): at x = 0 the case's point, with curvature, so the
    op's first partials meet the operands' second derivatives and vice versa; along a direction
    its series has a nonzero second coefficient, so every term of the op's recurrence is
    exercised."""
    return [a + xi * (b + 0.5 * xi) for a, xi, b in zip(point, x, SLOPES)]


def case_ids(tab):
    """pytest params (op, k), id "OP-k", for every case k of every op of tab."""
    return [pytest.param(op, k, id=f"{op.name}-{k}") for op, cases in tab.items()
            for k in range(len(cases))]


def missing_cases(tab, which):
    """A test's check that every op of ops.def has a case in tab (table(which))."""
    missing = [op.name for op in Op if op not in tab]
    assert not missing, f"ops without a {which} case in tests/op_cases.py: {missing}"
    assert set(tab) <= set(Op)


def records_its_op(program, op, k, point):
    """A case's program, recorded at its point, holds the op."""
    tape = ad.record(program, np.zeros(len(point)))
    assert tape.stats()["by_opcode"].get(op.name.lower(), 0) >= 1, \
        context(op, f"case {k}", point, True)


def recorded_case(tab, program, op, k, point):
    """(case k of op in tab, its number m of operands, program(case, point) recorded at x = 0:
    at the case's point)."""
    case = tab[op][k]
    m = len(point)
    return case, m, ad.record(program(case, point), np.zeros(m))


def table_checks(tab, which, program):
    """The two checks of a test module's op table tab (table(which)), as test functions for the
    module to name: every op of ops.def has a case, and every case's program(case, point),
    recorded at its point, holds its op."""
    def every_op_has_a_case():
        """Adding an op to csrc/ops.def without a case in tab breaks the suite."""
        missing_cases(tab, which)

    @pytest.mark.parametrize("op, k, point", case_params(tab)[0])
    def case_records_its_op(op, k, point):
        records_its_op(program(tab[op][k], point), op, k, point)

    return every_op_has_a_case, case_records_its_op


def context(op, what, point, fresh):
    """A failing op test's message: the op and its case, the point, a fresh or replayed tape
    (fresh: recorded at this point; replayed: recorded elsewhere, swept here)."""
    point = tuple(float(v) for v in np.ravel(point))
    return f"{op.name} {what} at {point}, on a {'fresh' if fresh else 'replayed'} tape"
