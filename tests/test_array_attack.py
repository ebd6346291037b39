"""Attacks on ad.Array: hostile calls into the C core, operands and conditions used by Python."""
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import tapead as ad

X0 = np.array([1.0, -2.0, 3.0, 0.5])
X1 = np.array([1.0, 2.0, 3.0, 0.5])        # element 1 of x > 0 flips


def _run(code):
    """code in a fresh interpreter (a crash must not take the suite down): its stdout."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


# ---- the C core: counts that would overflow its sizes are refused before anything is read ----------
def test_const_block_count_overflow_is_refused():
    out = _run("""
        from tapead._core import ffi, lib
        t = lib.tp_new()
        assert lib.tp_claim(t) == 0
        first, buf = ffi.new("int32_t *"), ffi.new("double[]", 4)
        assert lib.tp_const_block(t, buf, 4, first) == 0
        print(lib.tp_const_block(t, buf, 2 ** 63 - 2, first) == lib.TP_ETOOBIG,
              lib.tp_const_block(t, buf, 2 ** 31 + 5, first) == lib.TP_ETOOBIG)
        lib.tp_free(t)
    """)
    assert out.split() == ["True", "True"]


def test_indices_count_overflow_is_refused():
    out = _run("""
        from tapead._core import ffi, lib
        t = lib.tp_new()
        assert lib.tp_claim(t) == 0
        idx = ffi.new("int64_t[]", [0, 0, 0, 0])
        assert lib.tp_indices(t, idx, 4) == 0
        print(lib.tp_indices(t, idx, 2 ** 63 - 1) == lib.TP_ETOOBIG)
        lib.tp_free(t)
    """)
    assert out.split() == ["True"]


# ---- operands: None is no number ---------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("other", [None, [None, 1.0, 2.0], np.array([1, None, 3], dtype=object)])
def test_none_operand_raises_not_nan(other):
    with ad.Tape() as t:
        x = t.variables(np.arange(3.0), array=True)
        with pytest.raises(TypeError, match="real numbers"):
            x + other
        with pytest.raises(TypeError, match="real numbers"):
            np.maximum(x, other)
        assert np.array_equal((x + np.array([1, x[0], 3], dtype=object)).value, [1.0, 1.0, 5.0])
        if other is None:                  # Python's answer, as for a Var
            assert (x == other) is False and (x != other) is True


# ---- comparisons used by Python: NumPy's bool-array methods, each a guard ---------------------------
@pytest.mark.parametrize("use", [lambda c: c.sum(), lambda c: int(c.sum()), lambda c: c.mean(),
                                 lambda c: c.T[1], lambda c: c.argmax(), lambda c: c.sum(axis=0)])
def test_condition_methods_guard(use):
    def f(x):
        return x[0] * float(use(x > 0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = ad.record(f, X0, arrays=True)
        assert t.forward(X1) == ad.record(f, X1, arrays=True).forward(X1)
        assert t.stats()["rerecords"] == 1
        with ad.Tape() as t2:
            x = t2.variables(X0, array=True)
            t2.outputs(f(x))
        with pytest.raises(ad.BranchChanged):
            t2.forward(X1)


# ---- comparisons combined with NumPy bool masks and Python bools: conditions, no guard ---------------
MASK = np.array([True, False, True, True])


@pytest.mark.parametrize("combine", [lambda c: c & MASK, lambda c: MASK & c, lambda c: MASK | c,
                                     lambda c: c | MASK, lambda c: MASK ^ c, lambda c: True & c,
                                     lambda c: c | False, lambda c: np.logical_and(MASK, c),
                                     lambda c: np.logical_or(c, MASK), lambda c: np.logical_xor(MASK, c)])
def test_condition_combined_with_mask(combine):
    def f(x):
        return np.sum(np.where(combine(x > 0), x ** 2, -x))

    def plain(x):
        return np.sum(np.where(combine(x > 0), x ** 2, -x))
    t = ad.record(f, X0, arrays=True)
    for x in (X0, X1):
        assert t.forward(x) == pytest.approx(plain(x))
        c = np.asarray(combine(x > 0), dtype=float)
        assert np.allclose(t.gradient(x), c * 2 * x - (1 - c))
    assert t.stats()["rerecords"] == 0 and t.stats()["guards"] == 0


# ---- a gather larger than a tape holds: refused before the work that would exhaust memory -----------
def test_gather_beyond_the_tape_is_refused_first(monkeypatch):
    from tapead import array_index

    def never(p):
        raise AssertionError("the selection was analysed before its size was checked")
    monkeypatch.setattr(array_index, "_MAX_VARS", 1000)
    monkeypatch.setattr(array_index, "_affine", never)
    with ad.Tape() as t:
        x = t.variables(np.arange(3.0), array=True)
        with pytest.raises(MemoryError, match="tape is full"):
            x[np.zeros(2000, dtype=np.int8)]
