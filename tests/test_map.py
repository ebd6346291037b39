"""ad.map (tapead/mapping.py): a batched method over many points in chunks, on this process's
threads, a concurrent.futures executor or dask (a Client, a dask.array); results equal the
batched call's to the last bit. Other processes get the tape pickled (a process pool, a 2-worker
LocalCluster); a tape that does not pickle (ad.record of a lambda) makes ad.map say so
(TypeError)."""
import pickle
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

import tapead as ad
from tapead.mapping import NS_PER_VISIT, TASK_SECONDS, chunk_size

from helpers import rosen_loop

RNG = np.random.default_rng(11)


def same(a, b):
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for u, v in zip(a, b):
            same(u, v)
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.tobytes() == b.tobytes()


def picklable(t):
    try:
        pickle.dumps(t)
        return True
    except Exception:                           # noqa: BLE001 - not picklable (yet)
        return False


@pytest.fixture
def tape():
    return ad.record(rosen_loop, np.zeros(8))


def test_threads_and_chunks_equal_the_batched_call(tape):
    X = RNG.uniform(-2, 2, (5000, 8))
    V, W = RNG.normal(size=(5000, 8)), RNG.normal(size=5000)
    same(ad.map(tape, "gradient", X), tape.gradient(X, batch=True))
    same(ad.map(tape, "gradient", X, chunk=333), tape.gradient(X, batch=True))
    same(ad.map(tape, "jvp", X, V, chunk=1000), tape.jvp(X, V, batch=True))
    same(ad.map(tape, "hvp", X, V, W, chunk=999), tape.hvp(X, V, W, batch=True))
    same(ad.map(tape, "taylor", X[:300], V[:300], 3, chunk=7), tape.taylor(X[:300], V[:300], 3,
                                                                          batch=True))
    same(ad.map(tape, "hessian", X[:200], chunk=64), tape.hessian(X[:200], batch=True))
    same(ad.map(tape, "jacobian", X, "reverse", chunk=2000),
         tape.jacobian(X, mode="reverse", batch=True))
    with ThreadPoolExecutor(2) as pool:
        same(ad.map(tape, "gradient", X, executor=pool, chunk=500), tape.gradient(X, batch=True))


def test_pieces_and_vector_outputs():
    t = ad.record(lambda a, b: [a[0] * b, ad.sin(a[1]) + b], np.ones(2), 3.0)
    A, b = RNG.normal(size=(400, 2)), RNG.normal(size=400)
    VA, vb = RNG.normal(size=(400, 2, 3)), RNG.normal(size=(400, 3))
    same(ad.map(t, "jvp", (A, b), (VA, vb), chunk=37), t.jvp((A, b), (VA, vb), batch=True))
    W = RNG.normal(size=(400, 2))
    same(ad.map(t, "vjp", (A, b), W, chunk=50), t.vjp((A, b), W, batch=True))
    same(ad.map(t, "hessian", (A, b), W, chunk=50), t.hessian((A, b), W, batch=True))


def test_chunks_last_ten_milliseconds(tape):
    c = chunk_size(tape, "gradient")
    assert c * len(tape) * 2 * NS_PER_VISIT * 1e-9 >= TASK_SECONDS


def test_errors(tape):
    X = np.ones((10, 8))
    with pytest.raises(ValueError, match="method must be one of"):
        ad.map(tape, "grad", X)
    with pytest.raises(ValueError, match="chunk must be"):
        ad.map(tape, "gradient", X, chunk=0)
    with pytest.raises(TypeError, match="executor must be"):
        ad.map(tape, "gradient", X, executor=object())
    with pytest.raises(ValueError, match=r"\(B,\) \+ \(8,\)"):
        ad.map(tape, "gradient", np.ones((10, 7)))


def test_process_pool_needs_a_picklable_tape(tape):
    X = RNG.uniform(-2, 2, (3000, 8))
    unpicklable = ad.record(lambda x: x[0] * x[1], np.ones(2))
    assert not picklable(unpicklable)
    with ProcessPoolExecutor(2) as pool:
        with pytest.raises(TypeError, match="picklable"):
            ad.map(unpicklable, "gradient", np.ones((10, 2)), executor=pool)
        if picklable(tape):
            same(ad.map(tape, "gradient", X, executor=pool, chunk=1000),
                 tape.gradient(X, batch=True))
            same(ad.map(tape, "hvp", X, X, chunk=700, executor=pool),
                 tape.hvp(X, X, batch=True))


def test_dask_array_gives_a_dask_array(tape):
    da = pytest.importorskip("dask.array")
    X = RNG.uniform(-2, 2, (6000, 8))
    V = RNG.normal(size=(6000, 8))
    r = ad.map(tape, "gradient", da.from_array(X, chunks=1000), chunk=2500)
    assert isinstance(r, da.Array) and r.chunks[0] == (2500, 2500, 1000)
    same(r.compute(), tape.gradient(X, batch=True))
    y, yd = ad.map(tape, "jvp", da.from_array(X, chunks=1000), da.from_array(V, chunks=3000))
    same((y.compute(), yd.compute()), tape.jvp(X, V, batch=True))
    H = ad.map(tape, "hessian", da.from_array(X[:50], chunks=20), chunk=20)
    same(H.compute(), tape.hessian(X[:50], batch=True))


def test_dask_local_cluster(tape):
    pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    import dask.array as da
    X = RNG.uniform(-2, 2, (4000, 8))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        unpicklable = ad.record(lambda x: x[0] * x[1], np.ones(2))
        with pytest.raises(TypeError, match="picklable"):
            ad.map(unpicklable, "gradient", np.ones((10, 2)), executor=client)
        with pytest.raises(TypeError, match="picklable"):
            ad.map(unpicklable, "gradient", da.from_array(np.ones((10, 2)), chunks=5))
        if not picklable(tape):
            return
        same(ad.map(tape, "gradient", X, executor=client, chunk=1000),
             tape.gradient(X, batch=True))
        r = ad.map(tape, "gradient", da.from_array(X, chunks=1000))
        same(r.compute(), tape.gradient(X, batch=True))
        y, yd = ad.map(tape, "jvp", da.from_array(X, chunks=1000), X, executor=client)
        same((y.compute(), yd.compute()), tape.jvp(X, X, batch=True))


def test_branch_changed_points_count_over_all_of_x():
    with ad.Tape() as t:
        x = t.variables([1.0, 1.0])
        t.outputs(x[0] * x[1] if x[0] > 0 else x[1])
    X = np.ones((100, 2))
    X[[57, 93], 0] = -1.0
    with pytest.raises(ad.BranchChanged, match="first is point 57") as e:
        ad.map(t, "gradient", X, chunk=10)
    assert e.value.points == [57]                    # the first chunk that raised: 50 .. 59
    with ThreadPoolExecutor(2) as pool, pytest.raises(ad.BranchChanged) as e:
        ad.map(t, "forward", X[60:], executor=pool, chunk=7)
    assert e.value.points == [33]
