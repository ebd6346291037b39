"""User-defined primitives (docs/API.md): Python functions with their own jvp/vjp rules,
recorded as one tape operation (a CALL writing all its outputs) that the C sweeps call back.

Oracles: central differences of the same program on plain floats (a primitive called on numbers
just evaluates), closed forms where they exist, and forward == reverse.
"""
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import tapead as ad

from helpers import run_in_threads

sp = pytest.importorskip("scipy.special")


# ---- primitives from scipy.special, with their known derivatives -----------------------------
@ad.primitive
def gammaln(x):
    return sp.gammaln(x)


@gammaln.defjvp
def _gammaln_jvp(x, v):
    return sp.digamma(x[0]) * v[0]


@gammaln.defvjp
def _gammaln_vjp(x, w):
    return (sp.digamma(x[0]) * w,)


def _erfcx_d(x):
    return 2.0 * x * sp.erfcx(x) - 2.0 / math.sqrt(math.pi)


erfcx = ad.primitive(sp.erfcx, jvp=lambda x, v: _erfcx_d(x[0]) * v[0],
                     vjp=lambda x, w: (_erfcx_d(x[0]) * w,))


def _jv_dx(nu, x):
    return 0.5 * (sp.jv(nu - 1.0, x) - sp.jv(nu + 1.0, x))


@ad.primitive
def jv(nu, x):
    """Bessel J_nu(x) of two scalars; differentiable in x only (nu is passed as a constant)."""
    return sp.jv(nu, x)


jv.defjvp(lambda x, v: _jv_dx(x[0], x[1]) * v[1])
jv.defvjp(lambda x, w: (0.0, _jv_dx(x[0], x[1]) * w))


def special_program(x):
    """R^3 -> R^2 mixing primitives, elementary functions and constants; works on Vars and on
    plain floats."""
    a = gammaln(x[0] * x[1]) + ad.sin(x[0]) * erfcx(x[2])
    b = jv(1.5, x[0] + x[1]) * x[2] + gammaln(2.5) * erfcx(-x[1])
    return [a * b, a - 2.0 * b]


def special_jacobian(x):
    """Closed form of d special_program / dx."""
    x0, x1, x2 = x
    a = sp.gammaln(x0 * x1) + math.sin(x0) * sp.erfcx(x2)
    b = sp.jv(1.5, x0 + x1) * x2 + sp.gammaln(2.5) * sp.erfcx(-x1)
    dg = sp.digamma(x0 * x1)
    da = np.array([dg * x1 + math.cos(x0) * sp.erfcx(x2), dg * x0, math.sin(x0) * _erfcx_d(x2)])
    dj = _jv_dx(1.5, x0 + x1)
    db = np.array([dj * x2, dj * x2 - sp.gammaln(2.5) * _erfcx_d(-x1), sp.jv(1.5, x0 + x1)])
    return np.array([da * b + a * db, da - 2.0 * db])


X0 = np.array([1.3, 2.1, 0.4])
POINTS = [X0, np.array([0.7, 1.2, -1.1]), np.array([2.5, 0.9, 3.0])]


@pytest.mark.parametrize("x", POINTS, ids=["x0", "x1", "x2"])
def test_scipy_primitives_both_modes_agree_with_closed_form_and_differences(x):
    tape = ad.record(special_program, X0)
    assert tape.stats()["by_opcode"]["call"] == 4    # one per call on Vars (gammaln(2.5): plain)
    Jf = tape.jacobian(x, mode="forward")
    Jr = tape.jacobian(x, mode="reverse")
    assert_allclose(Jf, Jr, rtol=1e-14, atol=1e-15)
    assert_allclose(Jf, special_jacobian(x), rtol=1e-13, atol=1e-14)
    assert_allclose(Jf, ad.finite_diff(lambda z: np.array(special_program(z)), x), rtol=1e-8,
                    atol=1e-9)
    assert_allclose(tape(x), special_program(x), rtol=1e-15)
    # jvp / vjp with one and with k directions
    v = np.array([0.3, -0.2, 0.5])
    assert_allclose(tape.jvp(x, v)[1], Jf @ v, rtol=1e-13)
    assert_allclose(tape.jvp(x, np.eye(3))[1], Jf, rtol=1e-14)
    w = np.array([0.7, -1.3])
    assert_allclose(tape.vjp(x, w)[1], w @ Jf, rtol=1e-13)
    assert_allclose(tape.vjp(x, np.eye(2))[1], Jf, rtol=1e-14)


def test_gammaln_gradient_against_digamma():
    tape = ad.record(lambda t: gammaln(t), 3.0)
    for t in (0.1, 1.0, 4.5, 30.0):
        assert tape.gradient(t) == sp.digamma(t)
        assert tape.forward(t) == sp.gammaln(t)


def test_check_grads_passes_the_right_rules():
    ad.check_grads(lambda z: np.array(special_program(z)), (X0,))


def test_functional_api_through_primitives():
    f = lambda z: special_program(z)[0]                     # noqa: E731
    g = ad.grad(f)(X0)
    assert_allclose(g, special_jacobian(X0)[0], rtol=1e-13)
    assert_allclose(ad.jacfwd(f)(X0), g, rtol=1e-14)
    assert_allclose(ad.jacrev(f)(X0), g, rtol=1e-14)
    y, pullback = ad.vjp(f, X0)
    assert_allclose(pullback(1.0)[0], g, rtol=1e-14)


# ---- array primitives with vector output -------------------------------------------------------
def _softmax(a):
    e = np.exp(a - a.max())
    return e / e.sum()


softmax = ad.primitive(_softmax, jvp=lambda x, v: (lambda s: s * (v - s @ v))(_softmax(x)),
                       vjp=lambda x, w: (lambda s: s * (w - s @ w))(_softmax(x)))


@ad.primitive
def cumprod(a):
    return np.cumprod(a)


@cumprod.defjvp
def _cumprod_jvp(x, v):
    return np.cumprod(x) * np.cumsum(v / x)


@cumprod.defvjp
def _cumprod_vjp(x, w):
    c = np.cumprod(x)
    return np.cumsum((w * c)[::-1])[::-1] / x


@ad.primitive
def polar(r, theta):
    """Two scalars in, a 2-vector out."""
    return np.array([r * math.cos(theta), r * math.sin(theta)])


polar.defjvp(lambda x, v: np.array([v[0] * math.cos(x[1]) - x[0] * math.sin(x[1]) * v[1],
                                    v[0] * math.sin(x[1]) + x[0] * math.cos(x[1]) * v[1]]))
polar.defvjp(lambda x, w: (w[0] * math.cos(x[1]) + w[1] * math.sin(x[1]),
                           -w[0] * x[0] * math.sin(x[1]) + w[1] * x[0] * math.cos(x[1])))


def vector_program(x):
    """R^4 -> R^5: array primitives with vector output, a constant inside an array argument,
    outputs of the primitives used again."""
    s = softmax(np.array([x[0], 2.0 * x[1], x[2] * x[3], 0.5]))     # 0.5: a constant element
    c = cumprod(np.array([x[0], x[1], s[2] + 1.0]))
    u, v = polar(x[3], x[0] - x[2])
    return np.array([s[0] * c[2], c[1] + s[3], u * v, ad.sin(c[0]) * u, s[1]])


X4 = np.array([0.4, -0.3, 1.2, 0.8])


def test_vector_output_array_primitives():
    tape = ad.record(vector_program, X4)
    ops = tape.stats()["by_opcode"]
    assert ops["call"] == 3 and "out" not in ops               # 4, 3 and 2 outputs each
    for x in (X4, np.array([-1.0, 0.5, 0.25, 2.0])):
        Jf, Jr = tape.jacobian(x, mode="forward"), tape.jacobian(x, mode="reverse")
        assert Jf.shape == (5, 4)
        assert_allclose(Jf, Jr, rtol=1e-13, atol=1e-15)
        assert_allclose(Jf, ad.finite_diff(vector_program, x), rtol=1e-8, atol=1e-10)
        assert_allclose(tape(x), vector_program(x), rtol=1e-15)


def test_a_call_writes_its_outputs_as_consecutive_variables():
    """One CALL op writes all n outputs, variables z .. z+n-1, and the next op's result follows
    them; backward() from an output before the call's last replays the whole call."""
    from tapead.program import listing
    from tapead.sparsity import hessian_colouring
    with ad.Tape() as t:
        x = t.variables(np.array([0.4, -0.3, 1.2]))
        c = cumprod(x)                                     # 3 outputs
        s = c[1] * 2.0
        t.outputs(s)
    assert len(t) == 2 and t.stats()["by_opcode"] == {"call": 1, "mul": 1}
    assert [v.index for v in c] == [3, 4, 5] and s.index == 6
    assert t.stats()["values_nbytes"] == 8 * 7
    steps, _, _ = listing(t)
    assert [(st.op.name, st.index, st.results) for st in steps] == [("CALL", 3, 3), ("MUL", 6, 1)]
    assert steps[0].operands[1:] == (0, 1, 2) and steps[1].operands[0] == 4
    c[1].backward()                                        # c[1] = x0 x1
    assert_allclose([v.grad for v in x], [-0.3, 0.4, 0.0], rtol=1e-15)
    assert_allclose(t.gradient(), [-0.6, 0.8, 0.0], rtol=1e-15)
    # the Hessian's pattern: c[1] (a further result of the call) depends on x0 and x1
    with ad.Tape() as t:
        x = t.variables(np.array([0.4, -0.3, 1.2]))
        t.outputs(cumprod(x[:2])[1] * x[2])
    _, _, rows, cols = hessian_colouring(t._rec)
    assert sorted(zip(rows.tolist(), cols.tolist())) == \
        [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1)]


def test_array_primitive_closed_forms():
    x = np.array([0.5, -1.5, 2.0, 1.0])
    tape = ad.record(softmax, x)
    s = _softmax(x)
    want = np.diag(s) - np.outer(s, s)
    assert_allclose(tape.jacobian(x, mode="forward"), want, rtol=1e-14, atol=1e-16)
    assert_allclose(tape.jacobian(x, mode="reverse"), want, rtol=1e-14, atol=1e-16)
    tape = ad.record(cumprod, x)
    L = np.array([[np.prod(x[:i + 1]) / x[j] if j <= i else 0.0 for j in range(4)]
                  for i in range(4)])
    assert_allclose(tape.jacobian(x, mode="forward"), L, rtol=1e-14)
    assert_allclose(tape.jacobian(x, mode="reverse"), L, rtol=1e-14)


def test_scalar_output_from_array_input():
    lse = ad.primitive(lambda a: float(np.log(np.sum(np.exp(a)))),
                       jvp=lambda x, v: _softmax(x) @ v, vjp=lambda x, w: w * _softmax(x))
    x = np.array([0.1, 0.2, -0.7])
    tape = ad.record(lambda a: lse(a) * a[0], x)
    g = tape.gradient(x)
    want = _softmax(x) * x[0]
    want[0] += math.log(np.sum(np.exp(x)))
    assert_allclose(g, want, rtol=1e-14)
    assert_allclose(tape.jacobian(x, mode="forward"), want, rtol=1e-14)


def test_mixed_with_constants():
    def f(x):
        return jv(0.5, x) * jv(2.0, 3.0 * x) + gammaln(x + 1.0) - x * jv(1.0, 2.0)
    tape = ad.record(f, 1.7)
    x = 2.3
    want = (_jv_dx(0.5, x) * sp.jv(2.0, 3 * x) + sp.jv(0.5, x) * 3 * _jv_dx(2.0, 3 * x)
            + sp.digamma(x + 1) - sp.jv(1.0, 2.0))
    assert_allclose(tape.gradient(x), want, rtol=1e-13)
    assert_allclose(tape.jacobian(x, mode="forward"), want, rtol=1e-13)
    # jv(1.0, 2.0) was a plain call: three recorded CALLs, not four
    assert tape.stats()["by_opcode"]["call"] == 3


def test_plain_number_calls_just_evaluate():
    assert gammaln(3.5) == sp.gammaln(3.5)
    assert jv(1.5, 2.0) == sp.jv(1.5, 2.0)
    assert_array_equal(cumprod(np.array([1.0, 2.0, 3.0])), [1.0, 2.0, 6.0])
    assert_array_equal(polar(2.0, 0.0), [2.0, 0.0])
    # inside a recording, with plain numbers: nothing is recorded
    with ad.Tape() as t:
        x = t.variables(1.0)
        c = gammaln(4.0)
        t.outputs(x * c)
    assert "call" not in t.stats()["by_opcode"] and c == sp.gammaln(4.0)
    assert gammaln.__name__ == "gammaln" and "gammaln" in repr(gammaln)


def test_backward_through_a_primitive():
    with ad.Tape() as t:
        x, y = t.variables([0.7, 1.9])
        u, v = polar(x, y)
        z = gammaln(x * y) * u + v
    z.backward()
    want_x = sp.digamma(x.value * y.value) * y.value * u.value + \
        sp.gammaln(1.33) * math.cos(1.9) + math.sin(1.9)
    want_y = sp.digamma(1.33) * 0.7 * u.value - sp.gammaln(1.33) * 0.7 * math.sin(1.9) + \
        0.7 * math.cos(1.9)
    assert_allclose([x.grad, y.grad], [want_x, want_y], rtol=1e-14)


def test_primitive_in_a_re_recording_function():
    def f(x):
        if x > 1.0:
            return gammaln(x) * x
        return erfcx(x) - x
    tape = ad.record(f, 2.0)
    assert tape.gradient(0.5) == _erfcx_d(0.5) - 1.0
    assert tape.stats()["rerecords"] == 1
    assert_allclose(tape.gradient(3.0), sp.digamma(3.0) * 3.0 + sp.gammaln(3.0), rtol=1e-15)
    assert tape.stats()["rerecords"] == 2


def test_primitive_inside_where_unselected_side():
    """The unselected side's adjoint/tangent is zero: the result stays finite whatever the
    primitive's rule gives there."""
    plog = ad.primitive(lambda t: np.log(t) if t > 0 else np.nan,
                        jvp=lambda x, v: np.float64(v[0]) / np.float64(x[0]) if x[0] else np.inf,
                        vjp=lambda x, w: (np.inf if x[0] == 0 else w / x[0],))
    tape = ad.record(lambda x: ad.where(x > 0, plog(x), -x), 1.0)
    for x, d in [(2.0, 0.5), (0.0, -1.0), (-3.0, -1.0)]:
        assert tape.gradient(x) == d
        assert tape.jvp(x, 1.0)[1] == d
    assert tape.stats()["rerecords"] == 0


def test_a_primitive_implemented_by_another_tape():
    """The C sweep calls back into Python, which sweeps another tape (re-entrant scratch); the
    inner tape may re-record, or raise BranchChanged through the outer sweep."""
    inner = ad.record(lambda z: [ad.sin(z[0]) * z[1], ad.exp(z[0] - z[1])], np.array([0.1, 0.2]))
    block = ad.primitive(lambda a: np.asarray(inner(a)), jvp=lambda x, v: inner.jvp(x, v)[1],
                         vjp=lambda x, w: inner.vjp(x, w)[1])

    def outer(x):
        u = block(np.array([x[0] * 2.0, x[1]]))
        return u[0] * u[1] + x[0]

    def outer_plain(z):
        return math.sin(2 * z[0]) * z[1] * math.exp(2 * z[0] - z[1]) + z[0]
    tape = ad.record(outer, np.array([0.3, 0.4]))
    x = np.array([0.5, -0.2])
    want = ad.finite_diff(outer_plain, x)
    assert_allclose(tape.jacobian(x, mode="forward"), want, rtol=1e-9)
    assert_allclose(tape.jacobian(x, mode="reverse"), want, rtol=1e-9)

    def branchy(z):
        return z * z if z > 0 else -z
    inner2 = ad.record(branchy, 1.0)
    q = ad.primitive(lambda a: inner2(a), jvp=lambda x, v: inner2.jvp(x[0], v[0])[1],
                     vjp=lambda x, w: (inner2.gradient(x[0]) * w,))
    tape = ad.record(lambda x: q(x) * 3.0, 2.0)
    assert tape.gradient(-1.0) == -3.0 and tape.jvp(-1.0, 1.0) == (3.0, -3.0)
    assert tape.gradient(2.0) == 12.0
    assert inner2.stats()["rerecords"] == 2

    with ad.Tape() as it:
        z = it.variables(1.0)
        it.outputs(branchy(z))
    r = ad.primitive(lambda a: it(a), vjp=lambda x, w: (it.gradient(x[0]) * w,))
    tape = ad.record(lambda x: r(x) * 3.0, 2.0)
    with pytest.raises(ad.BranchChanged, match="was True at recording"):
        tape.gradient(-1.0)
    assert tape.gradient(2.0) == 12.0


# ---- threads -----------------------------------------------------------------------------------
def test_eight_threads_replay_a_tape_with_primitives():
    n_threads, rounds = 8, 20
    rng = np.random.default_rng(5)
    tape = ad.record(vector_program, X4)
    scalar = ad.record(lambda z: special_program(z)[0], X0)
    points = [X4 + rng.uniform(-0.3, 0.3, 4) for _ in range(n_threads)]
    spoints = [X0 + rng.uniform(-0.2, 0.2, 3) for _ in range(n_threads)]
    want = [(tape.jacobian(p, mode="forward"), tape.jacobian(p, mode="reverse"), tape(p),
             scalar.gradient(q)) for p, q in zip(points, spoints)]

    def worker(k):
        for r in range(rounds):
            i = (k + r) % n_threads
            got = (tape.jacobian(points[i], mode="forward"),
                   tape.jacobian(points[i], mode="reverse"), tape(points[i]),
                   scalar.gradient(spoints[i]))
            for a, b in zip(got, want[i]):
                assert_array_equal(a, b, err_msg=f"thread {k} round {r}")

    run_in_threads(worker, n_threads)


def test_threads_each_get_their_own_rule_exception():
    class RuleError(Exception):
        pass

    def vjp(x, w):
        if x[0] < 0:
            raise RuleError(f"negative {x[0]!r}")
        return (2.0 * x[0] * w,)
    sq = ad.primitive(lambda t: t * t, vjp=vjp)
    tape = ad.record(lambda t: sq(t) + t, 1.0)
    n_threads, rounds = 8, 25

    def worker(k):
        for r in range(rounds):
            x = float(k + 1 + r) * (-1.0 if (k + r) % 2 else 1.0)
            if x < 0:
                with pytest.raises(RuleError, match=f"^negative {x!r}$"):
                    tape.gradient(x)
            else:
                assert tape.gradient(x) == 2.0 * x + 1.0

    run_in_threads(worker, n_threads)


# ---- exceptions raised from rules --------------------------------------------------------------
class RuleFailed(Exception):
    pass


def _raising(kind):
    def rule(x, d):
        raise kind(f"rule refused at x = {x[0]!r}")
    return rule


class NotAnException(BaseException):
    pass


@pytest.mark.parametrize("kind", [RuleFailed, ValueError, ZeroDivisionError, KeyError,
                                  NotAnException])
def test_exception_from_a_rule_propagates_and_tape_stays_usable(kind):
    p = ad.primitive(np.sin, jvp=_raising(kind), vjp=_raising(kind))
    tape = ad.record(lambda x: p(x[0]) * x[1] + ad.exp(x[1]), np.array([0.5, 2.0]))
    x = np.array([1.25, 3.0])
    calls = {
        "gradient": lambda: tape.gradient(x),
        "vjp": lambda: tape.vjp(x, 1.0),
        "vjp-k": lambda: tape.vjp(x, np.ones((3,))),
        "jvp": lambda: tape.jvp(x, np.ones(2)),
        "jvp-k": lambda: tape.jvp(x, np.eye(2)),
        "jacobian-fwd": lambda: tape.jacobian(x, mode="forward"),
        "jacobian-rev": lambda: tape.jacobian(x, mode="reverse"),
    }
    for name, call in calls.items():
        with pytest.raises(kind) as e:
            call()
        assert type(e.value) is kind, name
        msg = str(e.value) if kind is not KeyError else e.value.args[0]
        assert msg == "rule refused at x = 1.25", name
        # still usable: the primal sweep, and again the same error
        assert tape(x) == math.sin(1.25) * 3.0 + math.exp(3.0)
    assert tape.stats()["rerecords"] == 0


def test_the_raised_exception_object_itself_comes_out():
    err = RuleFailed("this very object")

    def vjp(x, w):
        raise err
    p = ad.primitive(np.exp, vjp=vjp)
    tape = ad.record(lambda x: p(x) * 2.0, 1.0)
    with pytest.raises(RuleFailed) as e:
        tape.gradient(0.5)
    assert e.value is err
    assert any(fr.name == "vjp" for fr in e.traceback)          # the rule's frame is kept


def test_exception_from_the_function_at_replay():
    def lg(t):
        if t <= 0:
            raise ArithmeticError(f"log of {t!r}")
        return math.log(t)
    p = ad.primitive(lg, jvp=lambda x, v: v[0] / x[0], vjp=lambda x, w: (w / x[0],))
    tape = ad.record(lambda x: p(x) * 2.0 + x, 1.0)
    for call in (lambda: tape.forward(-1.0), lambda: tape.gradient(-1.0),
                 lambda: tape.jvp(-1.0, 1.0), lambda: tape.jacobian(-2.0, mode="reverse")):
        with pytest.raises(ArithmeticError, match=r"^log of -(1|2)\.0$"):
            call()
    assert tape.gradient(4.0) == 1.5 and tape.forward(math.e) == 2.0 + math.e
    assert tape.jvp(4.0, 2.0) == (2.0 * math.log(4.0) + 4.0, 3.0)


def test_a_rule_returning_the_wrong_size_is_an_error():
    p = ad.primitive(lambda t: t * 3.0, jvp=lambda x, v: np.array([v[0], v[0]]),
                     vjp=lambda x, w: (3.0 * w, 1.0))
    tape = ad.record(lambda x: p(x) + x, 1.0)
    with pytest.raises(ValueError, match="jvp"):
        tape.jvp(1.0, 1.0)
    with pytest.raises(ValueError, match="vjp"):
        tape.gradient(1.0)
    assert tape(2.0) == 8.0
    # a function that changes its number of outputs between recording and replay
    q = ad.primitive(lambda a: np.ones(int(a[0])) * a[1], vjp=lambda x, w: np.zeros(2))
    tape = ad.record(lambda a: ad.sum(q(a)), np.array([3.0, 1.0]))
    with pytest.raises(ValueError, match="returned"):
        tape(np.array([4.0, 1.0]))
    assert tape(np.array([3.0, 2.0])) == 6.0


# ---- missing rules -------------------------------------------------------------------------------
def test_missing_rule_is_a_type_error_naming_the_mode():
    only_jvp = ad.primitive(np.sin, jvp=lambda x, v: math.cos(x[0]) * v[0])
    only_vjp = ad.primitive(np.cos, vjp=lambda x, w: (-math.sin(x[0]) * w,))
    tf = ad.record(lambda x: only_jvp(x) * x, 0.5)
    tr = ad.record(lambda x: only_vjp(x) * x, 0.5)
    for call in (lambda: tf.gradient(1.0), lambda: tf.vjp(1.0, 1.0),
                 lambda: tf.jacobian(1.0, mode="reverse")):
        with pytest.raises(TypeError, match=r"sin has no vjp rule"):
            call()
    for call in (lambda: tr.jvp(1.0, 1.0), lambda: tr.jacobian(1.0, mode="forward")):
        with pytest.raises(TypeError, match=r"cos has no jvp rule"):
            call()
    # each tape still answers in the mode its rule covers
    assert tf.jvp(1.0, 1.0)[1] == math.cos(1.0) + math.sin(1.0)
    assert tf.jacobian(1.0, mode="forward") == math.cos(1.0) + math.sin(1.0)
    assert tr.gradient(1.0) == -math.sin(1.0) + math.cos(1.0)
    # no rule at all: the primal still replays
    bare = ad.primitive(np.tanh)
    tb = ad.record(lambda x: bare(x) * 2.0, 0.5)
    assert tb(1.0) == 2.0 * np.tanh(1.0)
    with pytest.raises(TypeError, match="vjp"):
        tb.gradient(1.0)
    with pytest.raises(TypeError, match="jvp"):
        tb.jvp(1.0, 1.0)


@pytest.mark.parametrize("call", [
    lambda t: t.hessian(X0), lambda t: t.hvp(X0, np.ones(3)),
    lambda t: t.taylor(X0, np.ones(3), order=2),
], ids=["hessian", "hvp", "taylor"])
def test_no_second_order_or_taylor_through_primitives(call):
    tape = ad.record(lambda z: special_program(z)[0], X0)
    with pytest.raises(TypeError, match="primitive"):
        call(tape)
    assert_allclose(tape.gradient(X0), special_jacobian(X0)[0], rtol=1e-13)   # still usable
    with pytest.raises(TypeError, match="primitive"):
        ad.hessian(lambda z: special_program(z)[0])(X0)


# ---- check_grads catches a wrong rule ----------------------------------------------------------
def test_check_grads_catches_a_deliberately_wrong_rule():
    wrong_jvp = ad.primitive(sp.gammaln, jvp=lambda x, v: sp.digamma(x[0]) * v[0] * 1.001,
                             vjp=_gammaln_vjp)
    wrong_vjp = ad.primitive(sp.gammaln, jvp=_gammaln_jvp,
                             vjp=lambda x, w: (sp.digamma(x[0] + 1e-3) * w,))
    right = ad.primitive(sp.gammaln, jvp=_gammaln_jvp, vjp=_gammaln_vjp)

    def program(p):
        return lambda z: p(z[0] * z[1]) + ad.sin(z[1])
    z = np.array([1.5, 2.0])
    ad.check_grads(program(right), (z,))
    ad.check_grads(program(wrong_jvp), (z,), modes=("rev",))
    ad.check_grads(program(wrong_vjp), (z,), modes=("fwd",))
    with pytest.raises(AssertionError):
        ad.check_grads(program(wrong_jvp), (z,), modes=("fwd",))
    with pytest.raises(AssertionError):
        ad.check_grads(program(wrong_vjp), (z,), modes=("rev",))
    with pytest.raises(AssertionError):
        ad.check_grads(program(wrong_vjp), (z,))


# ---- misuse ------------------------------------------------------------------------------------
def test_bad_arguments():
    with pytest.raises(ValueError, match="1-d"):
        gammaln(np.ones((2, 2)))
    with ad.Tape() as t:
        x = t.variables(1.0)
        with pytest.raises(TypeError):
            jv("1.5", x)
        t.outputs(x)
    with ad.Tape() as t2:
        y = t2.variables(1.0)
        with pytest.raises(ad.TapeError):
            jv(x, y)                              # Vars of two tapes
        t2.outputs(y)
