"""Constants kept in a thread's value buffer across sweeps (csrc/work.c, work_values): sweeps
of different tapes interleaved, tapes freed and new ones made, and other uses of the buffer in
between give the same values as fresh tapes."""
import gc

import numpy as np

import tapead as ad


def _f(c):
    return lambda x: np.sum((x * c + c[::-1]) ** 2)


def _expect(c, x):
    return 2 * (x * c + c[::-1]) * c


def test_interleaved_tapes_and_fresh_ones():
    rng = np.random.default_rng(5)
    cs = [rng.standard_normal(7) for _ in range(3)]
    x = rng.standard_normal(7)
    tapes = [ad.record(_f(c), x) for c in cs]
    for _ in range(3):
        for c, t in zip(cs, tapes):
            np.testing.assert_array_equal(t.gradient(x), ad.record(_f(c), x).gradient(x))
            np.testing.assert_allclose(t.gradient(x), _expect(c, x), rtol=1e-13)
            t.hvp(x, np.ones(7))          # other sweeps in between
            t.jacobian(x)
    for _ in range(20):                   # freed tapes, new ones perhaps at the same address
        c = rng.standard_normal(7)
        t = ad.record(_f(c), x)
        np.testing.assert_allclose(t.gradient(x), _expect(c, x), rtol=1e-13)
        np.testing.assert_allclose(t.gradient(x), _expect(c, x), rtol=1e-13)
        del t
        gc.collect()
