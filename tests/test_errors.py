"""Every error case of the API (docs/API.md): the right exception type, a message that
helps, and no crash; NaN and Inf inputs sweep as IEEE says."""
import math

import numpy as np
import pytest

import tapead as ad
from helpers import in_thread


def vector_tape():
    """R^3 -> R^2, one array piece."""
    return ad.record(lambda x: [x[0] * x[1], ad.sin(x[2])], np.array([1.0, 2.0, 3.0]))


def scalar_tape():
    return ad.record(lambda x: ad.sum(x ** 2), np.array([1.0, 2.0, 3.0]))


def pieces_tape():
    """two pieces: a scalar and a (2,) array."""
    return ad.record(lambda a, b: a * ad.sum(b), 2.0, np.array([1.0, 2.0]))


def test_exception_hierarchy():
    assert issubclass(ad.TapeError, RuntimeError)
    assert issubclass(ad.BranchChanged, ad.TapeError)


# ---- wrong shapes ----------------------------------------------------------------------------
REPLAYS = {
    "forward": lambda t, x: t.forward(x),
    "call": lambda t, x: t(x),
    "gradient": lambda t, x: t.gradient(x),
    "jacobian-fwd": lambda t, x: t.jacobian(x, mode="forward"),
    "jacobian-rev": lambda t, x: t.jacobian(x, mode="reverse"),
    "jvp": lambda t, x: t.jvp(x, np.ones(3)),
    "vjp": lambda t, x: t.vjp(x, 1.0),
}


@pytest.mark.parametrize("replay", list(REPLAYS))
@pytest.mark.parametrize("bad", [[1.0, 2.0], np.ones(4), np.ones((3, 1)), 1.0, np.ones((1, 3))],
                         ids=["short", "long", "column", "scalar", "row"])
def test_wrong_input_shape_names_expected_and_got(replay, bad):
    t = scalar_tape()
    with pytest.raises(ValueError) as e:
        REPLAYS[replay](t, bad)
    msg = str(e.value)
    assert "expected" in msg and "got" in msg
    assert "(3,)" in msg and str(np.shape(bad)) in msg


@pytest.mark.parametrize("bad", [(2.0,), [2.0, 1.0, 3.0], (2.0, [1.0, 2.0, 3.0]),
                                 np.array([2.0, 1.0, 2.0]), (2.0, [1.0, 2.0], 3.0),
                                 ([2.0], [1.0, 2.0])],
                         ids=["one-piece", "flat", "piece-shape", "flat-array", "three",
                              "scalar-as-list"])
def test_wrong_input_pieces(bad):
    t = pieces_tape()
    assert t((2.0, [1.0, 3.0])) == 8.0
    for fn in (t, t.gradient, lambda x: t.jacobian(x), lambda x: t.vjp(x, 1.0)):
        with pytest.raises(ValueError, match="expected .*got"):
            fn(bad)


@pytest.mark.parametrize("v", [np.ones(2), np.ones(4), np.ones((2, 3)), np.ones((3, 0)),
                               np.ones((3, 2, 1)), np.ones(())],
                         ids=["short", "long", "transposed", "k=0", "3d", "scalar"])
def test_wrong_tangent_shape(v):
    t = vector_tape()
    with pytest.raises(ValueError) as e:
        t.jvp([1.0, 2.0, 3.0], v)
    msg = str(e.value)
    assert "expected" in msg and "got" in msg and str(v.shape) in msg


def test_wrong_tangent_pieces():
    t = pieces_tape()
    x = (2.0, [1.0, 3.0])
    assert t.jvp(x, (1.0, [0.0, 0.0]))[1] == 4.0
    with pytest.raises(ValueError):
        t.jvp(x, (1.0,))                                   # a piece missing
    with pytest.raises(ValueError, match="expected"):
        t.jvp(x, (1.0, [1.0]))                             # a piece of the wrong shape
    with pytest.raises(ValueError):
        t.jvp(x, (np.ones(3), np.ones((2, 2))))            # different k per piece


@pytest.mark.parametrize("w", [np.ones(3), np.ones((2, 3)), np.ones((0, 2)), np.ones((2, 2, 1)),
                               np.ones(())],
                         ids=["long", "transposed", "k=0", "3d", "scalar"])
def test_wrong_weight_shape(w):
    t = vector_tape()                                      # y has shape (2,)
    with pytest.raises(ValueError) as e:
        t.vjp([1.0, 2.0, 3.0], w)
    msg = str(e.value)
    assert "expected" in msg and "got" in msg and str(w.shape) in msg


def test_bad_jacobian_mode():
    with pytest.raises(ValueError, match="mode"):
        scalar_tape().jacobian([1.0, 2.0, 3.0], mode="fwd")


def test_gradient_of_a_vector_output_tape():
    with pytest.raises(ValueError, match="scalar"):
        vector_tape().gradient([1.0, 2.0, 3.0])
    with pytest.raises(ValueError):
        ad.grad(lambda x: x * 2.0)(np.ones(2))


# ---- tape misuse: TapeError ------------------------------------------------------------------
def closed_tape_and_var():
    with ad.Tape() as t:
        x = t.variables([1.0, 2.0])
        y = x[0] * x[1]
        t.outputs(y)
    return t, x, y


@pytest.mark.parametrize("combine", [
    lambda a, b: a + b, lambda a, b: b * a, lambda a, b: a / b, lambda a, b: b ** a,
    lambda a, b: ad.hypot(a, b), lambda a, b: ad.maximum(b, a), lambda a, b: np.arctan2(a, b),
    lambda a, b: ad.sum([a, b]), lambda a, b: ad.dot([a, 1.0], [2.0, b]),
    lambda a, b: ad.where(a, b, 1.0), lambda a, b: ad.where(b, a, 1.0),
    lambda a, b: ad.where(a, 1.0, b),
], ids=["add", "mul", "div", "pow", "hypot", "maximum", "np.arctan2", "sum", "dot", "where-y",
        "where-cond", "where-w"])
def test_mixed_tapes(combine):
    _, old, _ = closed_tape_and_var()
    with ad.Tape() as t:
        x = t.variables(3.0)
        with pytest.raises(ad.TapeError, match="different tapes"):
            combine(x, old[0])
        t.outputs(x)


def test_outputs_from_another_tape():
    _, old, old_y = closed_tape_and_var()
    with ad.Tape() as t:
        x = t.variables(3.0)
        with pytest.raises(ad.TapeError):
            t.outputs(old_y)
        with pytest.raises(ad.TapeError):
            t.outputs([x, old[1]])
        t.outputs(x)


@pytest.mark.parametrize("record", [
    lambda t, x, y: x[0] * 2.0, lambda t, x, y: 2.0 - y, lambda t, x, y: x[0] + x[1],
    lambda t, x, y: -y, lambda t, x, y: abs(y), lambda t, x, y: y ** 2, lambda t, x, y: y ** 0.5,
    lambda t, x, y: 2.0 ** y, lambda t, x, y: ad.sin(y), lambda t, x, y: np.exp(y),
    lambda t, x, y: ad.hypot(y, 1.0), lambda t, x, y: ad.sum(x), lambda t, x, y: ad.dot(x, x),
    lambda t, x, y: ad.where(y, x[0], x[1]), lambda t, x, y: ad.where(y, 1.0, 2.0),
    lambda t, x, y: t.variables(1.0), lambda t, x, y: t.outputs(y),
], ids=["mul", "rsub", "add", "neg", "abs", "square", "sqrt", "rpow", "sin", "np.exp", "hypot",
        "sum", "dot", "where", "where-consts", "variables", "outputs"])
def test_recording_on_a_closed_tape(record):
    t, x, y = closed_tape_and_var()
    with pytest.raises(ad.TapeError, match="closed"):
        record(t, x, y)
    # the tape is unharmed: still one operation, still replays
    assert len(t) == 1 and t([3.0, 4.0]) == 12.0


def test_tape_cannot_be_entered_twice():
    t, _, _ = closed_tape_and_var()
    with pytest.raises(ad.TapeError):
        with t:
            pass


def test_nested_recording():
    with ad.Tape() as outer:
        x = outer.variables(1.0)
        with pytest.raises(ad.TapeError, match="already recording"):
            with ad.Tape():
                pass
        with pytest.raises(ad.TapeError):
            ad.record(lambda u: u * 2.0, 1.0)
        with pytest.raises(ad.TapeError):
            ad.grad(lambda u: u * 2.0)(1.0)
        y = x * 3.0                                         # the outer tape still records
        outer.outputs(y)
    assert outer.gradient(2.0) == 3.0
    # and recording works again afterwards
    assert ad.record(lambda u: u * u, 1.0).gradient(3.0) == 6.0


def test_recording_state_recovers_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with ad.Tape() as t:
            x = t.variables(1.0)
            x * 2.0
            1 / 0
    assert not t.recording
    with pytest.raises(ZeroDivisionError):
        ad.record(lambda u: u / 0 if False else 1 / 0, 1.0)
    assert ad.record(lambda u: u * u, 1.0).gradient(3.0) == 6.0


def test_variables_after_the_first_operation():
    with ad.Tape() as t:
        x = t.variables(1.0)
        t.variables([2.0, 3.0])                            # still allowed: no operation yet
        y = x * 2.0
        with pytest.raises(ad.TapeError, match="before the first operation"):
            t.variables(4.0)
        t.outputs(y)
    assert t.n_inputs == 3


@pytest.mark.parametrize("replay", [
    lambda t: t(1.0), lambda t: t.forward(1.0), lambda t: t.jacobian(1.0),
    lambda t: t.jvp(1.0, 1.0), lambda t: t.vjp(1.0, 1.0),
    lambda t: t.gradient(1.0),
], ids=["call", "forward", "jacobian", "jvp", "vjp", "gradient"])
def test_replay_of_a_tape_without_outputs(replay):
    with ad.Tape() as t:
        x = t.variables(1.0)
        y = x * 2.0
    with pytest.raises(ad.TapeError, match="no outputs"):
        replay(t)
    y.backward()                                            # backward needs no outputs
    assert x.grad == 2.0


# ---- another thread --------------------------------------------------------------------------
@pytest.mark.parametrize("use", [
    lambda t, x: x * 2.0, lambda t, x: 1.0 + x, lambda t, x: ad.sin(x), lambda t, x: -x,
    lambda t, x: x ** 2, lambda t, x: ad.sum([x, x]), lambda t, x: t.variables(1.0),
    lambda t, x: t.outputs(x), lambda t, x: t.gradient(1.0), lambda t, x: t(1.0),
    lambda t, x: t.jacobian(1.0), lambda t, x: x.backward(),
], ids=["mul", "radd", "sin", "neg", "square", "sum", "variables", "outputs", "gradient",
        "forward", "jacobian", "backward"])
def test_open_tape_from_another_thread(use):
    with ad.Tape() as t:
        x = t.variables(1.0)
        y = x * 3.0
        t.outputs(y)
        box = in_thread(lambda: use(t, x))
        assert isinstance(box.get("error"), ad.TapeError), box
        assert "thread" in str(box["error"])
        assert len(t) == 1
    # once closed, the tape is immutable and any thread may replay it
    box = in_thread(lambda: t.gradient(2.0))
    assert box == {"result": 3.0}


def test_each_thread_records_its_own_tape():
    """One recording per thread at a time: a recording in one thread does not block another."""
    with ad.Tape() as t:
        x = t.variables(2.0)
        box = in_thread(lambda: ad.record(lambda u: u * u, 1.0).gradient(3.0))
        assert box == {"result": 6.0}
        t.outputs(x * x)


# ---- paths that would drop the derivative ----------------------------------------------------
@pytest.mark.parametrize("drop", [float, int, math.sin, math.exp, math.sqrt, complex, round,
                                  math.floor, math.trunc, lambda v: [0, 1, 2][v]],
                         ids=["float", "int", "math.sin", "math.exp", "math.sqrt", "complex",
                              "round", "math.floor", "math.trunc", "index"])
def test_dropping_the_derivative_is_a_type_error(drop):
    with ad.Tape() as t:
        v = t.variables(1.25)
        with pytest.raises(TypeError) as e:
            drop(v)
        msg = str(e.value)
        assert "v.value" in msg and "ad.sin" in msg and "numpy.sin" in msg, msg
        assert "1.25" in msg
        t.outputs(v)


@pytest.mark.parametrize("op", [lambda v: v // 2, lambda v: 2 // v, lambda v: v % 2,
                                lambda v: 2.0 % v, lambda v: divmod(v, 2), lambda v: v // v,
                                lambda v: v % v],
                         ids=["floordiv", "rfloordiv", "mod", "rmod", "divmod", "vv//", "vv%"])
def test_floordiv_and_mod_are_type_errors(op):
    with ad.Tape() as t:
        v = t.variables(3.0)
        with pytest.raises(TypeError, match="//|%"):
            op(v)
        t.outputs(v)
    assert len(t) == 0


def test_unsupported_operand_types():
    with ad.Tape() as t:
        v = t.variables(3.0)
        for bad in ("a", None, [1.0], object(), 1j):
            with pytest.raises(TypeError):
                v + bad
            with pytest.raises(TypeError):
                bad * v
        with pytest.raises(TypeError):
            pow(v, 2, 3)
        t.outputs(v)
    assert len(t) == 0


@pytest.mark.parametrize("ufunc", [
    np.floor, np.ceil, np.exp2, np.rint, np.heaviside, np.logaddexp2, np.copysign, np.deg2rad,
    np.fmod,
], ids=lambda u: u.__name__)
def test_unsupported_ufunc_names_it(ufunc):
    with ad.Tape() as t:
        v = t.variables(1.5)
        args = (v,) * ufunc.nin
        with pytest.raises(TypeError, match=ufunc.__name__):
            ufunc(*args)
        with pytest.raises(TypeError, match=ufunc.__name__):   # an object array of Vars
            ufunc(*[np.array([v, v])] * ufunc.nin)
        t.outputs(v)


def test_ufunc_with_out_argument_is_refused():
    with ad.Tape() as t:
        v = t.variables(1.5)
        with pytest.raises(TypeError, match="sin"):
            np.sin(v, out=np.empty((), dtype=object))
        t.outputs(v)


# ---- non-numeric input -----------------------------------------------------------------------
NON_NUMERIC = ["abc", {"a": 1}, object(), 1 + 2j, [1.0, "x"], [[1.0, 2.0], [3.0]]]
NON_NUMERIC_IDS = ["str", "dict", "object", "complex", "list-with-str", "ragged"]


@pytest.mark.parametrize("bad", NON_NUMERIC, ids=NON_NUMERIC_IDS)
def test_non_numeric_input_to_variables(bad):
    with ad.Tape() as t:
        with pytest.raises(TypeError):
            t.variables(bad)
        x = t.variables(1.0)
        t.outputs(x)
    with pytest.raises(TypeError):
        ad.record(lambda u: u, bad)


@pytest.mark.parametrize("bad", NON_NUMERIC, ids=NON_NUMERIC_IDS)
def test_non_numeric_input_to_replays(bad):
    t = ad.record(lambda u: u * 2.0, 1.0)
    for fn in (t, t.forward, t.gradient, t.jacobian, lambda x: t.jvp(x, 1.0),
               lambda x: t.vjp(x, 1.0), lambda x: t.jvp(1.0, x), lambda x: t.vjp(1.0, x)):
        with pytest.raises(TypeError):
            fn(bad)


def test_var_as_replay_input_is_a_type_error():
    t, x, y = closed_tape_and_var()
    with pytest.raises(TypeError, match="plain numbers, not tapead Vars"):
        t(x)
    with ad.Tape() as t2:
        u = t2.variables(1.0)
        with pytest.raises(TypeError):
            t2.variables(u)
        t2.outputs(u)


def test_none_is_not_a_number():
    with pytest.raises(TypeError):
        with ad.Tape() as t:
            t.variables([1.0, None])
    t = ad.record(lambda u: u[0] * u[1], np.array([1.0, 2.0]))
    with pytest.raises(TypeError):
        t([None, 2.0])


def test_numeric_strings_are_not_numbers():
    with pytest.raises(TypeError):
        with ad.Tape() as t:
            t.variables("1.5")
    t = ad.record(lambda u: u * 2.0, 1.0)
    with pytest.raises(TypeError):
        t("2.0")


@pytest.mark.parametrize("call", [
    lambda: ad.sin(None), lambda: ad.sin(object()), lambda: ad.sin("a"),
    lambda: ad.exp([1.0, None]),
    lambda: ad.hypot(None, 1.0), lambda: ad.maximum(1.0, "a"), lambda: ad.sum([1.0, "a"]),
    lambda: ad.dot([1.0, None], [1.0, 2.0]),
], ids=["sin-None", "sin-object", "sin-str", "exp-list-None", "hypot-None", "maximum-str",
        "sum-str", "dot-None"])
def test_elementary_functions_reject_non_numbers(call):
    with pytest.raises(TypeError):
        call()


def test_elementary_functions_reject_non_numbers_next_to_a_var():
    """Used to recurse without end (RecursionError) before tapead/elementary.py checked."""
    with ad.Tape() as t:
        v = t.variables(1.0)
        for call in (lambda: ad.hypot(v, None), lambda: ad.atan2("a", v),
                     lambda: ad.maximum(v, object()), lambda: ad.pow(None, v)):
            with pytest.raises(TypeError, match="expects"):
                call()
        t.outputs(v)


def test_bad_outputs():
    for bad in ("a", None, [1.0, "a"], [[1.0, 2.0], [3.0]]):
        with ad.Tape() as t:
            x = t.variables(1.0)
            with pytest.raises((TypeError, ValueError)):
                t.outputs(bad)
            t.outputs(x)


def test_dot_of_unequal_lengths():
    with pytest.raises(ValueError):
        ad.record(lambda x: ad.dot(x, [1.0]), np.ones(2))


def test_functional_api_argument_errors():
    with pytest.raises(ValueError):
        ad.grad(lambda a: a, argnums=2)(1.0)
    with pytest.raises(ValueError):
        ad.jvp(lambda a, b: a * b, (1.0, 2.0), (1.0,))
    with pytest.raises(TypeError):
        ad.record(lambda: 1.0)
    with pytest.raises(ValueError):
        ad.finite_diff(lambda x: x, 1.0, method="backward")
    with pytest.raises(ValueError):
        ad.finite_diff(lambda x: x, 1.0, h=0.0)
    with pytest.raises(ValueError):
        ad.check_grads(lambda x: x, (1.0,), modes=("bwd",))


# ---- NaN and Inf -----------------------------------------------------------------------------
def seed_tape():
    return ad.record(lambda x1, x2: x1 * ad.sqrt(ad.log(x1 / ad.sin(x2 ** 2))), 2.0, 1.0)


@pytest.mark.parametrize("x", [(math.nan, 1.0), (2.0, math.nan), (math.inf, 1.0),
                               (-math.inf, 1.0), (2.0, math.inf), (0.0, 1.0), (2.0, 0.0),
                               (math.nan, math.nan), (-1.0, 1.0)])
def test_nan_and_inf_inputs_sweep_without_crashing(x):
    t = seed_tape()
    y = t(x)
    g = t.gradient(x)
    Jf = t.jacobian(x, mode="forward")
    Jr = t.jacobian(x, mode="reverse")
    _, ydot = t.jvp(x, (np.ones(3), np.ones(3)))
    _, xbar = t.vjp(x, np.ones(2))
    assert isinstance(y, float) and len(g) == 2 and ydot.shape == (3,)
    assert xbar[0].shape == (2,)
    if any(math.isnan(e) for e in x):
        assert math.isnan(y)
        assert np.array_equal(np.isnan(Jf), np.isnan(Jr))
    # with infinite intermediates the two modes may differ (inf vs NaN): they multiply the
    # partials in different orders, and IEEE gives inf * 0 = NaN for one and not the other


def test_ieee_values_of_nonfinite_sweeps():
    t = ad.record(lambda x: [ad.exp(x[0]), ad.log(x[1]), 1.0 / x[2], ad.sqrt(x[3]), x[4] * 0.0],
                  np.ones(5))
    x = np.array([-math.inf, 0.0, 0.0, -1.0, math.inf])
    y = t(x)
    assert y[0] == 0.0 and y[1] == -math.inf and y[2] == math.inf
    assert math.isnan(y[3]) and math.isnan(y[4])           # sqrt(-1), inf * 0
    J = t.jacobian(x, mode="reverse")
    assert J[0, 0] == 0.0 and J[1, 1] == math.inf and J[2, 2] == -math.inf
    assert math.isnan(J[3, 3]) and J[4, 4] == 0.0
    assert np.array_equal(J, t.jacobian(x, mode="forward"), equal_nan=True)
    # the recording itself may happen at a non-finite point
    t2 = ad.record(lambda u: ad.exp(u) * 2.0, math.inf)
    assert t2(math.inf) == math.inf and t2.gradient(-math.inf) == 0.0 and t2(1.0) == 2 * math.e


def test_power_one_half_matches_python_at_minus_infinity():
    t = ad.record(lambda x: x ** 0.5, 4.0)
    assert t(-math.inf) == (-math.inf) ** 0.5 == math.inf
