"""Record/free cycles do not leak: the resident set stays flat over a few thousand tapes of a
few hundred operations each, every one of them swept in every mode and then dropped."""
import gc
import math
import os

import numpy as np
import pytest

import tapead as ad

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"),
                                reason="reads the resident set from /proc/self/statm")

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
M = 20


def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


def program(x):
    s = 0.0
    for k in range(M - 1):
        s = s + 100.0 * (x[k + 1] - x[k] ** 2) ** 2 + (1.0 - x[k]) ** 2
    for k in range(M):
        s = s + ad.sin(x[k]) * ad.exp(x[k] * 0.1) + ad.hypot(x[k], 2.0)
    return [s, ad.dot(x, x), ad.where(x[0], ad.sum(x), x[1])]


def cycle(i):
    x0 = np.linspace(-1.0, 1.0, M) + 1e-3 * (i % 17)
    t = ad.record(program, x0)
    t(x0)
    t.jacobian(x0, mode="forward")
    t.jacobian(x0, mode="reverse")
    t.jvp(x0, np.ones((M, 3)))
    t.vjp(x0, np.ones((2, 3)))
    with ad.Tape() as t2:                       # the imperative path, with backward()
        x = t2.variables(x0)
        y = program(x)[0]
        t2.outputs(y)
    y.backward()
    g = [e.grad for e in x]
    t2.gradient(x0 * 0.5)
    try:                                        # errors must not leak either
        t2.gradient(x0[:3])
    except ValueError:
        pass
    assert len(g) == M
    return len(t) + len(t2)


@pytest.mark.no_asan          # ASan's quarantine keeps freed memory resident: the RSS grows
def test_record_free_cycles_do_not_leak():
    assert cycle(0) > 2 * 200                   # each cycle: two tapes of a few hundred ops
    for i in range(300):                        # warm-up: allocator pools, caches
        cycle(i)
    gc.collect()
    before = rss()
    for i in range(3000):
        cycle(i)
    gc.collect()
    grown = rss() - before
    # a leak of one tape (or one sweep's scratch) per cycle would be > 10 MB here
    assert grown < 4 * 2 ** 20, f"RSS grew by {grown / 2 ** 20:.1f} MiB over 3000 cycles"


def test_vars_and_tapes_are_freed():
    """Vars keep their recording (the C tape) alive, not the Tape object, so nothing needs the
    cyclic collector: a dropped Tape is freed at once, and its Vars still work."""
    import weakref
    t = ad.record(program, np.linspace(-1.0, 1.0, M))
    ref = weakref.ref(t)
    with ad.Tape() as t2:
        x = t2.variables(1.0)
        y = ad.sin(x) * 2.0
        t2.outputs(y)
    rec = weakref.ref(y._rec)
    del t, t2
    assert ref() is None                        # freed without the cyclic collector
    assert rec() is not None                    # y and x keep their recording alive
    assert y.value == 2.0 * math.sin(1.0)
    y.backward()
    assert x.grad == 2.0 * math.cos(1.0)
    assert y.tape.gradient(0.5) == 2.0 * math.cos(0.5)   # a Tape around the same recording
    del x
    assert rec() is not None
    del y
    assert rec() is None                        # freed by reference counting alone
