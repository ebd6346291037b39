"""Small calls in C (csrc/fast.c): ad.record of scalar arguments or one vector, and gradient
replays of tapes recorded from several scalars. Each must give what the general paths of
tapead/tape.py give -- the same bits, the same tapes, the same exceptions with the same
messages -- and hand anything unusual to them.

The general paths are reached directly: Tape._gradient / Tape._forward for replays, an
imperative ``with ad.Tape()`` recording for ad.record.
"""
import math
import re
import threading

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import tapead as ad

from helpers import run_in_threads


def seed(a, b):
    return a * ad.sqrt(ad.log(a / ad.sin(b ** 2)))


def seed_vec(x):
    return x[0] * ad.sqrt(ad.log(x[0] / ad.sin(x[1] ** 2)))


def three(a, b, c):
    return a * b + ad.exp(c) / (1.0 + a * a) - ad.atan2(b, c)


def kinked(a, b):
    """A branch on each argument: re-records where a guard flips."""
    u = a * a if a > 1.0 else 2.0 * a - 1.0
    return u * ad.sin(b) if b > 0.0 else u - b


def kinked_grad(a, b):
    du = 2.0 * a if a > 1.0 else 2.0
    u = a * a if a > 1.0 else 2.0 * a - 1.0
    return (du * math.sin(b), u * math.cos(b)) if b > 0.0 else (du, -1.0)


def bits(v):
    """The exact bits of a float or a tuple/array of floats."""
    return np.asarray(v, dtype=np.float64).tobytes()


def imperative(f, *args):
    """The general recording path: an imperative tape with one t.variables call per argument."""
    with ad.Tape() as t:
        xs = [t.variables(a) for a in args]
        t.outputs(f(*xs))
    return t


def same_tape(t1, t2):
    s1, s2 = t1.stats(), t2.stats()
    for key in ("ops", "by_opcode", "inputs", "outputs", "guards", "constants", "nbytes"):
        assert s1[key] == s2[key], key
    assert t1._rec.pieces == t2._rec.pieces and t1._rec.sizes == t2._rec.sizes
    assert t1._rec.out_shape == t2._rec.out_shape and t1._rec.fast == t2._rec.fast


POINTS = [(3.0, 0.5), (2.0, 1.0), [1.5, -0.75], (2, 1), (np.float64(2.5), 0.25),
          (True, 1.25), (np.float32(2.0), 1.0), (np.array(3.0), 0.5), (2.0, np.int64(1)),
          (float("nan"), 1.0), (float("inf"), 0.5), (-0.0, 1.0), (2 ** 60, 1.0)]


# ---- replays of several scalars: the same bits as the general path ----------------------------
@pytest.mark.parametrize("x", POINTS, ids=[repr(p) for p in POINTS])
def test_gradient_of_scalars_is_bit_identical_to_the_general_path(x):
    t = ad.record(seed, 2.0, 1.0)
    with np.errstate(all="ignore"):
        fast, general = t.gradient(x), t._gradient(x)
    assert type(fast) is tuple and len(fast) == 2
    assert all(type(g) is float for g in fast)
    assert type(general) is tuple and bits(fast) == bits(general)
    assert t.gradient() == t._gradient() or bits(t.gradient()) == bits(t._gradient())
    y_fast, y_general = t.forward(x), t._forward(x)
    assert type(y_fast) is float and bits(y_fast) == bits(y_general)


def test_three_scalars_match_the_closed_form_and_a_vector_tape():
    t = ad.record(three, 0.3, -1.2, 0.7)
    tv = ad.record(lambda x: three(x[0], x[1], x[2]), np.array([0.3, -1.2, 0.7]))
    rng = np.random.default_rng(3)
    for _ in range(20):
        p = tuple(float(v) for v in rng.uniform(-2, 2, 3))
        g = t.gradient(p)
        assert bits(g) == bits(t._gradient(p)) == bits(tv.gradient(np.array(p)))
        a, b, c = p
        want = (b - 2 * a * math.exp(c) / (1 + a * a) ** 2, a - c / (b * b + c * c),
                math.exp(c) / (1 + a * a) + b / (b * b + c * c))
        np.testing.assert_allclose(g, want, rtol=1e-13)


def test_many_scalars_beyond_the_stack_buffer():
    k = 100                                     # more than csrc/fast.c's SMALL (64)

    def f(*xs):
        return ad.sum([x * x * (i + 1) for i, x in enumerate(xs)])
    args = [float(i) / k for i in range(k)]
    t = ad.record(f, *args)
    assert t._rec.fast == 3 and t.n_inputs == k
    p = [float(i) / 7 for i in range(k)]
    g = t.gradient(p)
    assert bits(g) == bits(t._gradient(p)) == bits([2 * (i + 1) * v for i, v in enumerate(p)])
    assert bits(t.gradient()) == bits(g)


def test_one_scalar_and_one_vector_fast_paths_unchanged():
    t = ad.record(lambda x: x * ad.sin(x), 2.0)
    assert t.gradient(0.5) == t._gradient(0.5) and type(t.gradient(0.5)) is float
    tv = ad.record(seed_vec, np.array([2.0, 1.0]))
    for x in ([3.0, 0.5], (3.0, 0.5), np.array([3.0, 0.5])):
        g = tv.gradient(x)
        assert type(g) is np.ndarray and g.shape == (2,)
        assert bits(g) == bits(tv._gradient(x))


# ---- x=None: the last point -----------------------------------------------------------------
def test_x_none_is_the_last_point_swept():
    t = ad.record(seed, 2.0, 1.0)
    assert bits(t.gradient()) == bits(ad.record(seed, 2.0, 1.0)._gradient())   # recorded point
    g = t.gradient((3.0, 0.5))
    assert bits(t.gradient()) == bits(g) == bits(t.gradient(None))
    assert bits(t.gradient(x=None)) == bits(g)
    assert bits(t.gradient(x=(2.0, 1.0))) == bits(t._gradient((2.0, 1.0)))
    with pytest.raises(ValueError):
        t.gradient((1.0, 2.0, 3.0))              # a replay that raised does not move it
    assert bits(t.gradient()) == bits(t._gradient((2.0, 1.0)))


def test_gradient_arguments_as_the_python_method_had():
    t = ad.record(seed, 2.0, 1.0)
    with pytest.raises(TypeError, match="positional"):
        t.gradient((3.0, 0.5), 1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'y'"):
        t.gradient(y=(3.0, 0.5))
    with pytest.raises(TypeError, match="multiple values"):
        t.gradient((3.0, 0.5), x=(3.0, 0.5))
    assert str(__import__("inspect").signature(ad.Tape.gradient)) == "(self, /, x=None, *, batch=False)"


# ---- branch guards ----------------------------------------------------------------------------
@pytest.mark.parametrize("x", [(0.5, 1.0), (2.0, -1.0), (0.5, -1.0), (3.0, 2.0)])
def test_re_records_at_flipped_guards_like_the_general_path(x):
    t_fast, t_general = ad.record(kinked, 2.0, 1.0), ad.record(kinked, 2.0, 1.0)
    g = t_fast.gradient(x)
    assert bits(g) == bits(t_general._gradient(x)) == bits(kinked_grad(*x))
    flipped = x[0] <= 1.0 or x[1] <= 0.0
    assert t_fast.stats()["rerecords"] == t_general.stats()["rerecords"] == int(flipped)
    same_tape(t_fast, t_general)
    assert bits(t_fast.gradient()) == bits(g)             # the new recording's point
    back = t_fast.gradient((2.0, 1.0))                    # and back across the guards
    assert bits(back) == bits(kinked_grad(2.0, 1.0))
    assert t_fast.stats()["rerecords"] == 2 * int(flipped)


FLIP_FORMS = [(0.5, 1.0), [0, 1], (np.float64(0.5), 1), (np.array(0.5), 1.0),
              (np.float32(0.5), 1.0), (True, 2.0)]


@pytest.mark.parametrize("x", FLIP_FORMS, ids=[repr(x) for x in FLIP_FORMS])
def test_re_recording_at_x_in_any_form_is_the_general_recording_there(x):
    t = ad.record(kinked, 2.0, 1.0)
    fresh = imperative(kinked, *[float(v) for v in x])
    assert bits(t.gradient(x)) == bits(fresh.gradient())
    assert t.stats()["rerecords"] == 1
    same_tape(t, fresh)
    t = ad.record(kinked, 2.0, 1.0)
    assert bits(t.forward(x)) == bits(fresh.forward()) and t.stats()["rerecords"] == 1
    same_tape(t, fresh)
    tv = ad.record(lambda v: kinked(v[0], v[1]), np.array([2.0, 1.0]))
    xv = np.array([float(v) for v in x])
    assert bits(tv.gradient(xv)) == bits(fresh.gradient()) and tv.stats()["rerecords"] == 1
    assert bits(tv.gradient(list(xv))) == bits(fresh.gradient())


def changes_outputs(a, b):
    return a * b if a > b else [a, b]


def test_re_record_with_other_outputs_raises_the_general_paths_value_error():
    t_fast, t_general = ad.record(changes_outputs, 2.0, 1.0), ad.record(changes_outputs, 2.0, 1.0)
    with pytest.raises(ValueError) as general:
        t_general._gradient((1.0, 2.0))
    with pytest.raises(ValueError, match=re.escape(str(general.value))):
        t_fast.gradient((1.0, 2.0))
    assert "scalar output" in str(general.value)
    assert t_fast.n_outputs == t_general.n_outputs == 2
    assert t_fast.stats()["rerecords"] == t_general.stats()["rerecords"] == 1
    assert_array_equal(t_fast.jacobian((1.0, 2.0)), t_general.jacobian((1.0, 2.0)))
    with pytest.raises(ValueError, match=re.escape(str(general.value))):
        t_fast.gradient()                         # its outputs stay two


def test_imperative_tape_of_scalars_raises_branch_changed_and_stays_usable():
    t = imperative(kinked, 2.0, 1.0)
    assert t._rec.fast == 3
    with pytest.raises(ad.BranchChanged, match="cannot re-record"):
        t.gradient((0.5, 1.0))
    assert bits(t.gradient()) == bits(kinked_grad(2.0, 1.0))
    assert bits(t.gradient((3.0, 2.0))) == bits(kinked_grad(3.0, 2.0))


def test_f_raising_while_re_recording_leaves_the_tape_and_thread_as_they_were():
    def f(a, b):
        if a > 0:
            return a * b
        raise KeyError("f is defined for a > 0 only")
    t = ad.record(f, 1.0, 2.0)
    with pytest.raises(KeyError, match="a > 0 only"):
        t.gradient((-1.0, 2.0))
    assert t.stats()["rerecords"] == 0 and t.gradient((3.0, 4.0)) == (4.0, 3.0)
    with ad.Tape() as t2:                          # nothing is left recording in this thread
        t2.outputs(t2.variables(1.0) * 2.0)


# ---- bad input: the general path's exceptions --------------------------------------------------
def _closed_var():
    """A Var of a closed tape."""
    with ad.Tape() as t:
        v = t.variables(1.0)
        t.outputs(v)
    return v


BAD = [("Var", lambda: (_closed_var(), 1.0)), ("string", lambda: ("a", 1.0)),
       ("numeric string", lambda: ("2.0", 1.0)), ("None element", lambda: (None, 1.0)),
       ("too short", lambda: (1.0,)), ("too long", lambda: (1.0, 2.0, 3.0)),
       ("empty", lambda: ()), ("bare number", lambda: 3.0), ("string of 2", lambda: "ab"),
       ("ndarray", lambda: np.array([3.0, 0.5])), ("piece of shape (1,)", lambda: ([1.0], 2.0)),
       ("dict", lambda: {0: 1.0, 1: 2.0}), ("complex", lambda: (1j, 2.0)),
       ("huge int", lambda: (10 ** 400, 1.0)), ("object", lambda: (object(), 1.0))]


@pytest.mark.parametrize("make", [b[1] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_raises_what_the_general_path_raises(make):
    t = ad.record(seed, 2.0, 1.0)
    t.gradient((3.0, 0.5))
    for replay, general_path in ((t.gradient, t._gradient), (t.forward, t._forward)):
        with pytest.raises(Exception) as general:
            general_path(make())
        assert isinstance(general.value, (TypeError, ValueError, OverflowError))
        with pytest.raises(type(general.value)) as fast:
            replay(make())
        assert type(fast.value) is type(general.value)
        assert str(fast.value) == str(general.value)
    assert bits(t.gradient()) == bits(t._gradient((3.0, 0.5)))       # the last point stays


def test_plain_forms_never_reach_the_general_paths(monkeypatch):
    """The comparisons above compare two paths: plain input runs in C alone."""
    t = ad.record(seed, 2.0, 1.0)
    tv = ad.record(seed_vec, np.array([2.0, 1.0]))
    calls = []

    def general(self, x=None):
        calls.append(x)
        raise AssertionError("the general path")
    monkeypatch.setattr(ad.Tape, "_gradient", general)
    for x in [(3.0, 0.5), [3, 0.5], (np.float64(3.0), 0.5), None]:
        t.gradient(x)
    for x in [[3.0, 0.5], (3, 0.5), np.array([3.0, 0.5]), None]:
        tv.gradient(x)
    assert calls == []
    for x in [(True, 0.5), (np.float32(3.0), 0.5), (np.array(3.0), 0.5), "ab"]:
        with pytest.raises(AssertionError, match="the general path"):
            t.gradient(x)
    assert len(calls) == 4

    def no_init(self):
        raise AssertionError("the general record path")
    monkeypatch.setattr(ad.Tape, "__init__", no_init)
    for args in [(2.0, 1.0), (2, 1), (np.float64(2.0), 1.0)]:
        ad.record(seed, *args)
    for x in [np.array([2.0, 1.0]), [2.0, 1.0], (2, 1.0)]:
        ad.record(seed_vec, x)
    for args in [(np.float32(2.0), 1.0), (True, 1.0), (np.array([2.0, 1.0]), 1.0)]:
        with pytest.raises(AssertionError, match="the general record path"):
            ad.record(seed, *args)
    for x in [np.array([2.0, 1.0], dtype=np.float32), np.array([[2.0, 1.0]]),
              np.array([2.0, 0.0, 1.0])[::2], [[2.0], [1.0]], np.array([])]:
        with pytest.raises(AssertionError, match="the general record path"):
            ad.record(seed_vec, x)


# ---- ad.record in C: the general recording, the same behaviour ---------------------------------
RECORD_ARGS = [(seed, (2.0, 1.0)), (seed, (2, 1)), (seed, (np.float64(2.0), 1.0)),
               (three, (0.3, -1.2, 0.7)), (lambda a: a * ad.exp(a), (0.5,)),
               (seed_vec, (np.array([2.0, 1.0]),)), (seed_vec, ([2.0, 1.0],)),
               (seed_vec, ((2, 1.0),)), (lambda x: ad.sum(x * x), (np.arange(70.0),))]


@pytest.mark.parametrize("f, args", RECORD_ARGS, ids=[str(i) for i in range(len(RECORD_ARGS))])
def test_record_in_c_makes_the_general_tape(f, args):
    t, t_general = ad.record(f, *args), imperative(f, *args)
    same_tape(t, t_general)
    assert t._fn is f and t.stats()["rerecords"] == 0 and not t.recording
    assert bits(t.gradient()) == bits(t_general.gradient())
    assert bits(t.forward()) == bits(t_general.forward())
    y = t.forward()
    assert type(y) is float


def test_record_in_c_gives_f_vars_and_arrays():
    seen = []

    def f(*xs):
        seen.append(xs)
        return xs[0] * 1.0 if type(xs[0]) is ad.Var else xs[0][0] * 1.0
    t = ad.record(f, 1.0, 2.0)
    assert all(type(v) is ad.Var for v in seen[-1]) and [v.index for v in seen[-1]] == [0, 1]
    assert seen[-1][0].tape is t and seen[-1][0]._rec is t._rec
    t = ad.record(f, np.array([1.0, 2.0, 3.0]))
    x, = seen[-1]
    assert type(x) is ad.Array and x.shape == (3,) and x.tape is t and len(x) == 3
    assert all(type(v) is ad.Var for v in x) and x[2].index == 2 and x[0].tape is t
    assert x[-1].index == 2 and [v.index for v in reversed(list(x))] == [2, 1, 0]
    assert ad.record(f, [4.0, 5.0]).gradient().tolist() == [1.0, 0.0]
    t = ad.record(f, np.array([1.0, 2.0, 3.0]), arrays=False)      # object arrays on request
    x, = seen[-1]
    assert type(x) is np.ndarray and x.dtype == object and x.shape == (3,)
    assert all(type(v) is ad.Var for v in x) and x[2].index == 2 and x[0].tape is t


def test_record_outputs_other_than_one_var_take_the_general_outputs():
    t = ad.record(lambda a, b: [[a * b, 3.0], [a, b]], 2.0, 5.0)
    assert t.n_outputs == 4 and t.forward().tolist() == [[10.0, 3.0], [2.0, 5.0]]
    t = ad.record(lambda a, b: 7.0, 2.0, 5.0)
    assert t.forward() == 7.0 and t.gradient() == (0.0, 0.0)
    other = _closed_var()
    with pytest.raises(ad.TapeError, match="another tape"):
        ad.record(lambda a, b: other, 2.0, 5.0)
    with pytest.raises(TypeError, match="t.outputs expects"):
        ad.record(lambda a, b: "y", 2.0, 5.0)
    with pytest.raises(TypeError, match="not callable"):
        ad.record(3.0, 2.0, 5.0)
    with pytest.raises(TypeError, match="at least one argument"):
        ad.record(seed)


def test_record_nested_in_f_raises_and_the_thread_recovers():
    def outer(a, b):
        return ad.record(seed, a.value, 1.0)
    with pytest.warns(ad.ValueWarning), pytest.raises(ad.TapeError, match="already recording"):
        ad.record(outer, 2.0, 1.0)
    with pytest.raises(ZeroDivisionError):
        ad.record(lambda a, b: 1 / 0, 2.0, 1.0)
    assert bits(ad.record(seed, 2.0, 1.0).gradient()) == bits(imperative(seed, 2.0, 1.0).gradient())


def test_record_in_c_guards_and_conditions():
    t = ad.record(kinked, 2.0, 1.0)
    assert t.stats()["guards"] == 2 and len(t._rec.sites) == 2
    t = ad.record(lambda a, b: ad.where(a > b, a, b) * 1.0, 2.0, 1.0)
    assert t.stats()["guards"] == 0 and t.gradient((1.0, 2.0)) == (0.0, 1.0)


def test_grad_of_one_argument_records_f_itself():
    g = ad.grad(seed_vec)
    x = np.array([2.0, 1.0])
    assert bits(g(x)) == bits(ad.record(seed_vec, x)._gradient())
    assert ad.grad(lambda a: a * a)(3.0) == 6.0
    assert ad.grad(lambda a: a * a, argnums=-1)(3.0) == 6.0
    assert ad.grad(seed, argnums=1)(2.0, 1.0) == ad.record(seed, 2.0, 1.0).gradient()[1]
    with pytest.raises(ValueError, match="out of range"):
        ad.grad(seed)()


# ---- threads --------------------------------------------------------------------------------
def test_threads_replay_one_scalars_tape_with_re_records():
    points = [(a, b) for a in (0.5, 1.5, 2.5) for b in (-0.5, 0.5, 1.5)]
    want = [bits(kinked_grad(*p)) for p in points]
    t = ad.record(kinked, 2.0, 1.0)

    def worker(k):
        for r in range(40):
            i = (5 * k + r) % len(points)
            assert bits(t.gradient(points[i])) == want[i], (k, r, points[i])
            assert t.forward(points[i]) == t._forward(points[i])

    run_in_threads(worker, 6)
    assert t.stats()["rerecords"] >= 1


def test_threads_record_scalars_at_once():
    def worker(k):
        for r in range(200):
            a, b = 1.5 + 0.01 * k + 0.001 * r, 0.25 + 0.002 * r
            t = ad.record(kinked, a, b)
            assert bits(t.gradient()) == bits(kinked_grad(a, b))
            assert bits(t.gradient((b + 1.0, a))) == bits(kinked_grad(b + 1.0, a))
            tv = ad.record(seed_vec, np.array([a + 1.0, b]))
            assert bits(tv.gradient()) == bits(imperative(seed_vec, np.array([a + 1.0, b]))
                                               .gradient())

    run_in_threads(worker, 4)


def test_another_thread_records_while_f_runs_but_cannot_replay_the_open_tape():
    results = {}

    def f(a, b):
        def other():
            try:
                results["other"] = ad.record(seed, 2.0, 1.0).gradient((3.0, 0.5))
                a.tape.gradient((1.0, 2.0))
            except ad.TapeError as e:
                results["error"] = e
        th = threading.Thread(target=other)
        th.start()
        th.join()
        return a * b
    t = ad.record(f, 2.0, 3.0)
    assert bits(results["other"]) == bits(ad.record(seed, 2.0, 1.0)._gradient((3.0, 0.5)))
    assert isinstance(results["error"], ad.TapeError)
    assert t.gradient() == (3.0, 2.0)
