"""ad.map on a dask.distributed LocalCluster (group "map"): 10^6 points of the 72-op Rosenbrock
n = 10 tape, the gradient, on 2 worker processes of one thread each, against the same chunks run
in this process on 2 threads (``ad.map(tape, "gradient", X, chunk=...)``), in the chunks ad.map
picks for 2 worker processes (about 50 ms of sweeping each, two or more per worker). Target:
< 15% overhead.

- ``numpy``: X a NumPy array, shipped to the workers chunk by chunk, results gathered back.
- ``dask_array``: X a dask.array made on the workers (``da.random``), the result computed into
  this process (80 MB through the workers' sockets); the local side computes the same chunks
  (one batched call each, as ad.map's tasks) with dask's threaded scheduler.
- ``dask_array_persist``: the same, the result persisted on the workers (``client.persist``).

Both sides are timed round-robin (benchlib.interleaved_best) after a warm-up call that starts
the workers and sends them the tape. Run: ``python -m pytest bench/test_bench_map.py -s``.
Skipped without ``dask[distributed]``.
"""
import numpy as np
import pytest

import tapead as ad
from tapead.mapping import _run_inline, chunk_size
from benchlib import interleaved_best, rosen_loop, rosen_point

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")

GROUP = "map"
B, N = 1_000_000, 10


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def _persisted(client, arr):
    """arr computed on the cluster and kept there (where the user's next step would run)."""
    out = client.persist(arr)
    distributed.wait(out)
    return out


@pytest.mark.parametrize("kind", ["numpy", "dask_array", "dask_array_persist"])
def test_map_dask_overhead(benchmark, client, kind):
    tape = ad.record(rosen_loop, rosen_point(N))
    chunk = chunk_size(tape, "gradient", (), B, 2)      # ad.map's own for 2 workers
    if kind == "numpy":
        X = np.random.default_rng(3).uniform(-2.0, 2.0, (B, N))
        remote = lambda: ad.map(tape, "gradient", X, executor=client)  # noqa: E731
        local = lambda: ad.map(tape, "gradient", X, chunk=chunk)                   # noqa: E731
        check = remote
    else:
        X = da.random.RandomState(3).uniform(-2.0, 2.0, (B, N), chunks=(chunk, N))
        mapped = ad.map(tape, "gradient", X, executor=client)
        if kind == "dask_array":
            remote = mapped.compute
        else:
            remote = lambda: _persisted(client, mapped)                             # noqa: E731
        check = mapped.compute
        local = lambda: da.map_blocks(                                             # noqa: E731
            lambda xb: _run_inline(tape, "gradient", xb, ()), X, dtype=np.float64).compute(
            scheduler="threads", num_workers=2)
    remote()                                   # warm: workers up, tape sent
    assert check().tobytes() == local().tobytes()
    benchmark.group = GROUP
    benchmark.pedantic(remote, rounds=3, iterations=1)
    it = interleaved_best({"remote": remote, "local": local}, rounds=5)
    overhead = it["remote"] / it["local"] - 1.0
    benchmark.extra_info.update(kind="map_dask", X=kind, B=B, n=N, chunk=chunk,
                                seconds_dask=it["remote"], seconds_local=it["local"],
                                overhead=overhead, meets_target=overhead < 0.15)
    print(f"\nad.map over {B} points ({kind}): LocalCluster 2 processes {it['remote']:.3f} s, "
          f"local 2 threads {it['local']:.3f} s: overhead {overhead * 100:.1f}% (target < 15%)")
