"""Regression tests for a hostile review's findings: a recording-thread crash, stale conditions in
ad.where, gradients after a re-record, .value frozen into tapes, and the last swept point."""
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import tapead as ad
from helpers import in_thread


# ---- a second thread entering a tape another thread records ------------------------------------
def test_second_thread_cannot_enter_a_recording_tape_nor_close_it():
    t = ad.Tape()
    with t:
        x = t.variables(1.5)
        out = in_thread(lambda: t.__enter__())
        assert isinstance(out.get("error"), ad.TapeError)
        assert "already being recorded" in str(out["error"])
        out = in_thread(lambda: t.__exit__(None, None, None))   # a non-owner's exit: no effect
        assert "error" not in out and t.recording
        y = x
        for _ in range(1000):
            y = y * x                            # still recording here, in this thread
        t.outputs(y)
    assert not t.recording
    assert_allclose(t(1.5), 1.5 ** 1001, rtol=1e-12)
    assert_allclose(t.gradient(1.5), 1001 * 1.5 ** 1000, rtol=1e-12)


def test_second_thread_entering_while_the_first_records_ops_concurrently():
    """Thread B hammers `with t:` and ad.sum on t's Vars while A records: every attempt is a
    TapeError and A's tape comes out exact."""
    t = ad.Tape()
    errors, stop = [], threading.Event()
    with t:
        x = t.variables([1.5, 2.0])

        def intruder():
            while not stop.is_set():
                for attempt in (lambda: t.__enter__(), lambda: ad.sum([x[0], x[1]]),
                                lambda: x[0] * x[1], lambda: t.variables(1.0),
                                lambda: x[0] < x[1]):
                    try:
                        attempt()
                    except ad.TapeError as e:
                        errors.append(e)
                    else:
                        errors.append(None)
        th = threading.Thread(target=intruder)
        th.start()
        y = x[0]
        for _ in range(3000):
            y = ad.sum([y * 1.0001, 0.0 * x[1]])
        stop.set()
        th.join()
        t.outputs(y)
    assert errors and all(e is not None for e in errors)
    assert_allclose(t([1.5, 2.0]), 1.5 * 1.0001 ** 3000, rtol=1e-12)
    assert_allclose(t.gradient([1.5, 2.0]), [1.0001 ** 3000, 0.0], rtol=1e-12)


def test_comparison_mixing_tapes_refuses_before_reading_the_other_tape():
    ready, done = threading.Event(), threading.Event()
    box = {}

    def record_a():
        with ad.Tape() as ta:
            box["a"] = ta.variables(1.0)
            ready.set()
            done.wait(5)
            ta.outputs(box["a"])
    th = threading.Thread(target=record_a)
    th.start()
    ready.wait(5)
    try:
        with ad.Tape() as tb:
            b = tb.variables(2.0)
            for expr in (lambda: b < box["a"], lambda: box["a"] < b, lambda: b == box["a"]):
                with pytest.raises(ad.TapeError):
                    expr()
            tb.outputs(b)
    finally:
        done.set()
        th.join()


# ---- a fast path after a re-record that changes the outputs ------------------------------------
def branchy(x):
    return x[0] * x[1] if x[0] > 0 else [x[0] * 3, x[1] * 5]


def test_gradient_after_a_re_record_that_makes_outputs_a_vector():
    t = ad.record(branchy, np.array([1.0, 2.0]))
    assert_array_equal(t.gradient([1.0, 2.0]), [2.0, 1.0])
    with pytest.raises(ValueError, match="scalar output"):
        t.gradient([-1.0, 2.0])
    with pytest.raises(ValueError, match="scalar output"):
        t.gradient([-1.0, 2.0])                  # the same error the second time
    assert_array_equal(t.jacobian([-1.0, 2.0]), [[3.0, 0.0], [0.0, 5.0]])
    assert_array_equal(t.forward([-1.0, 2.0]), [-3.0, 10.0])
    t2 = ad.record(branchy, np.array([-1.0, 2.0]))
    assert_array_equal(t2.forward([1.0, 2.0]), 2.0)       # forward's fast path: a scalar now


# ---- ad.where: conditions, not source reading ------------------------------------------------------
def leaky_net(p, x):
    """Two leaky-ReLU layers with a bias input 1.0 mixed into an object array."""
    W1, W2 = p[:6].reshape(2, 3), p[6:9]
    h = np.array([x[0], x[1], 1.0], dtype=object)          # a bias entry: a plain number
    a = [ad.where(v > 0, v, 0.1 * v) if isinstance(v, ad.Var) else v
         for v in (W1 @ h).tolist()] + [1.0]
    out = ad.dot(W2, a)
    return ad.where(out > 0, out, 0.1 * out)


def leaky_net_numpy(p, x):
    W1, W2 = p[:6].reshape(2, 3), p[6:9]
    h = np.array([x[0], x[1], 1.0])
    z = W1 @ h
    a = np.concatenate([np.where(z > 0, z, 0.1 * z), [1.0]])
    s = W2 @ a
    ds = 1.0 if s > 0 else 0.1
    dz = np.where(z > 0, 1.0, 0.1)
    g = np.concatenate([np.outer(ds * W2[:2] * dz, h).ravel(), ds * a])
    return (s if s > 0 else 0.1 * s), g


def test_leaky_relu_net_with_a_bias_entry_is_right_everywhere():
    rng = np.random.default_rng(0)
    x = np.array([0.3, -0.7])
    p0 = rng.normal(size=9)
    t = ad.record(lambda p: leaky_net(p, x), p0, arrays=False)    # object arrays of Var
    assert t.stats()["guards"] == 0
    for _ in range(300):
        p = rng.normal(size=9)
        want, g = leaky_net_numpy(p, x)
        assert_allclose(t(p), want, rtol=1e-14, atol=1e-15)
        assert_allclose(t.gradient(p), g, rtol=1e-13, atol=1e-15)
    assert t.stats()["rerecords"] == 0


def leaky(z):
    return ad.where(z > 0, z, 0.1 * z)


def leaky_net_arrays(p, x):
    """The same net written with object arrays through one helper: where at one source position
    sees a bias entry 1.0 (a plain number) in the first layer's array."""
    W1, W2 = p[:6].reshape(2, 3), p[6:9]
    a = leaky(np.concatenate([W1 @ np.array([x[0], x[1], 1.0]), [1.0]]))
    return ad.sum(leaky(np.array([ad.dot(W2, a), 1.0], dtype=object)))     # + leaky(1.0)


def test_leaky_relu_net_through_one_helper_is_right_everywhere():
    rng = np.random.default_rng(1)
    x = np.array([0.3, -0.7])
    t = ad.record(lambda p: leaky_net_arrays(p, x), rng.normal(size=9), arrays=False)
    for _ in range(200):
        p = rng.normal(size=9)
        want, g = leaky_net_numpy(p, x)
        assert_allclose(t(p), want + 1.0, rtol=1e-14, atol=1e-15)
        assert_allclose(t.gradient(p), g, rtol=1e-13, atol=1e-15)


def test_where_never_takes_a_guard_it_did_not_create():
    def f(x):
        c = x[0] > 0
        if x[1] > 0:                             # a guard of its own
            pass
        return ad.where(c, x[0] * x[1], x[1])
    t = ad.record(f, np.array([1.0, 2.0]))
    assert t.stats()["guards"] == 1
    assert_array_equal(t.gradient([-1.0, 2.0]), [0.0, 1.0])
    assert t.stats()["rerecords"] == 0
    assert_array_equal(t.gradient([1.0, -2.0]), [-2.0, 1.0])   # x[1] > 0 flipped: re-record
    assert t.stats()["rerecords"] == 1


WITHOUT_SOURCE = """
import numpy as np, tapead as ad
t = ad.record(lambda x: ad.where(x > 0, x * x, -x), 2.0)
assert t.stats()["guards"] == 0, t.stats()
assert t.gradient(3.0) == 6.0 and t.gradient(-1.0) == -1.0
assert t.stats()["rerecords"] == 0
exec("u = ad.record(lambda x: ad.where(np.float64(0.0) < x, x * x, -x), 2.0)")
assert u.stats()["guards"] == 0 and u.gradient(-1.0) == -1.0 and u.stats()["rerecords"] == 0
print("ok")
"""


def test_where_works_with_no_source_at_all():
    r = subprocess.run([sys.executable, "-c", WITHOUT_SOURCE], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_where_with_a_numpy_scalar_on_the_left_is_branch_free():
    for c in (np.float64(0.5), np.array(0.5), np.float32(0.5)):
        t = ad.record(lambda x: ad.where(c < x, x * x, -x), 2.0)
        assert t.stats()["guards"] == 0
        assert t.gradient(3.0) == 6.0 and t.gradient(-1.0) == -1.0
        assert t.stats()["rerecords"] == 0
    with ad.Tape() as tape:                      # imperative: no BranchChanged without a branch
        x = tape.variables(2.0)
        tape.outputs(ad.where(np.float64(0.5) < x, x * x, -x))
    assert tape.gradient(-1.0) == -1.0


def test_where_after_many_comparisons_in_its_operands_keeps_its_condition():
    def f(x):
        big = x
        for k in range(12000):
            if x > -1.0 - k:                     # 12,000 guards in the operand
                big = big + 0.0
        return ad.where(x > 0, big * x, -x)
    t = ad.record(f, 2.0)
    assert t.stats()["guards"] == 12000
    assert t.gradient(3.0) == 6.0 and t.gradient(-0.5) == -1.0
    assert t.stats()["rerecords"] == 0


def test_cond_acts_as_a_bool_and_guards_when_used_as_one():
    with ad.Tape() as t:
        x, y = t.variables([1.0, 2.0])
        c = x < y
        assert type(c) is ad.Cond and not c.guarded
        assert c + 1 == 2 and int(c) == 1 and float(c) == 1.0 and [10, 20][bool(c)] == 20
        with pytest.raises(TypeError):
            [10, 20][x < y]                      # no index: NumPy would read it as 1, not True
        assert c.guarded and t.stats()["guards"] == 1
        assert (x > y) * 3 == 0 and not (x > y) and hash(x > y) == hash(False)
        assert (x < y) and (x < y) == True and (x < y) & True          # noqa: E712
        assert repr(x < y).startswith("Cond(True")
        t.outputs(x + y)


def test_cond_of_a_tape_closed_meanwhile_is_a_plain_bool():
    with ad.Tape() as t:
        x = t.variables(1.0)
        c = x > 0
        t.outputs(x * 2)
    assert bool(c) is True and t.stats()["guards"] == 0


def test_cond_from_another_thread_is_refused():
    with ad.Tape() as t:
        x = t.variables(1.0)
        c = x > 0
        out = in_thread(lambda: bool(c))
        assert isinstance(out.get("error"), ad.TapeError)
        t.outputs(x)


# ---- .value while recording ------------------------------------------------------------------------
def scale_by_value(x):
    return x * x.value                           # VALUE-READ


def test_value_read_while_recording_guards_the_tape():
    with pytest.warns(ad.ValueWarning, match="freezes"):
        t = ad.record(scale_by_value, 2.0)
    assert t.gradient(2.0) == 2.0
    assert t.forward(3.0) == 9.0 and t.gradient(3.0) == 3.0     # re-recorded: not 6.0
    assert t.stats()["rerecords"] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ad.ValueWarning)
        with ad.Tape() as tape:
            x = tape.variables(2.0)
            tape.outputs(scale_by_value(x))
    assert tape(2.0) == 4.0
    with pytest.raises(ad.BranchChanged, match=r"\.value .*was read while recording.*"
                                               r"test_review_fixes.py:\d+"):
        tape(3.0)


def test_branching_on_value_replays_the_right_branch():
    def f(x):
        return x * x if x.value > 0 else -x
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ad.ValueWarning)
        t = ad.record(f, 2.0)
        assert t.gradient(-1.0) == -1.0 and t.gradient(3.0) == 6.0


def test_value_of_nan_guards_too():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ad.ValueWarning)
        t = ad.record(lambda x: x + x.value, float("nan"))
        assert np.isnan(t(float("nan")))
        assert t(1.0) == 2.0                     # re-recorded: not 1.0 + nan


def test_value_warns_once_per_line():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        for _ in range(3):
            ad.record(scale_by_value, 2.0)
    assert sum(issubclass(w.category, ad.ValueWarning) for w in seen) == 1


def test_printing_progress_while_recording_records_nothing():
    def f(x):
        y = x * x
        text = f"{y:.3f} {y!r} {y}"
        assert text.startswith("4.000 Var(value=4.0")
        return y
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = ad.record(f, 2.0)
    assert len(t) == 1 and t.stats()["guards"] == 0
    assert t.gradient(3.0) == 6.0 and t.stats()["rerecords"] == 0


def test_messages_do_not_recommend_value_to_keep_computing():
    with ad.Tape() as t:
        x = t.variables(2.0)
        for call in (float, int, lambda v: v // 2, lambda v: v % 2):
            with pytest.raises(TypeError) as e:
                call(x)
            assert "use v.value for the plain number" not in str(e.value)
        t.outputs(x)


# ---- the last point swept moves only when a whole replay succeeds ---------------------------------
def test_a_replay_that_raised_leaves_the_last_point():
    calls = {"n": 0}

    @ad.primitive
    def f(x):
        return x * x

    @f.defvjp
    def _(x, w):
        calls["n"] += 1
        if x[0] > 5:
            raise RuntimeError("rule refused")
        return (2 * x[0] * w,)

    t = ad.record(lambda x: f(x) + x, 1.0)
    assert t.gradient(2.0) == 5.0
    with pytest.raises(RuntimeError, match="rule refused"):
        t.gradient(9.0)
    assert t.forward(None) == 6.0                # still 2.0, not 9.0
    with pytest.raises(TypeError):               # no second-order rules for primitives
        t.hvp(7.0, 1.0)
    assert t.forward(None) == 6.0
    assert t.gradient(None) == 5.0


# ---- inputs at misaligned addresses (NumPy allows them: views into bytes) --------------------------
def misaligned(values):
    raw = bytearray(8 * len(values) + 1)
    a = np.frombuffer(raw, dtype=np.float64, count=len(values), offset=1)
    a[...] = values
    assert not a.flags.aligned
    return a


def test_misaligned_inputs_are_read_as_their_values():
    t = ad.record(lambda x: x[0] * ad.sin(x[1]), np.array([2.0, 1.0]))
    x = misaligned([3.0, 0.5])
    want = [np.sin(0.5), 3.0 * np.cos(0.5)]
    assert_allclose(t.gradient(x), want, rtol=1e-15)
    assert t.forward(x) == 3.0 * np.sin(0.5)
    X = misaligned([3.0, 0.5, 1.0, 2.0]).reshape(2, 2)
    assert_allclose(t.gradient(X, batch=True)[0], want, rtol=1e-15)
