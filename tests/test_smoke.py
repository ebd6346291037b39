"""The seed's example end to end: value and gradient by both modes against the closed form."""
import numpy as np

import tapead as ad

from helpers import seed_f, seed_grad


def test_seed_imperative_and_replay():
    with ad.Tape() as t:
        x1, x2 = t.variables([2.0, 1.0])
        y = seed_f(x1, x2)
        t.outputs(y)
    y.backward()
    np.testing.assert_allclose([x1.grad, x2.grad], seed_grad(2.0, 1.0), rtol=1e-13)
    for p in ([3.0, 0.5], [2.5, 1.1]):
        np.testing.assert_allclose(t.gradient(p), seed_grad(*p), rtol=1e-13)
        np.testing.assert_allclose(t.jacobian(p, mode="forward"), seed_grad(*p), rtol=1e-13)
        np.testing.assert_allclose(t.jacobian(p, mode="reverse"), seed_grad(*p), rtol=1e-13)
