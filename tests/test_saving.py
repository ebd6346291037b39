"""Saving and loading tapes (docs/API.md, "Saving and loading"): t.dumps()/ad.loads(),
t.save()/ad.load(), pickle and copy.

Oracles: the tape that was saved. Every replay mode of a loaded tape gives the same bits as the
original's, at the recording point and elsewhere; the values at recording, recomputed by the
loader, are the same bits too. Hostile files (tests/fuzz_tapes.py) load or are rejected with a
ValueError that says what is wrong; none crashes.
"""
import copy
import gc
import multiprocessing
import os
import pickle
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tapead as ad
from tapead._core import GroupOp, Op, lib
from tapead.saving import FunctionNotSaved

import fuzz_tapes
from fuzz_tapes import (C_FN, C_INDEX, C_INPUTS, C_IXW, C_OPS, C_SHAPEW, C_STREAM, fix, sections,
                        set_count)
from helpers import rosen_loop, run_in_threads, run_program, seed_f
from op_cases import CASES, SLOPES, case_ids

HERE = os.path.dirname(os.path.abspath(__file__))


# ---- comparing two tapes -------------------------------------------------------------------
def _flat(r):
    if isinstance(r, tuple):
        return np.concatenate([_flat(e) for e in r]) if r else np.empty(0)
    return np.ravel(np.asarray(r, dtype=np.float64))


def replays(t, x, v, w):
    """Every replay mode at x: the bits of its result, or the type of what it raised."""
    calls = {
        "forward": lambda: t.forward(x), "gradient": lambda: t.gradient(x),
        "jvp": lambda: t.jvp(x, v), "vjp": lambda: t.vjp(x, w),
        "jacfwd": lambda: t.jacobian(x, mode="forward"),
        "jacrev": lambda: t.jacobian(x, mode="reverse"), "hvp": lambda: t.hvp(x, v, w),
        "hessian": lambda: t.hessian(x, w), "taylor": lambda: t.taylor(x, v, 4),
    }
    out = {}
    for name, call in calls.items():
        try:
            out[name] = _flat(call()).tobytes()
        except Exception as e:                   # noqa: BLE001 - compared by type
            out[name] = type(e).__name__
    return out


def values(t):
    """The bits of every variable's value at recording."""
    p = t._p
    return np.array([lib.tp_value(p, i) for i in range(lib.tp_n_vars(p))]).tobytes()


def assert_same(t, u, points, v=None, w=None):
    """u replays as t at every point, bit for bit (results and exceptions)."""
    assert (len(u), u.n_inputs, u.n_outputs, u._out_shape) == \
        (len(t), t.n_inputs, t.n_outputs, t._out_shape)
    assert values(u) == values(t)
    for x in points:
        vv = x if v is None else v
        ww = (np.ones(t._out_shape) if t._out_shape else 1.0) if w is None else w
        assert replays(u, x, vv, ww) == replays(t, x, vv, ww), f"at {x}"


def imperative(f, *args):
    """f recorded with ad.Tape (no f kept: a flipped guard raises BranchChanged)."""
    with ad.Tape() as t:
        xs = [t.variables(a) for a in args]
        t.outputs(f(*xs))
    return t


# ---- round trips -----------------------------------------------------------------------------
OP_CASE_PARAMS = case_ids(CASES)


@pytest.mark.parametrize("op, k", OP_CASE_PARAMS)
def test_every_op_case_round_trips_bit_for_bit(op, k):
    case = CASES[op][k]
    n = len(case.points[0])
    pts = [tuple(p) if n > 1 else p[0] for p in case.points]    # one input piece per operand
    v = tuple(SLOPES[:n]) if n > 1 else SLOPES[0]
    for f in case.spellings:
        t = imperative(f, *case.points[0])
        u = ad.loads(t.dumps())
        assert u.stats()["by_opcode"] == t.stats()["by_opcode"]
        assert_same(t, u, pts, v=v)
        if op not in GroupOp.BLOCK:               # (traces do not show block ops yet)
            assert u.trace(pts[0]) == t.trace(pts[0])


UNARY = {"sin": ad.sin, "tanh": ad.tanh, "exp_tanh": lambda u: ad.exp(ad.tanh(u)),
         "log_sq1": lambda u: ad.log(ad.square(u) + 1.0), "neg": lambda u: -u,
         "cbrt": lambda u: ad.cbrt(u * u + 0.5), "abs": lambda u: abs(u) + 0.25}


def _random_program(r):
    m = int(r.integers(1, 5))
    names_u, names_b = sorted(UNARY), sorted(["add", "sub", "mul", "div", "pow", "hypot",
                                              "atan2", "sum", "dot"])
    body = []
    for _ in range(int(r.integers(1, 14))):
        kind = r.integers(3)
        if kind == 0:
            body.append(("u", names_u[r.integers(len(names_u))], int(r.integers(999))))
        elif kind == 1:
            body.append(("b", names_b[r.integers(len(names_b))], int(r.integers(999)),
                         int(r.integers(999))))
        else:
            body.append(("loop", names_b[r.integers(len(names_b))], int(r.integers(999)),
                         int(r.integers(999)), int(r.integers(2, 5))))
    outs = [int(o) for o in r.integers(0, 999, size=int(r.integers(1, 4)))]
    return m, body, outs


def test_random_programs_round_trip_bit_for_bit():
    r = np.random.default_rng(7)
    for _ in range(40):
        prog = _random_program(r)
        x0 = r.uniform(-1.5, 1.5, prog[0])
        t = imperative(lambda x: run_program(prog, x, UNARY), x0)
        u = ad.loads(t.dumps())
        pts = [x0, x0 + r.uniform(-0.3, 0.3, x0.size)]
        assert_same(t, u, pts, w=r.uniform(-1, 1, t.n_outputs))


def test_pieces_shapes_constant_outputs_and_no_outputs():
    with ad.Tape() as t:
        a, b = t.variables(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])), t.variables(0.5)
        t.outputs([[a[0, 0] * b, 7.0], [ad.sin(a[1, 2]) + a[0, 1], -0.0]])
    u = ad.loads(t.dumps())
    x = (np.arange(6.0).reshape(2, 3) + 0.5, -1.25)
    assert_same(t, u, [x, None], v=(np.ones((2, 3)), 2.0), w=np.ones((2, 2)))
    assert u._pieces == [(2, 3), ()] and u._out_shape == (2, 2)
    with ad.Tape() as t:
        x = t.variables([1.0, 2.0])
        x[0] * x[1]
    u = ad.loads(t.dumps())
    assert u._out_shape is None and len(u) == 1
    with pytest.raises(ad.TapeError, match="no outputs"):
        u.forward()


# ---- f of ad.record: by reference ------------------------------------------------------------
def piecewise(x, y):
    """Module level: pickle saves it by reference."""
    return x * y if x > y else ad.sin(x) - y


def test_a_loaded_tape_of_ad_record_re_records_at_flipped_guards():
    t = ad.record(piecewise, 2.0, 1.0)
    for u in (ad.loads(t.dumps()), pickle.loads(pickle.dumps(t)), copy.deepcopy(t)):
        assert u._fn is piecewise
        g = u.gradient([0.5, 1.0])                       # x < y now: f recorded again
        assert u.stats()["rerecords"] == 1
        assert np.array_equal(g, ad.record(piecewise, 0.5, 1.0).gradient([0.5, 1.0]))


def test_f_that_pickle_cannot_save_is_refused_naming_it():
    def local(x):
        return x * x if x > 0 else -x
    k = 3.0
    for f, name in ((lambda x: x * k if x > 0 else x, "<lambda>"), (local, "local")):
        t = ad.record(f, 2.0)
        for save in (t.dumps, lambda: pickle.dumps(t), lambda: t.save(os.devnull)):
            with pytest.raises(FunctionNotSaved, match=f"cannot save f = .*{name}") as e:
                save()
            assert isinstance(e.value, ValueError) and isinstance(e.value, pickle.PicklingError)
            assert "function=False" in str(e.value)
        u = ad.loads(t.dumps(function=False))           # the escape hatch: imperative
        assert u(5.0) == t(5.0)
        with pytest.raises(ad.BranchChanged, match=r"saved without its function"):
            u(-1.0)
        w = ad.loads(u.dumps())                          # and it stays so
        with pytest.raises(ad.BranchChanged, match=r"saved without its function"):
            w(-1.0)


def test_loading_without_f():
    t = ad.record(piecewise, 2.0, 1.0)
    u = ad.loads(t.dumps(), function=False)
    assert u._fn is None and u.gradient([3.0, 1.0]) == (1.0, 3.0)
    with pytest.raises(ad.BranchChanged, match=r"loaded without its function"):
        u.gradient([0.5, 1.0])


def test_f_that_cannot_be_restored_is_a_value_error():
    t = ad.record(piecewise, 2.0, 1.0)
    data = t.dumps().replace(b"piecewise", b"piecewisX")
    with pytest.raises(ValueError, match=r"tape file: .*checksum"):
        ad.loads(data)
    with pytest.raises(ValueError, match=r"tape file: its function f .* cannot be restored: "
                                         r"AttributeError.*function=False"):
        ad.loads(fix(data))
    assert ad.loads(fix(data), function=False).gradient([3.0, 1.0]) == (1.0, 3.0)
    lo, hi = sections(data)[C_FN]                     # a memo index the unpickler would grow to
    bomb = data[:lo] + b"\x80\x04K\x01r\xff\xff\xff\x7f." + data[hi:]
    bomb = fix(set_count(bomb, C_FN, 10))
    with pytest.raises(ValueError, match=r"cannot be restored: ValueError: LONG_BINPUT"):
        ad.loads(bomb)


# ---- guards and their sites --------------------------------------------------------------------
def test_branch_changed_still_names_the_line():
    def f(x):
        return x * x if x > 1.0 else x        # GUARD-LINE
    t = imperative(f, 2.0)
    u = ad.loads(t.dumps())
    line = [i for i, s in enumerate(open(__file__), 1) if "# GUARD-LINE" in s][0]
    msgs = []
    for tape in (t, u):
        with pytest.raises(ad.BranchChanged) as e:
            tape(0.5)
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1] and f"test_saving.py:{line}" in msgs[1]
    assert u._rec.guards == t._rec.guards and u._rec.sites == t._rec.sites


def test_value_read_while_recording_keeps_its_message():
    with pytest.warns(ad.ValueWarning):
        t = imperative(lambda x: x * x.value, -0.0)
    u = ad.loads(t.dumps())
    msgs = []
    for tape in (t, u):
        with pytest.raises(ad.BranchChanged, match=r"\.value .* was read while recording") as e:
            tape(0.0)                                  # +0.0: the sign guard flips
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1]


# ---- pickle, copy, files -----------------------------------------------------------------------
def test_pickle_copy_and_files(tmp_path):
    t = ad.record(seed_f, 2.0, 1.0)
    x = np.array([2.5, 0.7])
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        u = pickle.loads(pickle.dumps(t, protocol=proto))
        assert_same(t, u, [x])
    c = copy.copy(t)
    assert c._rec is t._rec                          # copy.copy: the same (immutable) recording
    d = copy.deepcopy(t)
    assert d._rec is not t._rec and d._p != t._p and d._fn is t._fn
    assert_same(t, d, [x])
    path = tmp_path / "seed.tape"
    t.save(path)
    assert path.read_bytes() == t.dumps()
    for u in (ad.load(path), ad.load(str(path)), ad.loads(bytearray(path.read_bytes())),
              ad.loads(memoryview(path.read_bytes()))):
        assert_same(t, u, [x])
    with pytest.raises(TypeError, match="bytes"):
        ad.loads("not bytes")


def test_only_closed_tapes_can_be_saved():
    with ad.Tape() as t:
        x = t.variables(1.0)
        t.outputs(x * 2)
        for save in (t.dumps, lambda: t.save(os.devnull), lambda: pickle.dumps(t),
                     lambda: copy.deepcopy(t)):
            with pytest.raises(ad.TapeError, match="only a closed tape can be saved"):
                save()
    assert ad.loads(t.dumps())(3.0) == 6.0


# ---- primitives by name ------------------------------------------------------------------------
def test_primitives_are_saved_by_name():
    t = ad.record(fuzz_tapes.with_primitives, np.array([0.3, -0.7, 1.1]))
    u = ad.loads(t.dumps())
    x = np.array([0.5, 0.25, -1.0])
    assert_same(t, u, [x, None], w=np.array([1.0, -2.0, 0.5]))


def test_a_primitive_not_defined_when_loading_is_named():
    p = ad.primitive(lambda x: 2.0 * x, jvp=lambda x, v: 2.0 * v[0], name="test_saving.gone")
    data = ad.record(lambda x: p(x) + 1.0, 1.0).dumps(function=False)
    del p
    gc.collect()
    with pytest.raises(ValueError, match=r"tape file: it calls the primitive "
                                         r"'test_saving\.gone', which is not defined"):
        ad.loads(data)
    p = ad.primitive(lambda x: 2.0 * x, jvp=lambda x, v: 2.0 * v[0], name="test_saving.gone")
    assert ad.loads(data).jvp(3.0, 1.0) == (7.0, 2.0)            # defined again: it loads


def test_two_primitives_of_one_name_are_refused_at_save_and_load():
    p = ad.primitive(lambda x: 2.0 * x, jvp=lambda x, v: 2.0 * v[0], name="test_saving.twice")
    t = ad.record(lambda x: p(x), 1.0)
    data = t.dumps(function=False)
    q = ad.primitive(lambda x: 3.0 * x, name="test_saving.twice")
    with pytest.raises(ValueError, match=r"cannot save this tape: 2 live primitives are named "
                                         r"'test_saving\.twice'"):
        t.dumps(function=False)
    with pytest.raises(ValueError, match=r"tape file: 2 live primitives are named"):
        ad.loads(data)
    q.name = "test_saving.other"                     # renamed: the name is unique again
    assert ad.loads(data)(4.0) == 8.0
    assert copy.deepcopy(t)(4.0) == 8.0              # deepcopy keeps its own primitives


def test_a_primitive_failing_at_load_is_a_value_error():
    state = {"fail": False}

    def fun(x):
        if state["fail"]:
            raise ArithmeticError("no")
        return x + 1.0
    p = ad.primitive(fun, jvp=lambda x, v: v[0], name="test_saving.flaky")
    data = ad.record(lambda x: p(x), 1.0).dumps(function=False)
    state["fail"] = True
    with pytest.raises(ValueError, match=r"tape file: computing the values at recording failed "
                                         r"in a primitive: ArithmeticError: no"):
        ad.loads(data)
    assert p is not None


def test_a_primitive_that_changed_is_a_value_error():
    shift = {"by": 1.0}
    p = ad.primitive(lambda x: x + shift["by"], jvp=lambda x, v: v[0], name="test_saving.moved")
    data = ad.record(lambda x: p(x) * 2.0, 1.0).dumps(function=False)
    assert ad.loads(data)(3.0) == 8.0
    shift["by"] = 2.0
    with pytest.raises(ValueError, match=r"tape file: a primitive gives variable 1 = 3 at the "
                                         r"recorded inputs, not 2 as when the tape was saved"):
        ad.loads(data)


# ---- threads and processes ---------------------------------------------------------------------
def test_a_loaded_tape_replays_in_threads():
    u = ad.loads(ad.record(fuzz_tapes.branchy, np.array([0.5, -1.0, 2.0]), 0.25).dumps())
    points = [(np.array([0.5, -1.0, 2.0]) + 0.01 * k, 0.25) for k in range(8)]
    want = [_flat(u.jacobian(p)).tobytes() for p in points]
    got = [None] * 8

    def body(k):
        for _ in range(20):
            got[k] = _flat(u.jacobian(points[k])).tobytes()
    run_in_threads(body, 8)
    assert got == want


def _child_gradient(tape, x):
    """In a spawned process: the gradient of a tape that came by pickle."""
    return np.array(tape.gradient(x)).tobytes(), tape.stats()["rerecords"]


def test_a_loaded_tape_replays_in_another_process(tmp_path):
    t = ad.record(piecewise, 2.0, 1.0)
    path = tmp_path / "piecewise.tape"
    t.save(path)
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {HERE!r})
        import numpy as np
        import tapead as ad
        u = ad.load({str(path)!r})
        g = [np.array(u.gradient(x)).tobytes().hex() for x in ([3.0, 1.0], [0.5, 1.0])]
        print(*g, u.stats()["rerecords"])
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    a, b, n = out.stdout.split()
    want = np.array(ad.record(piecewise, 0.5, 1.0).gradient([0.5, 1.0]))
    assert bytes.fromhex(a) == np.array(t.gradient([3.0, 1.0])).tobytes()
    assert bytes.fromhex(b) == want.tobytes() and n == "1"
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        g, n = pool.apply(_child_gradient, (ad.record(piecewise, 2.0, 1.0), [0.5, 1.0]))
    assert g == want.tobytes() and n == 1


# ---- the format --------------------------------------------------------------------------------
def test_the_header():
    data = ad.record(seed_f, 2.0, 1.0).dumps()
    magic, version, bom, sizes, reserved, payload, checksum = struct.unpack_from(
        "<8sII4sIQQ", data)
    assert magic == b"\x89TAPEAD\n" and version == 2 and bom == 0x01020304
    assert sizes == bytes([4, 8, 8, 0]) and reserved == 0 and payload == len(data) - 40
    assert checksum == fuzz_tapes.checksum(data[40:])
    assert fuzz_tapes.checksum(b"abc") == 0x44BC2CF5AD770999          # XXH64, seed 0


def test_the_saved_size_is_the_programs():
    x = np.linspace(-1.0, 1.0, 5000)
    t = ad.record(rosen_loop, x)
    n = len(t.dumps())
    assert n <= 1.01 * t.nbytes + 4096, (n, t.nbytes)


def _msg(data):
    with pytest.raises(ValueError) as e:
        ad.loads(data)
    assert str(e.value).startswith("tape file: ")
    return str(e.value)[len("tape file: "):]


def test_rejections_say_what_is_wrong():
    t = imperative(lambda x, y: ad.sin(x * y) + x, 2.0, 1.0)          # MUL, SIN, ADD
    data = t.dumps()
    assert "not a tapead tape" in _msg(b"PK\x03\x04" + data[4:])
    assert "truncated" in _msg(data[:20])
    assert "truncated" in _msg(data[:-1])
    assert "checksum mismatch" in _msg(data[:-1] + bytes([data[-1] ^ 1]))
    b = bytearray(data)
    b[8] = 3
    assert "format version 3; this tapead reads version 2 only" in _msg(bytes(b))
    b = bytearray(data)
    b[12:16] = bytes([1, 2, 3, 4])
    assert "other byte order" in _msg(bytes(b))
    lo, hi = sections(data)[C_STREAM]                 # MUL: x, y  SIN: z-1  ADD: z-1, x
    s = bytearray(data)
    s[lo + 2] = 2 * 1                                 # SIN's operand: zigzag(-1): variable 3
    assert _msg(fix(s)) == ("operand 1 of operation 1 refers to variable 3, not yet defined "
                            "(the operation writes variable 3)")
    s[lo + 2] = 4 * 5                                 # 6 before: variable -3
    assert "operand 1 of operation 1 refers to variable -3, which does not exist" in _msg(fix(s))
    s[lo + 2] = 2 * 7 + 1                             # constant 7 of 0
    assert "refers to constant 7; the pool has 0" in _msg(fix(s))
    assert "the sections end 2 bytes before the payload" in _msg(fix(set_count(data, C_STREAM, 3)))
    huge = fix(set_count(data, C_OPS, 2 ** 40))
    assert "operations need more bytes than the" in _msg(huge)
    tiny = fix(data[:40] + struct.pack("<18q", *([2 ** 62] * 18)))
    assert "need more bytes" in _msg(tiny)            # no allocation from a tiny file


def test_array_operations_are_checked_as_the_recorder_checks_them():
    t = ad.record(lambda x: np.sin(x) @ x, np.array([0.5, -1.0, 2.0]), arrays=True)
    data = t.dumps(function=False)
    lo, hi = sections(data)[C_STREAM]       # MAP: 5, r 3, shape, SIN, first, shape  MATMUL ...
    stream = bytes(data[lo:hi])
    assert stream[:2] == bytes([5, 3])
    for at, value, says in ((1, 4, "not a valid array operation"),          # r: 4, shape has 3
                            (1, 0, "no valid result count"),
                            (2, 99, "no valid result shape"),
                            (3, 2 * int(Op.ADD), "not a valid array operation"),  # arity 2
                            (3, 2 * int(Op.WHERE), "not a valid array operation"),
                            (0, 4, "an array operation has 3 and two per operand")):
        b = bytearray(data)
        b[lo + at] = value
        assert says in _msg(fix(b)), (at, value)
    sl, sh = sections(data)[C_SHAPEW]
    b = bytearray(data)
    struct.pack_into("<q", b, sl + 8, 7)     # the first shape's dim: 7 elements past the inputs
    assert "not a valid array operation" in _msg(fix(b))
    struct.pack_into("<q", b, sl, 40)        # its nd
    assert "shape 0 of the shape table is invalid" in _msg(fix(b))
    t = ad.record(lambda x: ad.sum(x[np.array([2, 0, 2])]), np.array([0.5, -1.0, 2.0]),
                  arrays=True)
    data = t.dumps(function=False)
    lo, hi = sections(data)[C_IXW]                      # GATHER's indices: 2, 0, 2
    assert struct.unpack_from("<3i", data, lo) == (2, 0, 2)
    for word, says in ((3, "not a valid array operation"), (-1, "is -1, not an index")):
        b = bytearray(data)
        struct.pack_into("<i", b, lo + 4, word)
        assert says in _msg(fix(b)), word
    b = bytearray(data)
    struct.pack_into("<q", b, sections(data)[C_INDEX][0], 4)
    assert "index table entry 0 has 4 words; 3 are left" in _msg(fix(b))


def test_an_array_tape_of_ad_record_re_records_with_arrays_after_loading():
    x, x2 = np.array([0.5, 2.0, 1.5]), np.array([0.4, -2.0, 1.5])   # the guard flips at x2
    t = ad.record(fuzz_tapes.array_guards, x, arrays=True)
    want = ad.record(fuzz_tapes.array_guards, x2, arrays=True)
    for u in (pickle.loads(pickle.dumps(t)), copy.deepcopy(t), t.optimize()):
        u.forward(x2)                                    # re-records f at x2
        ref = want.optimize() if u._optimize else want
        assert_same(ref, u, [x2])
        assert u.stats()["by_opcode"] == ref.stats()["by_opcode"]    # block ops again


def test_recorded_values_must_keep_the_guards():
    data = imperative(lambda x: x * 2.0 if x > 1.0 else x, 2.0).dumps()
    lo, _ = sections(data)[C_INPUTS]
    b = bytearray(data)
    struct.pack_into("<d", b, lo, 0.5)                # the recorded input: the guard fails there
    assert "does not keep its recorded outcome at the recorded inputs" in _msg(fix(b))


# ---- hostile files -----------------------------------------------------------------------------
def test_fuzzed_files_load_or_say_what_is_wrong():
    tally = fuzz_tapes.run(12000, seed=20261130)
    assert tally["cases"] == 12000
    assert tally["loaded"] > 1000 and tally["rejected"] > 5000, tally
