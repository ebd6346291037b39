"""Mistaken and hostile use found in review: each is a clear exception, never a crash, a wrong
answer or a silently unguarded tape."""
import threading

import numpy as np
import pytest

import tapead as ad
import tapead._fast as fast


def test_var_cannot_be_made_by_hand():
    with pytest.raises(TypeError, match="made by a tape"):
        ad.Var()


def test_fast_paths_take_only_recordings():
    for bad in (0, 12345, None, object()):
        with pytest.raises(TypeError):
            fast.grad(bad, False, [1.0], np.empty(1))
        with pytest.raises(TypeError):
            fast.new(bad, 0)
    t = ad.record(lambda x: x * 2.0, 1.0)
    with pytest.raises(ValueError):
        fast.new(t._rec, 5)                      # no such variable
    with pytest.raises(ValueError):
        fast.vars(t._rec, 0, 10)


@pytest.mark.parametrize("bad", [[2.0], np.array([3.0]), (2.0,)])
def test_scalar_input_tape_takes_only_a_number(bad):
    t = ad.record(lambda x: x * x if x > 0 else -x, 1.0)
    for replay in (t.gradient, t.forward):
        with pytest.raises(ValueError, match=r"shape \(\)"):
            replay(bad)


def test_vector_input_tape_takes_no_bare_number():
    t = ad.record(lambda x: x[0] * 2.0, np.array([1.0]))
    with pytest.raises(ValueError):
        t.gradient(3.0)
    assert t.gradient([3.0])[0] == 2.0


def test_a_tape_records_only_in_its_with_block():
    t = ad.Tape()
    with pytest.raises(ad.TapeError, match="with"):
        t.variables(1.0)
    with t:
        x = t.variables(1.0)
        t.outputs(x * 2.0)
    assert t.gradient(1.0) == 2.0


def test_a_primitive_rule_cannot_record_on_the_tape_it_is_swept_from():
    holder = {}

    def rule(x, w):
        holder["z"] + 1.0                        # records on the open tape being swept
        return (2.0 * w,)
    p = ad.primitive(lambda a: 2.0 * a, jvp=lambda x, v: 2.0 * v[0], vjp=rule)
    with ad.Tape() as t:
        x = t.variables(1.0)
        holder["z"] = x
        y = p(x) * 3.0
        with pytest.raises(ad.TapeError, match="being swept"):
            y.backward()
        z = y + 1.0                              # the tape is still fine for recording
        t.outputs(z)
    assert t(2.0) == 13.0
    with pytest.raises(ad.TapeError, match="closed"):   # the rule records on a closed tape
        t.gradient(2.0)


def test_reading_an_open_tape_from_another_thread_is_refused():
    with ad.Tape() as t:
        x = t.variables(2.0)
        seen = []

        def other():
            try:
                seen.append(x.value)
            except ad.TapeError as e:
                seen.append(e)
        th = threading.Thread(target=other)
        th.start()
        th.join()
        assert isinstance(seen[0], ad.TapeError)
        t.outputs(x * 2.0)
    th = threading.Thread(target=lambda: seen.append(x.value))      # closed: fine
    th.start()
    th.join()
    assert seen[-1] == 2.0


def test_where_with_a_var_of_another_tape_refuses_and_records_nothing():
    with ad.Tape() as ta:
        a = ta.variables(1.0)
        ta.outputs(a)
    with ad.Tape() as tb:
        b = tb.variables(2.0)
        with pytest.raises(ad.TapeError, match="different tapes"):
            ad.where(b > 0, a, b)
        n = len(tb)
        with pytest.raises(ad.TapeError, match="different tapes"):
            ad.where(np.array([b > 0, b > 1], dtype=object), a, b)
        assert len(tb) == n + 2                      # the two comparisons, no WHERE
        tb.outputs(b * 1.0)
    assert tb.stats()["guards"] == 0 and "where" not in tb.stats()["by_opcode"]


def test_primitive_rules_are_not_called_for_zero_directions():
    calls = []

    def jvp(x, v):
        calls.append(v)
        return 3.0 * v[0]
    p = ad.primitive(lambda a: 3.0 * a, jvp=jvp, vjp=lambda x, w: (3.0 * w,))
    t = ad.record(lambda x: p(x[0]) + x[1] + x[2], np.ones(3))
    J = t.jacobian(np.ones(3), mode="forward")   # 3 directions, swept padded to 4
    np.testing.assert_array_equal(J, [3.0, 1.0, 1.0])
    assert len(calls) == 1                       # only e_0 reaches the primitive


def test_functional_jvp_and_vjp_check_shapes_as_jax():
    with pytest.raises(ValueError, match="shape"):
        ad.jvp(lambda x: x * x, (1.0,), (np.ones(2),))
    with pytest.raises(ValueError, match="shape"):
        ad.hvp(lambda x: x * x, (1.0,), (np.ones(2),))
    y, pullback = ad.vjp(lambda x: x * x, 3.0)
    with pytest.raises(ValueError, match="shape"):
        pullback(np.ones(3))
    assert pullback(1.0) == (6.0,)


def test_jacobian_of_many_inputs_needs_no_identity_matrix():
    m = 20000
    t = ad.record(lambda x: ad.sum([x[0] * x[-1], x[1]]), np.ones(m))
    J = t.jacobian(np.ones(m), mode="forward")   # an m x m identity would be 3.2 GB
    assert J.shape == (m,) and J[0] == 1.0 and J[1] == 1.0 and J[-1] == 1.0 and J[2] == 0.0
