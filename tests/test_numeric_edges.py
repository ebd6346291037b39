"""Silent wrong answers at the edges of the double range (issue items 8 and 9), against mpmath.

- atan2 and hypot: gradient, forward Jacobian, Hessian and hvp at points from the subnormals to
  1.7e308, mixed scales (x = 1e-200, y = 1e200) and zeros, against their closed forms; the rules
  formed x^2 + y^2 (or z^3), which overflows or underflows far inside the range of the result;
- atan2, hypot and acosh Taylor series there against mpmath.taylor; order 1 = jvp;
- pow's Taylor series with a moving exponent at x == 0 (order 1 = jvp, 2 y_2 = v.H v, where
  exp(y log x) gave NaN) and where x^y0 under- or overflows or x < 0 with a still exponent;
- x ** c with a constant c, tiny (1e-170: r + 1 rounded c away) or not, at every scale.

The oracle of a Taylor series is mpmath.taylor of t = sigma tau, sigma chosen so that the
function of tau has unit scale (its nearest singularity at |tau| ~ 2), the k-th coefficient then
divided by sigma^k: mpmath's numbers have no exponent range to leave.
"""
import math

import numpy as np
import pytest

import tapead as ad

mp = pytest.importorskip("mpmath")

TINY = 2.0 ** -1074          # the subnormal spacing


def near(got, want, rtol, scale=0):
    """got (a double) is want (mpmath) within rtol of max(|want|, scale) - scale: the size of the
    terms that make want - plus two units of the subnormal spacing; an infinite got: want is
    beyond the double range, with its sign."""
    if math.isinf(got):
        return float(want) == got
    return abs(mp.mpf(got) - want) <= rtol * max(abs(want), scale) + 2 * TINY   # NaN: False


def series_oracle(F, point, v, sigma, n):
    """Coefficients 0..n (mpmath) of t -> F(point + t v) at 0, and the scale of their terms:
    mpmath.taylor of tau -> F(point + sigma tau v), the k-th coefficient divided by sigma^k."""
    with mp.workdps(40):
        p = [mp.mpf(a) for a in point]
        d = [mp.mpf(b) for b in v]
        s = mp.mpf(sigma)
        g = mp.taylor(lambda tau: F(*[a + s * tau * b for a, b in zip(p, d)]), 0, n,
                      chop=False)
        big = max(abs(c) for c in g)
        return [c / s ** k for k, c in enumerate(g)], [big / s ** k for k in range(n + 1)]


def _binomial(c, k):
    """C(c, k) for any c (mpmath)."""
    r = mp.mpf(1)
    for i in range(k):
        r *= (c - i) / (i + 1)
    return r


def check_series(y, want, scales, rtol, what):
    bad = [(k, float(y[k]), float(want[k])) for k in range(len(want))
           if not near(float(y[k]), want[k], rtol, scales[k])]
    assert not bad, f"{what}: (order, got, want) {bad}"


# ---- atan2 and hypot: first and second partials at every scale -------------------------------
SCALES = [5e-324, 3e-320, 1e-310, 2.3e-308, 1e-300, 1e-200, 1e-170, 1e-160, 1e-100, 0.7, 1e100,
          1e155, 1e160, 1e200, 1e300, 1.7e308]
RATIOS = [1.0, -0.5, 3e-20, 1e-160, 0.0]
POINTS = sorted({p for s in SCALES for q in RATIOS for p in ((s, q * s), (q * s, -s))} |
                {(1e-200, 1e200), (1e200, -1e-200), (-1e-300, 1e300), (5e-324, 1e308),
                 (1e-310, 1e-320), (1e-200, 1e-100), (1e100, 1e80), (-3e-170, 2e154)})


def atan2_partials(x, y):
    r2 = x * x + y * y
    r4 = r2 * r2
    return [y / r2, -x / r2], [[-2 * x * y / r4, (x * x - y * y) / r4],
                               [(x * x - y * y) / r4, 2 * x * y / r4]]


def hypot_partials(x, y):
    h = mp.sqrt(x * x + y * y)
    h3 = h * h * h
    return [x / h, y / h], [[y * y / h3, -x * y / h3], [-x * y / h3, x * x / h3]]


@pytest.mark.parametrize("f, partials", [(ad.atan2, atan2_partials), (ad.hypot, hypot_partials)],
                         ids=["atan2", "hypot"])
def test_partials_at_every_scale(f, partials):
    """gradient, forward Jacobian, Hessian and its columns (hvp) at ~170 points from 5e-324 to
    1.7e308 against the closed forms: x^2 + y^2 left the range below ~1e-154 and above ~1e154
    (atan2's gradient was 0 where its truth is 1e169), hypot's z^3 outside ~[1e-103, 5e102]."""
    tape = ad.record(f, 1.0, 2.0)
    bad = []
    with mp.workdps(30):
        for x, y in POINTS:
            if x == 0.0 and y == 0.0:
                continue
            g_want, h_want = partials(mp.mpf(x), mp.mpf(y))
            p = (x, y)
            H = tape.hessian(p)
            got = {"gradient": tape.gradient(p), "forward": tape.jacobian(p, mode="forward"),
                   "hessian 0": H[0], "hessian 1": H[1],
                   "hvp 0": tape.hvp(p, (1.0, 0.0)), "hvp 1": tape.hvp(p, (0.0, 1.0))}
            for name, vals in got.items():
                want = g_want if name in ("gradient", "forward") else h_want[int(name[-1])]
                for i in range(2):
                    if not near(float(vals[i]), want[i], 1e-14):
                        bad.append((p, name, i, float(vals[i]), float(want[i])))
    assert not bad, f"{len(bad)} wrong, e.g. (point, what, i, got, want) {bad[:6]}"


# ---- atan2, hypot, acosh: Taylor series at every scale -------------------------------------
TAYLOR_POINTS = [(1e-300, 2e-300), (-1e-300, 5e-301), (1e-200, 1e200), (1e200, -1e-200),
                 (1e-170, 2e-170), (3e154, -1e155), (1e200, 3e200), (1e300, -1e300),
                 (1e-310, 3e-310), (0.7, -1.2), (-2.5e-320, 1e-100)]


def directions(point):
    m = max(abs(point[0]), abs(point[1]))
    return [(0.6 * m, -0.8 * m), (1.0, 0.5), (-0.3 * m, 1e-20 * m), (1e-150, 2e-150)]


def partials_are_doubles(partials, point):
    """Every first partial at point is 0 or a normal double (the jvp is built from them)."""
    with mp.workdps(30):
        g, _ = partials(mp.mpf(point[0]), mp.mpf(point[1]))
    return all(p == 0 or 2.3e-308 < abs(p) < 1e308 for p in g)


@pytest.mark.parametrize("f, mpf, partials", [(ad.atan2, mp.atan2, atan2_partials),
                                              (ad.hypot, mp.hypot, hypot_partials)],
                         ids=["atan2", "hypot"])
@pytest.mark.parametrize("point", TAYLOR_POINTS, ids=[f"{x:g},{y:g}" for x, y in TAYLOR_POINTS])
def test_atan2_hypot_taylor_at_every_scale(f, mpf, partials, point):
    """Order 4 against mpmath along directions on the point's scale and off it: the series
    divided by x^2 + y^2 (atan2: NaN below ~2e-162) or took its square root (hypot)."""
    tape = ad.record(f, 1.0, 2.0)
    for v in directions(point):
        y = tape.taylor(point, v, order=4)
        sigma = mp.hypot(*point) / mp.hypot(*v) / 2
        want, scales = series_oracle(mpf, point, v, sigma, 4)
        check_series(y, want, scales, 1e-13, f"{f.__name__} at {point} along {v}")
        if partials_are_doubles(partials, point):       # else the tangent rule cannot be right
            jvp = tape.jvp(point, v)[1]
            assert y[1] == pytest.approx(jvp, rel=1e-14, abs=2 * TINY), v


@pytest.mark.parametrize("x", [1.5, 1e10, 1e154, 1.5e154, 1e200, 1e300, 1.7e308])
def test_acosh_taylor_for_large_x(x):
    """sqrt(x^2 - 1) overflowed above 1.3e154: order 1 was 0 instead of ~1/x."""
    tape = ad.record(ad.acosh, 2.0)
    for v in (1.0, 0.3 * x, -1e-100 * x):
        y = tape.taylor(x, v, order=5)
        want, scales = series_oracle(mp.acosh, (x,), (v,), (mp.mpf(x) - 1) / abs(v) / 2, 5)
        check_series(y, want, scales, 1e-13, f"acosh at {x} along {v}")
        assert y[1] == pytest.approx(tape.jvp(x, v)[1], rel=1e-14, abs=2 * TINY)
        assert y[1] != 0.0


# ---- pow with a moving exponent ---------------------------------------------------------------
@pytest.mark.parametrize("y0", [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5])
def test_pow_moving_exponent_at_zero_base(y0):
    """x ** y at x == 0, both moving: exp(y log x) made every order NaN; dz/dy = 0 there, so the
    exponent stays y0 (its first and second partials in y are 0): order 1 = jvp exactly and
    2 y_2 = v.H v."""
    tape = ad.record(lambda a, b: a ** b, 1.0, 2.0)
    p, v = (0.0, y0), (1.0, 0.5)
    y = tape.taylor(p, v, order=3)
    jvp = tape.jvp(p, v)[1]
    assert y[1] == jvp
    vhv = float(np.dot(v, tape.hvp(p, v)))
    if np.isfinite(vhv):
        assert 2 * y[2] == pytest.approx(vhv, rel=1e-15)
    for k in range(4):                          # the (one-sided) series of t ** y0
        if y0 == int(y0):
            want = 1.0 if k == y0 else 0.0
        else:
            want = 0.0 if k < y0 else math.copysign(math.inf, float(_binomial(mp.mpf(y0), k)))
        assert y[k] == want, (k, list(y))


@pytest.mark.parametrize("x, c", [(1e-200, 2.5), (1e-300, 2.0), (1e300, 1.03), (1e-130, -2.5),
                                  (2.0, 1e-170), (0.3, -1.7)],
                         ids=["underflow", "underflow-2", "overflow", "overflow-2", "tiny",
                              "plain"])
def test_pow_moving_exponent_where_x_to_the_y_leaves_the_range(x, c):
    """exp(y log x) derived every coefficient from z = x^y: all 0 where z underflows (jvp
    2.5e-300 at x = 1e-200, y = 2.5), inf or NaN where it overflows though jvp is finite."""
    tape = ad.record(lambda a, b: a ** b, 1.0, 2.0)
    for v in ((1.0, 0.5), (0.5 * x, -0.25), (0.25 * x, 0.0)):
        y = tape.taylor((x, c), v, order=4)
        jvp = tape.jvp((x, c), v)[1]
        if math.isfinite(jvp):                # (inf - inf where both partials overflow)
            assert y[1] == pytest.approx(jvp, rel=1e-13, abs=2 * TINY)
        sigma = min(mp.mpf(x) / abs(v[0]), 1 / (abs(v[1]) * abs(mp.log(x)) + 1)) / 2
        want, scales = series_oracle(lambda a, b: a ** b, (x, c), v, sigma, 4)
        check_series(y, want, scales, 1e-13, f"{x} ** {c} along {v}")


@pytest.mark.parametrize("x0, c0, want1", [(-2.0, 3.0, 12.0),
                                            (1e300, 1.03, 1.03 * 1e300 ** (1.03 - 1.0)),
                                            (-1.5, 2.0, -3.0)],
                         ids=["negative-base", "overflow", "negative-base-square"])
def test_pow_exponent_still_at_order_one(x0, c0, want1):
    """An exponent that moves only from order 2 (b*b + c0 at b = 0): jvp skips dz/dy (NaN for
    x < 0; z log x infinite where z overflows), so order 1 is dz/dx dx, finite; exp(y log x) was
    NaN there."""
    tape = ad.record(lambda a, b: a ** (b * b + c0), 1.0, 0.0)
    y = tape.taylor((x0, 0.0), (1.0, 1.0), order=3)
    jvp = tape.jvp((x0, 0.0), (1.0, 1.0))[1]
    assert y[1] == pytest.approx(jvp, rel=1e-14) and jvp == pytest.approx(want1, rel=1e-14)


# ---- x ** c: a constant exponent, tiny or not, at every scale ---------------------------------
@pytest.mark.parametrize("c", [1e-170, -1e-170, 3e-300, 1e-12, -2.5e-9, 2.5, -0.75, 1 / 3, 65.0,
                               -70.5],
                         ids=lambda c: f"{c:g}")
def test_pow_constant_exponent_taylor_at_every_scale(c):
    """(x + t v) ** c = sum_k C(c, k) x^(c-k) v^k t^k. (r + 1) j - k in the recurrence rounded a
    tiny c away (Z[1] = 0 for c = 1e-170, relative error eps/|c| at every order); X0^(r-k) p_k
    left the range at tiny or huge x with v ~ x (0, inf or NaN for any c)."""
    tape = ad.record(lambda u: u ** c, 2.0)
    bad = []
    with mp.workdps(60):
        cm = mp.mpf(c)
        for x in (2.0, 0.37, -1.5, 1e-300, 1e-100, 1e-200, 1e100, 1e300, 3e-320):
            if x < 0 and c != int(c):
                continue
            for v in (1.0, 0.5 * x, -2.0 * x, 1e-30 * x):
                y = tape.taylor(x, v, order=5)
                for k in range(1, 6):
                    e = cm - k if c != int(c) else int(c) - k
                    want = _binomial(cm, k) * mp.mpf(x) ** e * mp.mpf(v) ** k
                    if not near(float(y[k]), want, 1e-14):
                        bad.append((x, v, k, float(y[k]), float(want)))
                # jvp's dz/dx = c pow(x, c - 1): a normal double, pow(x, c - 1) too; c - 1
                # rounded costs it eps |log x|
                px, pw = abs(cm * mp.mpf(x) ** (cm - 1)), abs(mp.mpf(x) ** (c - 1.0))
                if 1e-300 < px < 1e300 and pw < 1e300:
                    assert y[1] == pytest.approx(tape.jvp(x, v)[1], rel=1e-13, abs=2 * TINY)
    assert not bad, f"{len(bad)} wrong, e.g. (x, v, order, got, want) {bad[:6]}"


@pytest.mark.parametrize("c", [1e-170, -3e-200, 1e-9, 0.3])
def test_pow_constant_exponent_of_a_curved_series(c):
    """(u^2 + u + 1.5) ** c: every term of the recurrence (X_2 != 0) keeps c's digits."""
    tape = ad.record(lambda u: (u * u + u + 1.5) ** c, 0.3)
    for x, v in ((0.3, 1.0), (-0.2, -0.7)):
        y = tape.taylor(x, v, order=5)
        # coefficients 1.. of exp(c log w) are those of expm1(c log w), of size c: no 1 + c
        want, scales = series_oracle(lambda u: mp.expm1(c * mp.log(u * u + u + 1.5)), (x,),
                                     (v,), 0.5 / abs(v), 5)
        check_series(y[1:], want[1:], scales[1:], 1e-13,
                     f"(u^2 + u + 1.5) ** {c} at {x} along {v}")


def test_cbrt_taylor_at_every_scale():
    """cbrt's series is X^(1/3) by the same recurrence."""
    tape = ad.record(ad.cbrt, 2.0)
    for x in (1e-300, -1e-300, 3e-320, 1e300, -8.0):
        for v in (0.5 * x, 1.0):
            y = tape.taylor(x, v, order=4)
            with mp.workdps(40):
                want = [_binomial(mp.mpf(1) / 3, k) * mp.sign(x) * mp.cbrt(abs(mp.mpf(x))) *
                        (mp.mpf(v) / x) ** k for k in range(5)]
            check_series(y, want, [0] * 5, 1e-14, f"cbrt at {x} along {v}")
