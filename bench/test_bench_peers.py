"""Other AD systems side by side with tapead, in the same run, on the same code.

Every system runs the problems of bench/problems.py (one ``f(x, ops)`` for all, ``ops`` the
system's math functions) through its usual derivative API (bench/peers/__init__.py):
- ``test_peer_cold``: the derivative from scratch (tapead: record + sweep; torch, JAX eager,
  autograd, micrograd-style: run f and differentiate; JAX jit: trace + compile + call; CasADi: SX
  graph + derivative + Function + call);
- ``test_peer_warm``: for systems that keep something to reuse (tapead's tape, JAX's compiled
  function, CasADi's Function), the derivative at a new point; the build (compile) time is
  measured apart, once, and stored as ``build_s``.
Every derivative is checked against the problem's oracle before it is timed. ns/op divides by
len(tape) of tapead's recording of the same problem, so every system is measured in the same
unit.

A system that is not installed is skipped (``pip install -e ".[peers]"``), as is a problem a
system cannot run (value-dependent branches under tracing, second order in micrograd). Slow
systems are timed in few rounds (one round when a call lasts over half a second), and a call
that would last longer than the cap (estimated from the system's cost per operation on the
smaller cases before it; 10 s by default, 60 s under ``--full``) is skipped with its estimate.

Default cases: the small rosen-10 and det_minor-4 for every system; det_minor-6 for every
system but JAX; rosen-10^4 (cold: torch, micrograd-style; warm: CasADi) and det_minor-8 (warm:
CasADi) — the peer targets. ``--full`` adds every peer on every case and every problem of
the suite at a small size.
"""
import pytest

import peers
from benchlib import full_run, timed
from problems import make

PEERS_MARK = pytest.mark.peers
FULL = pytest.mark.full
ALL = ("tapead",) + peers.PEERS
NO_JAX = tuple(s for s in ALL if not s.startswith("jax"))

# (problem, size, systems in the default run); every other system runs under --full
CASES = [                     # small to large: the budget extrapolates from what ran before
    ("rosen", 10, ALL),
    ("det_minor", 4, ALL),
    ("poly", 10, ()),
    ("det_lu", 10, ()),
    ("mat_mul", 6, ()),
    ("ode", 8, ()),
    ("sparse_hessian", 10, ()),
    ("sparse_jacobian", 10, ()),
    ("rosen", 1000, ()),
    ("det_minor", 6, NO_JAX),
    ("rosen", 10**4, ("tapead", "casadi", "torch", "micrograd")),
    ("det_minor", 8, ("tapead", "casadi")),
]
DEFAULT = {(name, size): systems for name, size, systems in CASES}


def _id(name, size):
    return f"{name}-10^{len(str(size)) - 1}" if size >= 10**4 else f"{name}-{size}"


def _params(warm):
    out = []
    for name, size, default in CASES:
        for system in ALL:
            if warm and peers.SYSTEMS[system].prepare is peers.System.prepare:
                continue
            marks = [PEERS_MARK] + ([] if system in default else [FULL])
            out.append(pytest.param(name, size, system, id=f"{_id(name, size)}-{system}",
                                    marks=marks))
    return out


# ---- budget: skip calls estimated to last longer than the cap --------------------------------
class Budget:
    """Extrapolates a system's call time from its largest case run so far (fixed costs weigh
    least there) as (ops / ops_seen)^1.5: on the safe side of linear, since some systems grow
    faster than linearly (JAX's eager tracing of 10^4 scalar operations ran for minutes and took
    gigabytes where 2·10^3 took seconds). The curated default cases are never skipped."""

    def __init__(self, cap):
        self.cap, self.largest = cap, {}

    def check(self, system, problem, ops):
        if system in DEFAULT[(problem.name, problem.size)] or system not in self.largest:
            return
        ops0, s0 = self.largest[system]
        est = s0 * (ops / ops0) ** 1.5
        if est > self.cap:
            pytest.skip(f"{system}: estimated {est:.0f} s per call ({s0:.2g} s on {ops0:,} ops, "
                        f"scaled as ops^1.5 to {ops:,} ops) is over the {self.cap:g} s cap")

    def learn(self, system, ops, seconds):
        if ops >= self.largest.get(system, (0, 0.0))[0]:
            self.largest[system] = (ops, seconds)


@pytest.fixture(scope="session")
def budget(request):
    return Budget(60.0 if full_run(request.config) else 10.0)


@pytest.fixture(scope="session")
def prepared():
    """prepared(system, problem) -> (x -> derivative, build seconds), built once per session."""
    cache = {}

    def get(system, problem):
        key = (system, problem.id)
        if key not in cache:
            cache[key] = timed(lambda: peers.get(system).prepare(problem))
        return cache[key]

    yield get
    cache.clear()


def _system(system, problem):
    s = peers.get(system)
    if s is None:
        pytest.skip(f"{system}: {peers.why_unavailable(system)}")
    ok, why = s.supports(problem)
    if not ok:
        pytest.skip(f"{system} on {problem.id}: {why}")
    return s


def _run(benchmark, fn, first):
    """Time fn: many rounds when a call is short, a few (one past 0.5 s) when it is long."""
    if first < 0.05:
        benchmark(fn)
    else:
        benchmark.pedantic(fn, rounds=max(1, min(5, int(0.5 / first))), iterations=1)


def _describe(benchmark, problem, system, phase, ops, **more):
    benchmark.group = f"peers {_id(problem.name, problem.size)}"
    info = benchmark.extra_info
    s = peers.SYSTEMS[system]
    info.update(kind=f"peer_{phase}", problem=problem.name, size=problem.size,
                case=_id(problem.name, problem.size), system=system, label=s.label,
                derivative=problem.kind, ops=ops, **more)
    return info


def _per_op(benchmark, info, ops):
    st = getattr(benchmark, "stats", None)
    if st:
        info["ns_per_op"] = st.stats.min / ops * 1e9


@pytest.mark.benchmark(max_time=0.5, min_rounds=3, warmup=False)
@pytest.mark.parametrize("name, size, system", _params(warm=False))
def test_peer_cold(benchmark, name, size, system, tape_ops, budget, prepared):
    """The derivative from scratch, in one call (tracing, compiling, building included)."""
    p = make(name, size)
    s = _system(system, p)
    ops = tape_ops(p)
    budget.check(system, p, ops)
    if type(s).prepare is not peers.System.prepare and system != "tapead":
        (handle, build_s), call_s = prepared(system, p), None   # cold = build + first call
        d, call_s = timed(lambda: handle(p.x0))
        first = build_s + call_s
    else:
        d, first = timed(lambda: s.cold(p, p.x0))
    p.check(d, p.x0, f"{system} cold")
    budget.learn(system, ops, first)
    info = _describe(benchmark, p, system, "cold", ops, first_call_s=first)
    _run(benchmark, lambda: s.cold(p, p.x0), first)
    _per_op(benchmark, info, ops)


@pytest.mark.benchmark(max_time=0.5, min_rounds=5, warmup=True, warmup_iterations=1)
@pytest.mark.parametrize("name, size, system", _params(warm=True))
def test_peer_warm(benchmark, name, size, system, tape_ops, budget, prepared):
    """The derivative at a new point from what was built at the recording point."""
    p = make(name, size)
    _system(system, p)
    ops = tape_ops(p)
    budget.check(system, p, ops)
    handle, build_s = prepared(system, p)
    d, first = timed(lambda: handle(p.x1))
    p.check(d, p.x1, f"{system} warm")
    info = _describe(benchmark, p, system, "warm", ops, build_s=build_s,
                     build_label=peers.SYSTEMS[system].build_label or "record")
    _run(benchmark, lambda: handle(p.x1), first)
    _per_op(benchmark, info, ops)
