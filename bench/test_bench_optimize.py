"""Tape.optimize: replays of optimised tapes against the originals and CasADi, and the cost of
optimising, with the ratios measured in one run (group "optimize").

- ``det_minor_gradient``: the warm gradient of det_minor-8 (expansion by minors repeats every
  minor: 109,599 operations, 1,785 after optimising) at x1, optimised; ``speedup`` over the
  unoptimised tape (target >= 10) and, when CasADi is installed, ``casadi_ratio``: CasADi's SX
  Function of the same gradient (bench/peers) over the optimised tape (target >= 20);
- ``sparse_jacobian``: sparse_jacobian-100 (exp(x_j^2/2) recomputed for every term), its
  Jacobian and the gradient of w·y (one reverse sweep), optimised; ``speedup`` over the
  unoptimised tape (target >= 3);
- ``cost``: ``t.optimize()`` itself, in ns per operation of the original (target <= 20 on
  det_minor-8; rosen-10^4, where nothing is removed, and sparse_jacobian-100 for reference).

Every derivative is checked against the problem's oracle and the unoptimised tape first. The
ratios come from benchlib.interleaved_best (both sides timed round-robin right after the
benchmark, so that both see the same machine load), the side the benchmark timed taking the
lesser of that and the benchmark's own best.
"""
import functools

import numpy as np
import pytest

import peers
from benchlib import best, interleaved_best
from problems import make

GROUP = "optimize"
OPT = pytest.mark.benchmark(max_time=0.5, min_rounds=5, warmup=True, warmup_iterations=1)
TARGETS = {"det_minor_gradient": 10.0, "casadi": 20.0, "sparse_jacobian": 3.0, "cost": 20.0}


@pytest.fixture(scope="module")
def tapes():
    """tapes(name, size) -> (problem, tape, optimised tape), recorded once per module."""
    @functools.cache
    def get(name, size):
        p = make(name, size)
        t = peers.get("tapead").record(p, p.x0)
        return p, t, t.optimize()

    yield get
    get.cache_clear()


def describe(benchmark, kind, p, t, o, **more):
    benchmark.group = GROUP
    info = benchmark.extra_info
    info.update(kind="optimize_" + kind, problem=p.name, size=p.size, ops=len(t),
                ops_optimized=len(o), **o.stats()["optimized"], **more)
    return info


def ratio(benchmark, fns, key, over, under, target, timed):
    """info[key] = time of fns[over] / time of fns[under], timed round-robin; each time is the
    lesser of that and, for fns[timed], the benchmark's own best (a burst of load spoils neither
    side alone)."""
    info = benchmark.extra_info
    it = interleaved_best(fns, rounds=21)
    if best(benchmark) is not None:
        it[timed] = min(it[timed], best(benchmark))
    info.update({f"{name}_s": s for name, s in it.items()})
    info[key] = it[over] / it[under]
    info["target"] = target
    info["meets_target"] = info[key] >= target
    print(f"\n{info['problem']}-{info['size']} {info['kind']}: {key} {info[key]:.1f} "
          f"(target >= {target:g}; {len(fns)} timed round-robin: "
          f"{', '.join(f'{k} {v * 1e6:.1f} us' for k, v in it.items())})")


@OPT
def test_det_minor_gradient(benchmark, tapes):
    """The warm gradient of det_minor-8, optimised, against the unoptimised tape."""
    p, t, o = tapes("det_minor", 8)
    g = o.gradient(p.x1)
    p.check(g, p.x1, "optimised tape")
    np.testing.assert_allclose(g, t.gradient(p.x1), rtol=1e-12, atol=1e-12)
    describe(benchmark, "det_minor_gradient", p, t, o)
    benchmark(o.gradient, p.x1)
    fns = {"optimized": lambda: o.gradient(p.x1), "original": lambda: t.gradient(p.x1)}
    ratio(benchmark, fns, "speedup", "original", "optimized", TARGETS["det_minor_gradient"],
          "optimized")


@OPT
def test_det_minor_against_casadi(benchmark, tapes):
    """CasADi's SX Function of the det_minor-8 gradient against the optimised tape's (skipped
    when casadi is not installed: pip install -e ".[peers]")."""
    ca = peers.get("casadi")
    if ca is None:
        pytest.skip(f"casadi: {peers.why_unavailable('casadi')}")
    p, t, o = tapes("det_minor", 8)
    fn = ca.prepare(p)
    p.check(fn(p.x1), p.x1, "casadi")
    describe(benchmark, "casadi", p, t, o, system="casadi")
    benchmark(fn, p.x1)
    fns = {"optimized": lambda: o.gradient(p.x1), "casadi": lambda: fn(p.x1)}
    ratio(benchmark, fns, "casadi_ratio", "casadi", "optimized", TARGETS["casadi"], "casadi")


@OPT
@pytest.mark.parametrize("derivative", ["jacobian", "gradient"])
def test_sparse_jacobian(benchmark, tapes, derivative):
    """sparse_jacobian-100: the Jacobian (forward, 100 directions) or the gradient of w·y (one
    reverse sweep), optimised against unoptimised."""
    p, t, o = tapes("sparse_jacobian", 100)
    w = np.random.default_rng(0).normal(size=t.n_outputs)
    if derivative == "jacobian":
        def run(tape):
            return tape.jacobian(p.x1)
        p.check(run(o), p.x1, "optimised tape")
    else:
        def run(tape):
            return tape.vjp(p.x1, w)[1]
        np.testing.assert_allclose(run(o), w @ p.deriv(p.x1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(run(o), run(t), rtol=1e-12, atol=1e-12)
    describe(benchmark, "sparse_jacobian", p, t, o, derivative=derivative)
    benchmark(run, o)
    fns = {"optimized": lambda: run(o), "original": lambda: run(t)}
    ratio(benchmark, fns, "speedup", "original", "optimized", TARGETS["sparse_jacobian"],
          "optimized")


@pytest.mark.benchmark(max_time=2.0, min_rounds=20, warmup=True, warmup_iterations=3)
@pytest.mark.parametrize("name, size", [("det_minor", 8), ("sparse_jacobian", 100),
                                        ("rosen", 10**4)])
def test_cost(benchmark, tapes, name, size):
    """t.optimize() in ns per operation of the original tape."""
    p, t, o = tapes(name, size)
    info = describe(benchmark, "cost", p, t, o)
    benchmark(t.optimize)
    b = best(benchmark)
    if b is not None:
        info["ns_per_op"] = b / len(t) * 1e9
        info["target_ns_per_op"] = TARGETS["cost"]
        info["meets_target"] = info["ns_per_op"] <= TARGETS["cost"]
        print(f"\n{name}-{size}: t.optimize() {b * 1e3:.2f} ms, {info['ns_per_op']:.1f} ns/op "
              f"({len(t)} -> {len(o)} ops)")
