"""Hypothesis-generated random programs: expression DAGs with loops and reuse of earlier values,
drawn from ops whose domain stays valid for every real input (log of square + 1, exp of tanh,
...). One interpreter runs a program on Vars (recording a tape) and on plain floats (the
elementary functions accept both); the tape's reverse Jacobian, forward Jacobian, jvp/vjp and
central differences of the plain program must agree."""
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import tapead as ad  # noqa: E402

# unary steps: each total on the reals, smooth, with moderate growth
UNARY = {
    "sin": ad.sin,
    "cos": ad.cos,
    "tanh": ad.tanh,
    "atan": ad.atan,
    "asinh": ad.asinh,
    "erf": ad.erf,
    "neg": lambda u: -u,
    "abs_smooth": lambda u: ad.sqrt(u * u + 1.0),
    "log_sq1": lambda u: ad.log(ad.square(u) + 1.0),
    "log1p_sq": lambda u: ad.log1p(u ** 2),
    "exp_tanh": lambda u: ad.exp(ad.tanh(u)),
    "expm1_sin": lambda u: ad.expm1(ad.sin(u)),
    "cbrt_sq1": lambda u: ad.cbrt(u * u + 0.5),
    "sinh_tanh": lambda u: ad.sinh(ad.tanh(u)),
    "cosh_sin": lambda u: ad.cosh(ad.sin(u)),
    "asin_tanh": lambda u: ad.asin(0.9 * ad.tanh(u)),
    "acos_sin": lambda u: ad.acos(0.9 * ad.sin(u)),
    "atanh_tanh": lambda u: ad.atanh(0.9 * ad.tanh(u)),
    "acosh_sq": lambda u: ad.acosh(u * u + 1.5),
    "log2_sq": lambda u: ad.log2(u * u + 2.0),
    "log10_exp": lambda u: ad.log10(ad.exp(ad.sin(u)) + 1.0),
    "tan_atan": lambda u: ad.tan(0.5 * ad.atan(u)),
    "scale": lambda u: 0.75 * u - 0.25,
    "pow_const": lambda u: (u * u + 1.0) ** 0.75,
    "rpow": lambda u: 1.5 ** ad.sin(u),
    "square": lambda u: ad.square(ad.sin(u)) * 2.0,
}
# binary steps
BINARY = {
    "add": lambda u, v: u + v,
    "sub": lambda u, v: u - v,
    "mul": lambda u, v: u * ad.tanh(v),
    "mul_plain": lambda u, v: u * v,
    "div": lambda u, v: u / (1.0 + v * v),
    "pow": lambda u, v: (u * u + 1.0) ** ad.sin(v),
    "hypot": lambda u, v: ad.hypot(u, v * v + 0.5),
    "atan2": lambda u, v: ad.atan2(u, v * v + 1.0),
    "const_sub": lambda u, v: 2.0 - u * 0.5 + v / 3.0,
    "sum3": lambda u, v: ad.sum([u, v, u]),
    "dot": lambda u, v: ad.dot([u, v], [ad.sin(v), 0.5]),
}
UNARY_NAMES, BINARY_NAMES = sorted(UNARY), sorted(BINARY)

step = st.one_of(
    st.tuples(st.just("unary"), st.sampled_from(UNARY_NAMES), st.integers(0, 10 ** 6)),
    st.tuples(st.just("binary"), st.sampled_from(BINARY_NAMES), st.integers(0, 10 ** 6),
              st.integers(0, 10 ** 6)),
    # a loop: acc = op(acc, earlier value) repeated, every iterate kept for reuse
    st.tuples(st.just("loop"), st.sampled_from(BINARY_NAMES), st.integers(0, 10 ** 6),
              st.integers(0, 10 ** 6), st.integers(2, 6)),
    # a selection with a value as condition (WHERE on a tape)
    st.tuples(st.just("where"), st.integers(0, 10 ** 6), st.integers(0, 10 ** 6),
              st.integers(0, 10 ** 6)),
)


@st.composite
def programs(draw):
    m = draw(st.integers(1, 4))
    steps = draw(st.lists(step, min_size=1, max_size=14))
    n_out = draw(st.integers(1, 3))
    outs = draw(st.lists(st.integers(0, 10 ** 6), min_size=n_out, max_size=n_out))
    x = draw(st.lists(st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False),
                      min_size=m, max_size=m))
    return m, steps, outs, np.array(x)


def run(program, x, trace=None):
    """Run the program on x (array of Vars or of floats); returns the list of outputs."""
    m, steps, outs, _ = program
    vals = [x[i] for i in range(m)]
    for s in steps:
        kind = s[0]
        if kind == "unary":
            vals.append(UNARY[s[1]](vals[s[2] % len(vals)]))
        elif kind == "binary":
            vals.append(BINARY[s[1]](vals[s[2] % len(vals)], vals[s[3] % len(vals)]))
        elif kind == "loop":
            acc = vals[s[2] % len(vals)]
            other = vals[s[3] % len(vals)]
            for _ in range(s[4]):
                acc = BINARY[s[1]](acc, other)
                vals.append(acc)
        else:
            c = vals[s[1] % len(vals)]
            cond = ad.sin(3.0 * c) + 0.3
            if trace is not None:
                trace.append(abs(_value(cond)))
            vals.append(ad.where(cond, vals[s[2] % len(vals)], vals[s[3] % len(vals)]))
    if trace is not None:
        trace.append(-max(abs(_value(v)) for v in vals))
    return [vals[-1 - (o % len(vals))] for o in outs]


def central_differences(f, x):
    """ad.finite_diff's central differences, Richardson-extrapolated over the steps h, h/2 and
    h/4 (error O(h^4)). Returns the estimate and how far the two extrapolations disagree: the
    oracle is only trusted where it has converged (random loops can have large high
    derivatives)."""
    h = 4e-3 * np.maximum(1.0, np.abs(x))
    d1, d2, d4 = (ad.finite_diff(f, x, h=h / s) for s in (1, 2, 4))
    r1, r2 = (4.0 * d2 - d1) / 3.0, (4.0 * d4 - d2) / 3.0
    return r2, np.abs(r2 - r1).max()


def _value(v):
    return v.value if isinstance(v, ad.Var) else float(v)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_reverse_forward_and_central_differences_agree(program):
    m, steps, outs, x = program
    trace = []
    y_plain = np.array(run(program, x, trace), dtype=float)
    conds, biggest = trace[:-1], -trace[-1]
    assume(np.all(np.isfinite(y_plain)) and biggest < 1e4)
    assume(all(c > 1e-3 for c in conds))          # central differences stay on one branch

    tape = ad.record(lambda u: run(program, u), x)
    n = len(outs)
    assert tape.n_inputs == m and tape.n_outputs == n
    assert_allclose(tape(x), y_plain, rtol=1e-13, atol=1e-14)

    Jr = tape.jacobian(x, mode="reverse")
    Jf = tape.jacobian(x, mode="forward")
    assert Jr.shape == Jf.shape == (n, m)
    scale = max(1.0, np.abs(Jr).max())
    assert_allclose(Jf, Jr, rtol=1e-12, atol=1e-13 * scale)

    fd, spread = central_differences(lambda u: np.array(run(program, u), dtype=float), x)
    atol = 1e-6 * max(scale, biggest)
    assume(spread < atol / 10)                    # the numeric oracle converged
    assert_allclose(Jr, fd, rtol=1e-6, atol=atol)

    # k directions / weights in one sweep, and the dot-product identity
    rng = np.random.default_rng(len(steps))
    V, W = rng.normal(size=(m, 3)), rng.normal(size=(2, n))
    _, JV = tape.jvp(x, V)
    _, JtW = tape.vjp(x, W)
    assert_allclose(JV, Jr @ V, rtol=1e-12, atol=1e-12 * scale)
    assert_allclose(JtW, W @ Jr, rtol=1e-12, atol=1e-12 * scale)
    assert_allclose(W @ JV, JtW @ V, rtol=1e-11, atol=1e-11 * scale)

    # the same tape replayed at a nearby point agrees with a fresh recording there
    x2 = x + 0.01 * rng.normal(size=m)
    trace2 = []
    run(program, x2, trace2)
    if all(c > 1e-3 for c in trace2[:-1]):
        fresh = ad.record(lambda u: run(program, u), x2)
        assert_allclose(tape.jacobian(x2, mode="reverse"), fresh.jacobian(x2, mode="reverse"),
                        rtol=1e-13, atol=1e-14 * scale)
        assert_allclose(tape(x2), fresh(x2), rtol=1e-14, atol=1e-15)


def test_programs_cover_every_step_kind():
    """The interpreter handles each unary and binary step on Vars and on floats alike."""
    x = np.array([0.3, -1.2])
    for name in UNARY_NAMES:
        prog = (2, [("unary", name, 0)], [0], x)
        t = ad.record(lambda u: run(prog, u), x)
        fd = ad.finite_diff(lambda u: np.array(run(prog, u), dtype=float), x)
        assert_allclose(t.jacobian(x), fd, rtol=1e-6, atol=1e-8, err_msg=name)
    for name in BINARY_NAMES:
        prog = (2, [("binary", name, 0, 1)], [0], x)
        t = ad.record(lambda u: run(prog, u), x)
        fd = ad.finite_diff(lambda u: np.array(run(prog, u), dtype=float), x)
        assert_allclose(t.jacobian(x), fd, rtol=1e-6, atol=1e-8, err_msg=name)
    assert math.isfinite(run((1, [("where", 0, 0, 0)], [0], x), x)[0])
