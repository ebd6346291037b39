"""A tape of 10**8 operations records and sweeps.

Not run by default: ``python -m pytest bench --huge`` (or TAPEAD_BENCH_HUGE=1). Recording 10**8
operations from Python takes tens of seconds and about 3 GB of memory at its peak.

The benchmark times the recording (one round: the recording itself is the measurement, so its
tape is checked against scipy's rosen_der right after it, before the sweeps are timed); the
primal and gradient sweeps are timed best-of-3 and reported in ns/op with the peak RSS.
"""
import gc
import resource

import numpy as np
import pytest
from scipy.optimize import rosen, rosen_der

import tapead as ad
from benchlib import HUGE_N, assert_grad, least_time, rosen_loop, rosen_ops, rosen_point


def _status_kb(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss():
    """Reset the kernel's peak-RSS mark (Linux: write 5 to clear_refs); False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes():
    hwm = _status_kb("VmHWM")
    if hwm is not None:
        return hwm * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@pytest.mark.huge
@pytest.mark.benchmark(group="huge 10^8 ops", warmup=False)
def test_huge_tape(benchmark):
    n = HUGE_N
    ops = rosen_ops(n)
    assert ops >= 10**8
    x = rosen_point(n)
    x_new = rosen_point(n, seed=1)
    gc.collect()
    rss_before = (_status_kb("VmRSS") or 0) * 1024
    peak_reset = _reset_peak_rss()

    tape = benchmark.pedantic(ad.record, args=(rosen_loop, x), rounds=1, iterations=1)
    t_record = benchmark.stats.stats.min if benchmark.stats else None
    assert len(tape) == ops
    assert_grad(tape.gradient(x), rosen_der(x))                       # the timed recording
    np.testing.assert_allclose(tape.forward(x_new), rosen(x_new), rtol=1e-11)

    t_primal = least_time(lambda: tape.forward(x_new), repeat=3)
    t_grad = least_time(lambda: tape.gradient(x_new), repeat=3)
    peak = _peak_rss_bytes()
    benchmark.extra_info.update(
        kind="huge", problem=f"rosen-{n}", ops=ops, nbytes=tape.nbytes,
        bytes_per_op=tape.nbytes / ops,
        record_s=t_record, record_ns_per_op=t_record / ops * 1e9 if t_record else None,
        primal_ns_per_op=t_primal / ops * 1e9, ns_per_op=t_grad / ops * 1e9,
        adjoint_ns_per_op=(t_grad - t_primal) / ops * 1e9,
        peak_rss_bytes=peak, rss_before_bytes=rss_before,
        peak_rss_scope="since recording started" if peak_reset else "whole process",
    )
