"""The flat input of a replay: pieces of x joined into a per-thread scratch vector, reused across
calls (tapead/recording.py x_flat), must never leak between calls, tapes, threads or a nested
replay (a primitive's rule replaying another tape), nor write into the caller's arrays."""
import threading

import numpy as np
import pytest

import tapead as ad


def _f(a, b):
    return np.sum(a @ b) + np.sum(np.sin(a))


def _g(u, v, s):
    return np.sum(u * v) * s


@pytest.fixture
def tapes():
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    u, v = rng.normal(size=5), rng.normal(size=5)
    return ad.record(_f, A, B), (A, B), ad.record(_g, u, v, 2.0), (u, v, 2.0)


def _grad_f(A, B):
    return np.ones((3, 2)) @ B.T + np.cos(A), A.T @ np.ones((3, 2))


def test_alternating_tapes_of_other_sizes(tapes):
    tf, (A, B), tg, (u, v, s) = tapes
    for i in range(4):
        A1, u1 = A + i, u - i
        ga, gb = tf.gradient((A1, B))
        np.testing.assert_allclose(ga, _grad_f(A1, B)[0], rtol=1e-13)
        np.testing.assert_allclose(gb, _grad_f(A1, B)[1], rtol=1e-13)
        gu, gv, gs = tg.gradient((u1, v, s))
        np.testing.assert_allclose(gu, v * s, rtol=1e-13)
        assert gs == pytest.approx(np.sum(u1 * v), rel=1e-13)
        assert tg((u1, v, s)) == pytest.approx(np.sum(u1 * v) * s, rel=1e-13)
        y, (wa, wb) = tf.vjp((A1, B), 2.0)
        np.testing.assert_allclose(wa, 2 * _grad_f(A1, B)[0], rtol=1e-13)
        _, ydot = tg.jvp((u1, v, s), (v, u1, 0.0))
        assert ydot == pytest.approx(s * np.sum(v * v + u1 * u1), rel=1e-13)


def test_inputs_are_never_written(tapes):
    tf, (A, B), tg, (u, v, s) = tapes
    A0, B0, u0 = A.copy(), B.copy(), u.copy()
    one = ad.record(lambda x: np.sum(x ** 2), A)
    for _ in range(3):
        tf.gradient((A, B)); one.gradient(A); one.hvp(A, B0[:3, :1] * np.ones((3, 4)))
        tf.hvp((A, B), (A, B)); tg.forward((u, v, s))
    np.testing.assert_array_equal(A, A0)
    np.testing.assert_array_equal(B, B0)
    np.testing.assert_array_equal(u, u0)


def test_nested_replay_in_a_primitive(tapes):
    tf, (A, B), tg, (u, v, s) = tapes

    def inner(x):                          # replays tg (its pieces joined) inside tf's sweep
        return tg.forward((u * x, v, s))

    def inner_jvp(x, dx):
        return tg.jvp((u * x[0], v, s), (u * dx[0], 0 * v, 0.0))[1]

    p = ad.primitive(inner, jvp=inner_jvp,
                     vjp=lambda x, w: (w * tg.gradient((u * x[0], v, s))[0] @ u,))
    t = ad.record(lambda a, b: np.sum(a @ b) * p(a[0, 0]), A, B)
    for i in range(3):
        A1 = A + i
        c = np.sum(u * A1[0, 0] * v) * s
        assert t((A1, B)) == pytest.approx(np.sum(A1 @ B) * c, rel=1e-12)
        ga, gb = t.gradient((A1, B))
        want = (np.ones((3, 2)) @ B.T) * c
        want[0, 0] += np.sum(A1 @ B) * np.sum(u * v) * s
        np.testing.assert_allclose(ga, want, rtol=1e-12)
        np.testing.assert_allclose(gb, (A1.T @ np.ones((3, 2))) * c, rtol=1e-12)


def test_threads_replaying_one_tape(tapes):
    tf, (A, B), _, _ = tapes
    errors = []

    def work(k):
        try:
            for i in range(200):
                A1 = A + (k * 1000 + i) * 1e-3
                ga, gb = tf.gradient((A1, B))
                np.testing.assert_allclose(ga, _grad_f(A1, B)[0], rtol=1e-13)
        except Exception as e:             # noqa: BLE001 - reported below
            errors.append(e)
    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[0]
