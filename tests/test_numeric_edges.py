"""Silent wrong answers at the edges of the double range (issue items 8 and 9), against mpmath.

- atan2 and hypot: gradient, forward Jacobian, Hessian and hvp at points from the subnormals to
  1.7e308, mixed scales (x = 1e-200, y = 1e200) and zeros, against their closed forms; the rules
  formed x^2 + y^2 (or z^3), which overflows or underflows far inside the range of the result;
- atan2, hypot and acosh Taylor series there against mpmath.taylor; order 1 = jvp.

The oracle of a Taylor series is mpmath.taylor of t = sigma tau, sigma chosen so that the
function of tau has unit scale (its nearest singularity at |tau| ~ 2), the k-th coefficient then
divided by sigma^k: mpmath's numbers have no exponent range to leave.
"""
import math

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
