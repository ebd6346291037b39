"""Hostile inputs for today's C recording paths of csrc/fast_array.h (tapead._fast.strided,
matmul, rec_block, reduce): a shape whose size overflows int64 must not pass for an empty one,
and an index outside int32 must not wrap onto another variable."""
import numpy as np
import pytest

import tapead as ad
from tapead import _fast


def _on_recording(body):
    """Runs body(rec, x) inside a recording of a 3-vector; returns what it returned."""
    out = []

    def f(x):
        out.append(body(x._rec, x))
        return x.sum()

    ad.record(f, np.arange(3.0))
    return out[0]


@pytest.mark.parametrize("shape", [(2 ** 32, 2 ** 32), (2 ** 16,) * 4, (3, 2 ** 62, 4)])
def test_strided_shape_whose_size_overflows_is_refused(shape):
    # the size wrapped to 0 (2**64) or a small number, and strided gave an "empty" Array of
    # that shape on variable 0 with no error
    def body(rec, x):
        with pytest.raises(ValueError):
            _fast.strided(rec, 0, shape, (0,) * len(shape))
        return True

    assert _on_recording(body)


def test_overflowing_shape_with_an_empty_axis_is_still_empty():
    def body(rec, x):
        a = _fast.strided(rec, 0, (0, 2 ** 40, 2 ** 40), (0, 0, 0))
        return a.shape

    assert _on_recording(body) == (0, 2 ** 40, 2 ** 40)


@pytest.mark.parametrize("call", [
    lambda rec, x: _fast.matmul(rec, 2 ** 32, (3,), 2 ** 32, (3,)),
    lambda rec, x: _fast.strided(rec, 2 ** 32, (3,), (1,)),
    lambda rec, x: _fast.rec_block(rec, 2 ** 32, 0, (3,), [], False),
    lambda rec, x: _fast.rec_block(rec, 6, 0, (3,), [(2 ** 32, 0), (2 ** 32, 0)], False),
    lambda rec, x: _fast.reduce(2 ** 32 + 6, x, None, False),
])
def test_indices_beyond_int32_do_not_wrap(call):
    # (int32_t)PyLong_AsLong(2**32) is 0: matmul(rec, 2**32, ...) recorded x @ x
    def body(rec, x):
        with pytest.raises(OverflowError):
            call(rec, x)
        return True

    assert _on_recording(body)


@pytest.mark.parametrize("axis", [True, False, (True,), (0, False)])
def test_reduction_refuses_a_bool_axis_as_numpy(axis):
    # NumPy raises TypeError for a bool axis; the reductions summed over axis 1 (True) or 0
    with pytest.raises(TypeError):
        np.ones((2, 3)).sum(axis=axis)

    def f(x):
        a = x.reshape(2, 3)
        for op in ("sum", "max", "min", "prod", "mean"):
            with pytest.raises(TypeError):
                getattr(a, op)(axis=axis)
        return x.sum()

    ad.record(f, np.arange(6.0))
