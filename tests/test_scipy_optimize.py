"""scipy.optimize: a tape recorded once from the Rosenbrock Python loop drives
scipy.optimize.minimize(method="trust-ncg", jac=tape.gradient, hessp=tape.hvp) to the known
minimum (all ones) within one iteration of the same run with scipy's own rosen_der and
rosen_hess_prod.

The iteration count of a long trust-region run is chaotic under rounding: from x0 = 0 a relative
change of 1e-15 in scipy's own gradient moves res.nit by ten or more. The comparison is made from
starting points where it is not, and the test checks that first (a control run with scipy's own
gradient perturbed by one part in 10^15 must stay within the same +-1).
"""
import numpy as np
import pytest

import tapead as ad

from helpers import rosen_loop

opt = pytest.importorskip("scipy.optimize")

N = 100
STARTS = {
    "scipy-docs-x0": np.tile([1.3, 0.7, 0.8, 1.9, 1.2], N // 5),   # scipy's tutorial point
    "half": np.full(N, 0.5),
    "ramp": np.linspace(-1.2, 1.2, N),
}


@pytest.fixture(scope="module")
def tape():
    """Recorded once, at a point unrelated to any start; every call below replays it."""
    return ad.record(rosen_loop, np.zeros(N))


@pytest.mark.parametrize("start", sorted(STARTS))
def test_trust_ncg_with_tape_gradient_and_hvp(tape, start):
    x0 = STARTS[start]
    ops = len(tape)
    ref = opt.minimize(opt.rosen, x0, method="trust-ncg", jac=opt.rosen_der,
                       hessp=opt.rosen_hess_prod)
    control = opt.minimize(opt.rosen, x0, method="trust-ncg",
                           jac=lambda x: opt.rosen_der(x) * (1.0 + 1e-15),
                           hessp=opt.rosen_hess_prod)
    assert ref.success and abs(control.nit - ref.nit) <= 1, "start point is not a fair test"

    res = opt.minimize(tape.forward, x0, method="trust-ncg", jac=tape.gradient, hessp=tape.hvp)
    assert res.success, res.message
    assert abs(res.nit - ref.nit) <= 1, (res.nit, ref.nit)
    np.testing.assert_allclose(res.x, np.ones(N), rtol=0, atol=1e-5)
    assert res.fun < 1e-10
    np.testing.assert_allclose(res.fun, opt.rosen(res.x), rtol=1e-12, atol=1e-20)
    assert len(tape) == ops and tape.stats()["rerecords"] == 0   # replayed, never re-recorded


def test_trust_exact_with_tape_hessian(tape):
    x0 = STARTS["scipy-docs-x0"]
    ref = opt.minimize(opt.rosen, x0, method="trust-exact", jac=opt.rosen_der,
                       hess=opt.rosen_hess)
    res = opt.minimize(tape.forward, x0, method="trust-exact", jac=tape.gradient,
                       hess=tape.hessian)
    assert res.success, res.message
    assert abs(res.nit - ref.nit) <= 1, (res.nit, ref.nit)
    np.testing.assert_allclose(res.x, np.ones(N), rtol=0, atol=1e-6)
