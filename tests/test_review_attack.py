"""Regression tests from a second hostile review (of Conds, .value guards, tp_claim and the
replay fast paths): each failed before its fix."""
import math
import sys
import threading
import warnings

import numpy as np
import pytest

import tapead as ad


# .value guard is `v == value`, and -0.0 == 0.0: a replay at +0.0 silently reuses the -0.0
def test_value_guard_distinguishes_signed_zero():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = ad.record(lambda x: x * math.copysign(1.0, x.value), -0.0)
        assert t.gradient(0.0) == ad.record(lambda x: x * math.copysign(1.0, x.value),
                                            0.0).gradient(0.0)         # 1.0; gets -1.0


# gradient's fast path re-sweeps with x=None after a re-record: another thread's sweep of the
# new recording in between moves "the last point", and the caller gets the gradient there
def test_gradient_after_rerecord_uses_own_point_not_last_swept():
    t = ad.record(lambda x: x * x if x > 0 else x * x * x, 1.0)
    go, done, res = threading.Event(), threading.Event(), []

    def prof(frame, event, arg):      # widens the GIL-switch window after _rerecord returns
        if event == "return" and frame.f_code.co_name == "_rerecord":
            go.set()
            done.wait(5)

    def a():
        sys.setprofile(prof)
        try:
            res.append(t.gradient(-2.0))       # flips: re-records at -2; d(x^3) = 12
        finally:
            sys.setprofile(None)

    def b():
        go.wait(5)
        t.gradient(-5.0)                       # same branch on the new recording
        done.set()

    ta, tb = threading.Thread(target=a), threading.Thread(target=b)
    ta.start(); tb.start(); ta.join(); tb.join()
    assert res == [12.0]                       # gets [75.0]: the gradient at B's point


# x.grad after y.backward() while recording is a plain float baked into the tape, with no guard
# and no warning: unlike .value, a replay elsewhere reuses the stale number silently
def test_grad_read_while_recording_is_not_reused_silently():
    def f(x):
        y = x * x * x
        y.backward()
        return x - 0.1 * x.grad                # one gradient step inside the recording

    t = ad.record(f, 1.0)
    try:
        y = t.forward(2.0)
    except ad.TapeError:
        return                                 # refusing would be fine
    assert y == pytest.approx(2.0 - 0.1 * 12.0)    # 0.8; gets 1.7 (grad at x=1)


# NumPy took a Cond's __index__ (the integer 1) where a bool is a boolean-scalar index: a Cond
# is no index now (loud), bool(cond) is
def test_cond_is_no_index_so_numpy_cannot_misread_it():
    a = np.array([10.0, 20.0])
    with pytest.raises((IndexError, TypeError)):
        ad.record(lambda x: x * float(np.sum(a[x > 0])), 1.0)
    t = ad.record(lambda x: x * float(np.sum(a[bool(x > 0)])), 1.0)
    assert t.forward(1.0) == 30.0 and t.forward(-1.0) == -0.0


# comparisons convert ints to double first: x < 2**53 + 1 is False at x = 2**53 (Python: True)
def test_comparison_with_large_int_is_exact_as_in_python():
    x0, n = float(2 ** 53), 2 ** 53 + 1
    t = ad.record(lambda x: ad.where(x < n, x * 0 + 1.0, x * 0 - 1.0), x0)
    assert t.forward(x0) == (1.0 if x0 < n else -1.0)                 # 1.0; got -1.0
    import operator as o
    for big in (2 ** 53 + 1, -(2 ** 60) - 1, 3 ** 40):
        for rel in (o.lt, o.le, o.gt, o.ge, o.eq, o.ne):
            t = ad.record(lambda x: ad.where(rel(x, big), 1.0, -1.0), 0.0)
            u = ad.record(lambda x: x + 2.0 if rel(x, big) else x + 3.0, 0.0)
            for x in (float(big), math.nextafter(float(big), math.inf),
                      math.nextafter(float(big), -math.inf), 0.0, math.inf, -math.inf):
                assert t.forward(x) == (1.0 if rel(x, big) else -1.0), (rel, big, x)
                assert u.forward(x) == (x + 2.0 if rel(x, big) else x + 3.0), (rel, big, x)


# §6.3: where takes a Cond (or object array of them, broadcasting); a scalar Cond with array
# operands raises TypeError (a plain bool there just selects the array)
def test_where_scalar_cond_with_array_operands():
    f = lambda x: ad.sum(ad.where(x[0] > 0, x * 2.0, x * 3.0))
    t = ad.record(f, np.array([1.0, 2.0]))
    assert t.forward(np.array([-1.0, 2.0])) == -3.0 + 6.0


# str(cond) is "Cond(True, index=..)", not "True" (and f"{cond:d}" raises): a difference from
# bool that §6.3 does not list, and an unguarded read of the outcome
def test_cond_str_and_format_like_bool():
    with ad.Tape() as t:
        x = t.variables(1.0)
        c = x > 0
        assert (str(c), f"{c}") == ("True", "True")
