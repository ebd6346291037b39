"""A tape of 10**8 operations records and sweeps. Slow: tens of seconds and a
few GB of memory; deselected by default, run with ``python -m pytest -m slow``."""
import pytest
from numpy.testing import assert_allclose

import tapead as ad

N_OPS = 10 ** 8


@pytest.mark.slow
def test_tape_of_1e8_operations_records_and_sweeps():
    with ad.Tape() as t:
        a, b = t.variables([3.0, 0.5])
        y = a
        for _ in range(N_OPS // 2):
            y = (y + b) * 0.5                 # y_k = 2^-k a + (1 - 2^-k) b: contracts to b
        t.outputs(y)
    assert len(t) == N_OPS
    assert t.nbytes / len(t) <= 10
    assert_allclose(y.value, 0.5, rtol=1e-12)
    # dy/da = 2^-k underflows to 0; dy/db = 1 - 2^-k = 1
    for x in ([3.0, 0.5], [-7.0, 2.0]):
        assert_allclose(t(x), x[1], rtol=1e-12)
        g = t.gradient(x)
        assert g[0] == 0.0 and g[1] == pytest.approx(1.0, rel=1e-12)
        J = t.jacobian(x, mode="forward")
        assert J[0] == 0.0 and J[1] == pytest.approx(1.0, rel=1e-12)
    assert t.stats()["ops"] == N_OPS
    swept = t.stats()["swept"]
    assert swept["adjoint"] == 2 * N_OPS and swept["tangent"] == 2 * 2 * N_OPS
