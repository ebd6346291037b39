"""Many points (group "batch"): batched gradients against the loop of one-point gradients, JAX's
jit(vmap(grad)) and two threads against one; each on the interpreted tape and on the tape after
``t.compile()`` (native code: tapead/native.py).

- ``gradient``: Rosenbrock n = 10 at B = 10^4 points and n = 100 at B = 10^3:
  ``t.gradient(X, batch=True)`` on one thread against ``[t.gradient(x) for x in X]``; targets
  (per point) 10x and 4x. The two are timed round-robin (benchlib.interleaved_best), so that
  both see the same machine load; the batched result is checked bit for bit against the loop.
- ``jax``: ``jax.jit(jax.vmap(jax.grad(f)))`` on the same points (skipped without jax), timed
  round-robin with both tapes (target: within 2x of JAX per point); JAX's compile time (its
  first call) and ``t.compile()``'s are reported in extra_info, not counted.
- ``threads``: 10^5 points of Rosenbrock n = 10, two threads against one (target 1.7x).

Run: ``python -m pytest bench/test_bench_batch.py -s`` (each prints its figures).
"""
import time

import numpy as np
import pytest

import tapead as ad
import tapead.batch as adb
import tapead.native as native
from benchlib import best, interleaved_best, rosen_loop, rosen_point, rosen_ops

GROUP = "batch"
CASES = [(10, 10_000, 10.0), (100, 1_000, 4.0)]
MODES = ["interpreted", "native"]
BATCH = pytest.mark.benchmark(min_rounds=5, max_time=2.0, warmup=True)


def points(n, B, seed=1):
    return np.random.default_rng(seed).uniform(-2.0, 2.0, (B, n))


def rosen_tape(n, mode):
    """The Rosenbrock tape, compiled for mode "native"; and the compiler's seconds."""
    t = ad.record(rosen_loop, rosen_point(n))
    native._cache.clear()               # the compiler's real time, not the process's cache
    t0 = time.perf_counter()
    if mode == "native":
        t.compile()
    return t, time.perf_counter() - t0


@pytest.fixture
def one_thread():
    old = adb.set_threads(1)
    yield
    adb.set_threads(old)


@BATCH
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n, B, target", CASES, ids=[f"n{n}-B{B}" for n, B, _ in CASES])
def test_batch_gradient_rosen(benchmark, one_thread, n, B, target, mode):
    t, compile_s = rosen_tape(n, mode)
    X = points(n, B)
    G = t.gradient(X, batch=True)
    assert G[:200].tobytes() == np.array([t.gradient(x) for x in X[:200]]).tobytes()
    benchmark.group = GROUP
    benchmark(lambda: t.gradient(X, batch=True))
    info = benchmark.extra_info
    info.update(kind="batch_gradient", problem=f"rosen-{n}, B = {B}", n=n, B=B, ops=rosen_ops(n),
                target_speedup=target, mode=mode, compile_s=compile_s)
    if best(benchmark) is None:
        return
    it = interleaved_best({"batch": lambda: t.gradient(X, batch=True),
                           "loop": lambda: [t.gradient(x) for x in X]}, rounds=7)
    per_batch, per_loop = it["batch"] / B, it["loop"] / B
    info.update(ns_per_point_batch=per_batch * 1e9, ns_per_point_loop=per_loop * 1e9,
                speedup=per_loop / per_batch, meets_target=per_loop / per_batch >= target)
    print(f"\nRosenbrock n={n} B={B}, {mode}: batched {per_batch * 1e9:.0f} ns/point, loop "
          f"{per_loop * 1e9:.0f} ns/point: {per_loop / per_batch:.1f}x (target {target}x); "
          f"{per_batch * 1e9 / (2 * rosen_ops(n)):.2f} ns per op-visit and point")


@BATCH
@pytest.mark.parametrize("n, B, target", CASES, ids=[f"n{n}-B{B}" for n, B, _ in CASES])
def test_batch_gradient_jax(benchmark, one_thread, n, B, target):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    X = points(n, B)
    t, _ = rosen_tape(n, "interpreted")
    c, compile_c = rosen_tape(n, "native")
    f = jax.jit(jax.vmap(jax.grad(lambda x: jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 +
                                                    (1.0 - x[:-1]) ** 2))))
    Xj = jnp.asarray(X)
    t0 = time.perf_counter()
    Gj = np.asarray(f(Xj).block_until_ready())
    compile_s = time.perf_counter() - t0
    np.testing.assert_allclose(Gj, t.gradient(X, batch=True), rtol=1e-12, atol=1e-9)
    assert c.gradient(X, batch=True).tobytes() == t.gradient(X, batch=True).tobytes()
    benchmark.group = GROUP
    benchmark(lambda: f(Xj).block_until_ready())
    info = benchmark.extra_info
    info.update(kind="batch_gradient_jax", problem=f"rosen-{n}, B = {B}", n=n, B=B,
                ops=rosen_ops(n), compile_s=compile_s, tapead_compile_s=compile_c)
    if best(benchmark) is None:
        return
    it = interleaved_best({"jax": lambda: f(Xj).block_until_ready(),
                           "tapead": lambda: t.gradient(X, batch=True),
                           "native": lambda: c.gradient(X, batch=True)}, rounds=7)
    info.update(ns_per_point_jax=it["jax"] / B * 1e9, ns_per_point_tapead=it["tapead"] / B * 1e9,
                ns_per_point_native=it["native"] / B * 1e9,
                tapead_over_jax=it["tapead"] / it["jax"], native_over_jax=it["native"] / it["jax"],
                meets_target=it["native"] / it["jax"] <= 2.0)
    print(f"\nRosenbrock n={n} B={B}: JAX jit(vmap(grad)) {it['jax'] / B * 1e9:.0f} ns/point "
          f"(compile {compile_s:.2f} s, not counted); tapead batched, interpreted "
          f"{it['tapead'] / B * 1e9:.0f} ns/point ({it['tapead'] / it['jax']:.2f}x JAX), "
          f"compiled {it['native'] / B * 1e9:.0f} ns/point ({it['native'] / it['jax']:.2f}x JAX; "
          f"t.compile() {compile_c:.2f} s, not counted; target 2x)")


@BATCH
@pytest.mark.parametrize("mode", MODES)
def test_batch_threads(benchmark, mode):
    n, B, target = 10, 100_000, 1.7
    t, _ = rosen_tape(n, mode)
    X = points(n, B)
    old = adb.set_threads(2)
    try:
        two = t.gradient(X, batch=True)
        adb.set_threads(1)
        assert two.tobytes() == t.gradient(X, batch=True).tobytes()
        benchmark.group = GROUP
        adb.set_threads(2)
        benchmark(lambda: t.gradient(X, batch=True))

        def with_threads(k):
            def run():
                adb.set_threads(k)
                t.gradient(X, batch=True)
            return run
        it = interleaved_best({"one": with_threads(1), "two": with_threads(2)}, rounds=9)
    finally:
        adb.set_threads(old)
    speedup = it["one"] / it["two"]
    benchmark.extra_info.update(kind="batch_threads", problem=f"rosen-{n}, B = {B}", n=n, B=B,
                                mode=mode,
                                ops=rosen_ops(n), one_thread_s=it["one"],
                                two_threads_s=it["two"], speedup=speedup, target_speedup=target,
                                meets_target=speedup >= target)
    print(f"\n10^5 points, Rosenbrock n={n}, {mode}: one thread {it['one'] * 1e3:.1f} ms, two threads "
          f"{it['two'] * 1e3:.1f} ms: {speedup:.2f}x (target {target}x)")
