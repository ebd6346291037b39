"""The problem suite (CppAD's speed tests, bench/problems.py) on tapead.

For every problem and size:
- cold: ``ad.record(f, x0)`` and the first derivative (gradient, Jacobian or Hessian by the
  problem's kind);
- warm: the derivative replayed from the same tape at a new point x1;
- sparse (Jacobian and Hessian problems): the warm derivative with ``sparse=True`` (a
  scipy.sparse array from one direction per colour; the pattern and colouring found on an
  untimed first call), extra_info "colours";
- optimized: the warm derivative from ``t.optimize()`` of the same recording, extra_info
  "ops_optimized" and "speedup" (the unoptimised tape's time over the optimised one's, the two
  timed round-robin in the same test: benchlib.interleaved_best).
Each is checked against the problem's oracle before it is timed (det_lu: its pivot
comparisons are branch guards on the tape; when one flips at x1 the tape re-records itself there
on the first replay, counted in extra_info "rerecords_at_x1", and the timed replays that follow
run the re-recorded tape). extra_info holds len(tape), ns per operation, and
the ratio to one plain-Python evaluation of the same f on floats measured in the same session
(conftest.problem_plain).

Default sizes keep the run short; ``--full`` adds the larger ones.
"""
import pytest

import peers
from benchlib import interleaved_best
from problems import make

FULL = pytest.mark.full
CASES = [
    ("det_minor", 4), ("det_minor", 5), ("det_minor", 6), ("det_minor", 7), ("det_minor", 8),
    ("det_lu", 10), ("det_lu", 20), ("det_lu", 40),
    ("mat_mul", 5), ("mat_mul", 10), ("mat_mul", 20),
    ("ode", 5), ("ode", 10), ("ode", 20),
    ("poly", 10), ("poly", 100),
    ("sparse_jacobian", 10), ("sparse_jacobian", 50),
    ("sparse_hessian", 10), ("sparse_hessian", 50),
]
FULL_CASES = [("det_lu", 80), ("mat_mul", 40), ("ode", 40), ("poly", 1000),
              ("sparse_jacobian", 200), ("sparse_hessian", 200)]
PARAMS = [pytest.param(name, size, id=f"{name}-{size}") for name, size in CASES] + \
         [pytest.param(name, size, id=f"{name}-{size}", marks=FULL) for name, size in FULL_CASES]
SPARSE = ("ode", "poly", "sparse_jacobian", "sparse_hessian")     # Jacobians and Hessians
SPARSE_PARAMS = [p for p in PARAMS if p.values[0] in SPARSE]

COLD = pytest.mark.benchmark(max_time=0.5, min_rounds=3, warmup=False)
WARM = pytest.mark.benchmark(max_time=0.3, min_rounds=5, warmup=True, warmup_iterations=1)


def describe(benchmark, problem, phase, ops, plain_s):
    benchmark.group = f"problem {problem.name}"
    info = benchmark.extra_info
    info.update(kind=f"problem_{phase}", problem=problem.name, size=problem.size,
                derivative=problem.kind, ops=ops, plain_s=plain_s, **problem.extra)
    return info


def finish(benchmark, info, ops, plain_s):
    st = getattr(benchmark, "stats", None)
    if st:
        t = st.stats.min
        info.update(ns_per_op=t / ops * 1e9, ratio_to_plain=t / plain_s)


@COLD
@pytest.mark.parametrize("name, size", PARAMS)
def test_problem_cold(benchmark, name, size, problem_plain):
    """ad.record(f, x0) plus the first derivative."""
    p, tapead = make(name, size), peers.get("tapead")
    tape = tapead.record(p, p.x0)
    p.check_value(tape.forward(p.x0), p.x0)
    p.check(tapead.cold(p, p.x0), p.x0, "tapead cold")
    ops, plain_s = len(tape), problem_plain(p)
    info = describe(benchmark, p, "cold", ops, plain_s)
    benchmark(tapead.cold, p, p.x0)
    finish(benchmark, info, ops, plain_s)


@WARM
@pytest.mark.parametrize("name, size", PARAMS)
def test_problem_warm(benchmark, name, size, problem_plain):
    """The derivative replayed from the recorded tape at a new point x1."""
    p, tapead = make(name, size), peers.get("tapead")
    replay = tapead.prepare(p)
    p.check(replay(p.x1), p.x1, "tapead warm")
    ops, plain_s = len(replay.tape), problem_plain(p)
    info = describe(benchmark, p, "warm", ops, plain_s)
    info["rerecords_at_x1"] = replay.tape.stats().get("rerecords", 0)
    benchmark(replay, p.x1)
    finish(benchmark, info, ops, plain_s)


@WARM
@pytest.mark.parametrize("name, size", SPARSE_PARAMS)
def test_problem_sparse(benchmark, name, size, problem_plain):
    """The warm derivative as a sparse array (sparse=True), pattern and colouring found once."""
    p, tapead = make(name, size), peers.get("tapead")
    tape = tapead.record(p, p.x0)
    derivative = tape.jacobian if p.kind == "jacobian" else tape.hessian
    p.check(derivative(p.x1, sparse=True).toarray(), p.x1, "tapead sparse")
    ops, plain_s = len(tape), problem_plain(p)
    info = describe(benchmark, p, "sparse", ops, plain_s)
    colours = tape.stats()["colours"][p.kind]
    info["colours"] = list(colours) if isinstance(colours, tuple) else colours
    benchmark(derivative, p.x1, sparse=True)
    finish(benchmark, info, ops, plain_s)


@WARM
@pytest.mark.parametrize("name, size", PARAMS)
def test_problem_optimized(benchmark, name, size, problem_plain):
    """The warm derivative of the optimised tape (t.optimize()), and its speed-up over the same
    recording unoptimised: both timed round-robin, alike (the benchmark's own rounds, which
    only the optimised side has, stay out of the ratio)."""
    p, tapead = make(name, size), peers.get("tapead")
    replay = tapead.prepare(p)
    optimized = replay.tape.optimize()

    def replay_optimized(x):
        return tapead.derivative(p, optimized, x)
    p.check(replay_optimized(p.x1), p.x1, "tapead optimised")
    p.check(replay(p.x1), p.x1, "tapead warm")       # where a guard flips, both re-record here
    ops, plain_s = len(replay.tape), problem_plain(p)
    info = describe(benchmark, p, "optimized", ops, plain_s)
    info.update(ops_optimized=len(optimized), rerecords_at_x1=optimized.stats()["rerecords"])
    benchmark(replay_optimized, p.x1)
    finish(benchmark, info, ops, plain_s)
    it = interleaved_best({"optimized": lambda: replay_optimized(p.x1),
                           "original": lambda: replay(p.x1)}, rounds=21)
    info.update(optimized_s=it["optimized"], original_s=it["original"],
                speedup=it["original"] / it["optimized"])
