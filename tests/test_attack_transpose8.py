"""Attacks on the pending a.T of a 2-d Array (csrc/fast_array.h: array_get_T, array_first) and on
recording large block ops with the GIL released (block_record)."""
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose

import tapead as ad

from helpers import raised_in_another_thread

RNG = np.random.default_rng(8)
W = RNG.normal(size=(4, 3))
X = RNG.normal(size=(5, 3))


def _run(code, timeout=120):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout)


# ---- the GIL released while a large op records ------------------------------------------------------
RESHAPE_RACE = """
    import threading, numpy as np, tapead as ad
    N = 200                                        # 40000 elements: recorded without the GIL
    W = np.random.default_rng(0).normal(size=(N, N))
    stop, seen = threading.Event(), set()
    with ad.Tape() as t:
        w = t.variables(W)
        def other():
            k = 0
            while not stop.is_set():
                try:
                    w.shape = (N * N,) if k % 2 == 0 else (N, N)
                except ad.TapeError:
                    pass
                k += 1
        th = threading.Thread(target=other)
        th.start()
        for _ in range(300):
            seen.add((w * w).shape)                # arith hands block_record w's shape tuple
        stop.set()
        th.join()
        t.outputs(np.sum(w))
    assert seen == {(N, N)}, seen
    print("ok")
"""


def test_another_thread_reshaping_an_array_while_a_large_op_records_does_not_crash():
    """w.shape = s from another thread replaced (and freed) the shape tuple block_record was
    holding, borrowed, across Py_BEGIN_ALLOW_THREADS: a use-after-free (SIGSEGV)"""
    r = _run(RESHAPE_RACE)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stderr[-2000:])


def test_another_thread_cannot_reshape_an_array_of_an_open_tape():
    with ad.Tape() as t:
        w = t.variables(W)
        assert isinstance(raised_in_another_thread(lambda: setattr(w, "shape", (12,))),
                          ad.TapeError)
        assert w.shape == (4, 3)
        t.outputs(np.sum(w))
    w.shape = (12,)                                # a closed tape's Array: any thread
    assert w.shape == (12,)


# ---- .value and .grad of a transposed view ---------------------------------------------------------
def test_value_of_a_pending_transpose_warns_and_guards_at_the_users_line():
    """the ValueWarning (and the guard's site) named tapead/array.py, the pending's .value
    reading its source's .value, not the user's line; and once per that line, for all users"""
    with ad.Tape() as t:
        w = t.variables(W)
        wt = w.T
        with warnings.catch_warnings(record=True) as got:
            warnings.simplefilter("always")
            v = wt.value
        t.outputs(np.sum(w))
    assert_allclose(v, W.T)
    assert [g.filename for g in got] == [__file__], [(g.filename, g.lineno) for g in got]
    sites = {s[0] for i, s in t._rec.sites.items()} if hasattr(t._rec, "sites") else {__file__}
    assert sites == {__file__}, sites


def test_grad_of_a_transpose_does_not_depend_on_when_it_was_materialised():
    """x @ wt reads w's block (no PACK); a later wt * 0.0 records the PACK. wt.grad is then the
    PACK's adjoint, which lacks the product's part: all 0, where without the later use it is
    w.grad.T (docs/API.md: a pending's .grad is a's, transposed). Before pending transposes it
    was the PACK's adjoint with the product's part (X summed over rows, without sum(w)'s 1)."""
    grads = []
    for materialise in (False, True):
        with ad.Tape() as t:
            w = t.variables(W)
            wt = w.T
            y = np.sum(X @ wt)
            if materialise:
                y = y + np.sum(wt * 0.0)
            y = y + np.sum(w)
            t.outputs(y)
        y.backward()
        grads.append(wt.grad)
    assert_allclose(grads[1], grads[0])


def test_transpose_of_an_array_subclass():
    """array_get_T hands an Array subclass (not R.array_type) to transpose(), which handed a
    2-d one back to .T: RecursionError (before pending transposes: one PACK)"""
    class Sub(ad.Array):
        __slots__ = ()
    with ad.Tape() as t:
        w = t.variables(W)
        a = Sub(w._rec, w._first, w.shape)
        at, at2 = a.T, a.transpose()
        t.outputs(np.sum(at * np.arange(4.0)) + np.sum(at2 @ w))
    assert at.shape == at2.shape == (3, 4)
    g = np.tile(np.arange(4.0)[:, None], (1, 3)) + (W @ np.ones((3, 3))) + W.sum(1)[:, None]
    assert_allclose(t.gradient(W), g, rtol=1e-13)


def test_a_refused_reduction_of_a_pending_transpose_does_not_leak():
    """py_reduce built its result's shape tuple, then returned NULL without it when the pending's
    PACK could not be recorded (a closed tape): 48 bytes a call"""
    import gc
    import tracemalloc
    with ad.Tape() as t:
        w = t.variables(W)
        wt = w.T
        t.outputs(np.sum(w))

    def go(n):
        for _ in range(n):
            with pytest.raises(ad.TapeError):
                np.sum(wt, axis=0)
    go(500)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        go(5000)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 50_000, grown
