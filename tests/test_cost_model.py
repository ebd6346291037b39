"""The seed's cost model, checked exactly on the operation-visit counters (no timing).

A forward-mode Jacobian of f: R^m -> R^n is one tangent sweep carrying m directions, so it adds
m·len(tape) tangent visits to ``tape.stats()["swept"]``; a reverse-mode one is one adjoint sweep
carrying n directions, n·len(tape) adjoint visits; ``mode="auto"`` takes the cheaper of the two
(bench/test_bench_modes.py times the same family). Every Jacobian here is also checked against
the family's closed form.
"""
import numpy as np
import pytest

import tapead as ad
from tapead.tape import _ADJOINT_COST as ADJOINT_COST

from helpers import chain_family, chain_jacobian

STEPS = 40                # the family of bench/test_bench_modes.py (bench/benchlib.py), shorter
SIZES = (1, 2, 3, 5, 8)


def family(x, n_out):
    """F: R^m -> R^n: s = Σ x_i, then s <- s + h (1 - s³) STEPS times; n outputs read off the
    chain."""
    return chain_family(x, n_out, STEPS)


def family_jacobian(x, n_out):
    return chain_jacobian(x, n_out, STEPS)


def record(m, n):
    x = np.linspace(0.1, 0.3, m) / m
    return ad.record(lambda v: family(list(v), n), x), x


def visits(tape, call):
    before = dict(tape.stats()["swept"])
    result = call()
    after = tape.stats()["swept"]
    return result, {k: after[k] - before[k] for k in before}


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("m", SIZES)
@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_jacobian_costs_m_tangent_or_n_adjoint_sweeps(mode, m, n):
    """forward: m tangent directions, no adjoint; reverse: n adjoint directions, no tangent."""
    tape, x = record(m, n)
    J, v = visits(tape, lambda: tape.jacobian(x, mode=mode))
    np.testing.assert_allclose(J, family_jacobian(x, n), rtol=1e-13)
    swept, idle, k = ("tangent", "adjoint", m) if mode == "forward" else ("adjoint", "tangent", n)
    assert v[swept] == k * len(tape)
    assert v[idle] == 0
    assert v["primal"] == len(tape)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("m", SIZES)
def test_auto_picks_the_cheaper_mode(m, n):
    """auto's visits are those of the cheaper mode by the cost model, an adjoint direction
    weighing ADJOINT_COST tangent directions: m·len(tape) tangent visits when m <= c·n (ties go
    forward), else n·len(tape) adjoint visits."""
    tape, x = record(m, n)
    J, v = visits(tape, lambda: tape.jacobian(x, mode="auto"))
    np.testing.assert_allclose(J, family_jacobian(x, n), rtol=1e-13)
    forward, reverse = m * len(tape), n * len(tape)
    if m <= ADJOINT_COST * n:
        assert (v["tangent"], v["adjoint"]) == (forward, 0)
    else:
        assert (v["tangent"], v["adjoint"]) == (0, reverse)


def test_auto_is_never_dearer_than_either_mode_on_the_grid():
    """Over a grid of (m, n), auto's weighted op-visits (an adjoint visit weighing ADJOINT_COST
    tangent visits) never exceed the cheaper mode's."""
    for m in (1, 4, 16, 64):
        for n in (1, 4, 16, 64):
            tape, x = record(m, n)
            _, va = visits(tape, lambda: tape.jacobian(x, mode="auto"))
            _, vf = visits(tape, lambda: tape.jacobian(x, mode="forward"))
            _, vr = visits(tape, lambda: tape.jacobian(x, mode="reverse"))
            cost = lambda v: v["tangent"] + ADJOINT_COST * v["adjoint"]   # noqa: E731
            assert cost(va) == min(cost(vf), cost(vr)), (m, n)


def test_the_cost_grows_linearly_in_the_directions():
    """jvp with k directions adds k·len(tape) tangent visits, vjp with k weight vectors
    k·len(tape) adjoint visits, gradient one adjoint sweep: the counters the slopes of the
    benchmark are measured against."""
    tape, x = record(3, 2)
    ops = len(tape)
    for k in (1, 2, 7):
        _, v = visits(tape, lambda: tape.jvp(x, np.ones((3, k))))
        assert (v["tangent"], v["adjoint"], v["primal"]) == (k * ops, 0, ops)
        _, v = visits(tape, lambda: tape.vjp(x, np.ones((k, 2))))
        assert (v["tangent"], v["adjoint"], v["primal"]) == (0, k * ops, ops)
    tape1, x1 = record(5, 1)
    _, v = visits(tape1, lambda: tape1.gradient(x1))
    assert (v["tangent"], v["adjoint"]) == (0, len(tape1))


def test_ops_do_not_depend_on_n_and_grow_by_one_per_input():
    """The family's internal work is fixed: len(tape) = (m - 1) + 5·STEPS for every n."""
    for m in (1, 2, 9):
        for n in (1, 3, 10):
            tape, _ = record(m, n)
            assert len(tape) == (m - 1) + 5 * STEPS
            assert (tape.n_inputs, tape.n_outputs) == (m, n)
