"""Hostile tape files: mutated and truncated saves of every kind of tape, through ad.loads and,
for those that load, through every sweep. Each case must end in a tape or in a ValueError whose
message says what is wrong ("tape file: ..."); a crash, or any other exception from loads, fails.

Half the mutations keep the header's length and checksum right (fix()), so that they reach the
structural checks behind the checksum: counts, the op table, the operand stream, outputs, guards,
sites, the JSON meta and f's pickle; the others are raw (bit flips, truncation, splices).

    python tests/fuzz_tapes.py [--cases N] [--seconds S] [--seed K]

runs N cases (default 10**6) or for S seconds, whichever ends first, and prints the tally;
tests/test_saving.py runs a short run, and tests/run_sanitizers.sh a long one when FUZZ_CASES is
set. The exit status is 1 if a case failed (its seed and mutation are printed).
"""
import argparse
import random
import struct
import sys
import time
import warnings

import numpy as np

import tapead as ad
from tapead._core import ffi, lib
from tapead.program import listing, sweep

HEADER, N_COUNTS = 40, 18
(C_INPUTS, C_OPS, C_WORDS, C_STREAM, C_CONSTS, C_OUTPUTS, C_GUARDS, C_SITES, C_PRIMS, C_OPTABLE,
 C_META, C_FN, C_CALLVALS, C_SHAPES, C_SHAPEW, C_BLOCKVARS, C_INDEX, C_IXW) = range(N_COUNTS)
ORDER = (C_OPTABLE, C_SHAPEW, C_INDEX, C_IXW, C_OPS, C_STREAM, C_CONSTS, C_OUTPUTS, C_INPUTS,
         C_CALLVALS, C_GUARDS, C_SITES, C_META, C_FN)   # the sections in file order (serial.c)
WIDTH = {C_OPTABLE: 16, C_SHAPEW: 8, C_INDEX: 8, C_IXW: 4, C_OPS: 1, C_STREAM: 1, C_CONSTS: 8,
         C_OUTPUTS: 4, C_INPUTS: 8, C_CALLVALS: 8, C_GUARDS: 4, C_SITES: 16, C_META: 1, C_FN: 1}


# ---- the corpus: functions at module level (f is saved by reference) --------------------------
def seed(x1, x2):
    return x1 * ad.sqrt(ad.log(x1 / ad.sin(x2 ** 2)))


def branchy(x, s):
    """Two pieces (a vector and a scalar), guards both ways, a where, a vector output."""
    out = []
    for i in range(len(x)):
        out.append(x[i] * s if x[i] > s else ad.exp(x[i]) - s)
    out.append(ad.where(x[0] < x[1], x[0] * x[1], ad.sum(list(x))))
    return np.array(out).reshape(2, -1) if len(out) % 2 == 0 else out


def frozen(x):
    """A .value read while recording: guards freeze the value."""
    return x * x if x.value > 0 else -x


def _norm2_fun(x):
    return np.array([x @ x, x.sum()])


norm2 = ad.primitive(_norm2_fun,
                     jvp=lambda x, v: np.array([2.0 * x @ v, v.sum()]),
                     vjp=lambda x, w: 2.0 * x * w[0] + w[1], name="fuzz_tapes.norm2")
xsin = ad.primitive(lambda x, y: x * np.sin(y),
                    jvp=lambda x, v: v[0] * np.sin(x[1]) + x[0] * np.cos(x[1]) * v[1],
                    vjp=lambda x, w: (w * np.sin(x[1]), w * x[0] * np.cos(x[1])),
                    name="fuzz_tapes.xsin")


def with_primitives(x):
    a, b = norm2(x)
    return [xsin(a, x[0]) + b, ad.dot(list(x), list(x)[::-1]), 2.5]   # scalar ops only


def arrays(x, s):
    """Array block ops: broadcasting MAPs with constant blocks, a REDUCE over an axis, MATMULs
    of a transpose (a strided PACK) and a matrix-vector product, a PACK of scattered Vars,
    GATHER, SCATTER and SCATTER_ADD (the index table)."""
    X = x.reshape(2, 3)
    h = np.maximum(X @ X.T + np.array([[0.5, -1.0], [2.0, 0.25]]), 0.1)
    s = s[()]                                  # a 0-d Array: its Var
    v = ad.asarray([s, x[4] * s, 1.5])
    z = np.tanh(X * v).sum(axis=1) + X @ v
    g = x[np.array([5, 0, 5, 2])]                       # GATHER
    u = g.at[np.array([1, 3, 1])].add(z[0] * x[:3])     # SCATTER_ADD (repeated positions)
    u[np.array([0, 2])] = h[0]                          # SCATTER
    return [ad.sum(h) * s, z[0] - z[1] * s, ad.sum(np.exp(x[::2])) + ad.sum(u * u)]


def array_guards(x):
    """A block guard (its outcomes a constant block), a where's unchecked comparison, max."""
    h = x * 2.0 - 1.0
    y = np.where(h < 1.0, h * h, -h)
    return ad.sum(y) * np.max(x) if (h > 0).all() else ad.sum(x)


def corpus():
    """Saved tapes of every kind: each op's cases, f by reference, pieces, guards, sites,
    primitives (scalar, array, several outputs), array block ops, constant outputs, no
    outputs."""
    from op_cases import CASES
    out = []
    for op, cases in CASES.items():
        for case in cases[:2]:
            t = ad.record(case.f, *case.points[0])
            out.append(t.dumps(function=False))
    out.append(ad.record(seed, 2.0, 1.0).dumps())
    out.append(ad.record(branchy, np.array([0.5, -1.0, 2.0]), 0.25).dumps())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ad.ValueWarning)
        out.append(ad.record(frozen, 1.5).dumps())
    out.append(ad.record(with_primitives, np.array([0.3, -0.7, 1.1])).dumps())
    out.append(ad.record(arrays, np.linspace(-1.0, 1.5, 6), 0.75, arrays=True).dumps())
    out.append(ad.record(array_guards, np.array([0.5, 2.0, 1.5]), arrays=True).dumps())
    with ad.Tape() as t:
        x = t.variables([[1.0, 2.0], [3.0, -4.0]])
        t.outputs([[x[0, 0] * x[1, 1], 3.0], [ad.sin(x[0, 1]), x[1, 0]]])
    out.append(t.dumps())
    with ad.Tape() as t:                       # no outputs
        x = t.variables(2.0)
        x * x
    out.append(t.dumps())
    return out


# ---- the file's layout and checksum ------------------------------------------------------------
def counts(data):
    return list(struct.unpack_from(f"<{N_COUNTS}q", data, HEADER))


def sections(data):
    """{section: (start, end)} of a well-formed file."""
    c, at, out = counts(data), HEADER + 8 * N_COUNTS, {}
    for s in ORDER:
        out[s] = (at, at + c[s] * WIDTH[s])
        at = out[s][1]
    return out


def checksum(payload):
    return lib.tp_checksum(ffi.from_buffer("uint8_t[]", payload), len(payload))


def fix(data):
    """data with the header's payload length and checksum made right."""
    b = bytearray(data)
    if len(b) < HEADER:
        return bytes(b)
    payload = bytes(b[HEADER:])
    struct.pack_into("<QQ", b, 24, len(payload), checksum(payload))
    return bytes(b)


def set_count(data, s, n):
    b = bytearray(data)
    struct.pack_into("<q", b, HEADER + 8 * s, n)
    return bytes(b)


# ---- mutations ---------------------------------------------------------------------------------
_INTS = (0, 1, 2, -1, -2, 3, 7, 127, 128, 255, 256, 2 ** 31 - 1, -2 ** 31, 2 ** 31, 2 ** 32,
         2 ** 62, 2 ** 63 - 1, -2 ** 63)
_DOUBLES = (0.0, -0.0, 1.0, -1.0, float("nan"), float("inf"), -float("inf"), 1e308, 5e-324, 2.0,
            3.0, 0.5, 1e9)


def _varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7f) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _raw(r, data, others):
    """A mutation that leaves the header as it is (the checksum or length catches most)."""
    b = bytearray(data)
    k = r.randrange(8)
    if k == 0 and b:                                   # bit flips
        for _ in range(r.randint(1, 4)):
            i = r.randrange(len(b))
            b[i] ^= 1 << r.randrange(8)
    elif k == 1 and b:                                 # byte changes
        for _ in range(r.randint(1, 4)):
            b[r.randrange(len(b))] = r.randrange(256)
    elif k == 2:                                       # truncation
        del b[r.randrange(len(b) + 1):]
    elif k == 3:                                       # bytes appended
        b += bytes(r.randrange(256) for _ in range(r.randint(1, 40)))
    elif k == 4 and b:                                 # a slice deleted
        i = r.randrange(len(b))
        del b[i:i + r.randint(1, 16)]
    elif k == 5:                                       # a header spliced onto another payload
        o = r.choice(others)
        b = bytearray(data[:HEADER] + o[HEADER:])
    elif k == 6:                                       # random bytes after the magic
        b = bytearray(data[:8] + bytes(r.randrange(256) for _ in range(r.randrange(120))))
    else:                                              # header fields
        i = r.choice((8, 12, 16, 17, 18, 19, 20, 24, 32))
        b[i:i + 1] = bytes([r.randrange(256)])
    return bytes(b)


def _fixed(r, data, others):
    """A mutation behind a right checksum: it reaches the structural checks."""
    sec, c = sections(data), counts(data)
    b = bytearray(data)
    k = r.randrange(10)
    if k == 0:                                         # a count
        s = r.randrange(N_COUNTS)
        n = r.choice((c[s] + r.choice((-2, -1, 1, 2)), r.choice(_INTS), r.randrange(1 << 20)))
        return fix(set_count(data, s, max(min(n, 2 ** 63 - 1), -2 ** 63)))
    if k == 1:                                         # bytes of one section
        s = r.choice(ORDER)
        lo, hi = sec[s]
        if hi > lo:
            for _ in range(r.randint(1, 3)):
                b[r.randrange(lo, hi)] = r.choice((0, 1, 0x7f, 0x80, 0xff, r.randrange(256)))
        return fix(b)
    if k == 2:                                         # a varint written into the stream
        lo, hi = sec[C_STREAM]
        if hi > lo:
            i = r.randrange(lo, hi)
            v = _varint(r.choice((r.randrange(64), r.randrange(1 << 20),
                                  r.choice(_INTS) % 2 ** 64)))
            b[i:i + len(v)] = v
            del b[hi:hi + max(0, i + len(v) - hi)]        # the stream keeps its length
        return fix(b)
    if k == 3:                                         # a section's length changed
        s = r.choice(ORDER)
        lo, hi = sec[s]
        w = WIDTH[s]
        if r.random() < 0.5 and hi > lo:
            i = r.randrange(lo, hi, w) if w > 1 else r.randrange(lo, hi)
            del b[i:i + w]
            b = bytearray(set_count(b, s, c[s] - 1))
        else:
            i = r.randrange(lo, hi + 1)
            b[i:i] = bytes(r.randrange(256) for _ in range(w))
            b = bytearray(set_count(b, s, c[s] + 1))
        if s == C_STREAM and r.random() < 0.5:         # and the word count with it
            b = bytearray(set_count(b, C_WORDS, c[C_WORDS] + r.choice((-1, 1))))
        return fix(b)
    if k == 4:                                         # a section from another tape
        o = r.choice(others)
        s = r.choice(ORDER)
        olo, ohi = sections(o)[s]
        lo, hi = sec[s]
        b[lo:hi] = o[olo:ohi]
        b = bytearray(set_count(b, s, counts(o)[s]))
        if s in (C_STREAM, C_OPS) and r.random() < 0.7:
            b = bytearray(set_count(b, C_WORDS, counts(o)[C_WORDS]))
        return fix(b)
    if k == 5 and r.random() < 0.3:                    # a shape or index table word
        s = r.choice((C_SHAPEW, C_INDEX, C_IXW))
        lo, hi = sec[s]
        if hi > lo:
            fmt = "<i" if s == C_IXW else "<q"
            i = r.randrange(lo, hi, WIDTH[s])
            old = struct.unpack_from(fmt, b, i)[0]
            new = r.choice((old + r.choice((-1, 1)), -old, 0, 1, r.choice(_INTS)))
            bits = 32 if s == C_IXW else 64
            struct.pack_into(fmt, b, i, (new + 2 ** (bits - 1)) % 2 ** bits - 2 ** (bits - 1))
        return fix(b)
    if k == 5:                                         # a double
        s = r.choice((C_CONSTS, C_INPUTS, C_CALLVALS))
        lo, hi = sec[s]
        if hi > lo:
            struct.pack_into("<d", b, r.randrange(lo, hi, 8), r.choice(_DOUBLES))
        return fix(b)
    if k == 6:                                         # an int32 of outputs, guards or sites
        s = r.choice((C_OUTPUTS, C_GUARDS, C_SITES))
        lo, hi = sec[s]
        if hi > lo:
            nv = c[C_INPUTS] + c[C_OPS] + c[C_CALLVALS]
            v = r.choice(_INTS + (nv, nv - 1, -c[C_CONSTS] - 1))
            struct.pack_into("<i", b, r.randrange(lo, hi, 4), (v + 2 ** 31) % 2 ** 32 - 2 ** 31)
        return fix(b)
    if k == 7:                                         # the meta's JSON
        lo, hi = sec[C_META]
        text = bytes(b[lo:hi])
        kind = r.randrange(4)
        if kind == 0:
            new = text.replace(b"1", r.choice((b"2", b"0", b"-1", b"1e9", b"true", b"[]")), 1)
        elif kind == 1:
            new = text.replace(r.choice((b"pieces", b"out_shape", b"primitives", b"site_files",
                                         b"function", b"none", b"pickled", b"false", b"true")),
                               r.choice((b"x", b"null", b"dropped", b"pickled", b"[[]]")), 1)
        elif kind == 2:
            new = text[:r.randrange(len(text) + 1)]
        else:
            new = b"[" * r.randrange(1, 100000) if r.random() < 0.1 else text.replace(b"]", b"", 1)
        b[lo:hi] = new
        return fix(set_count(b, C_META, len(new)))
    if k == 8:                                         # header fields, behind a right checksum
        i = r.choice((8, 12, 16, 17, 18, 19, 20))
        b[i] = r.randrange(256)
        return fix(b)
    lo, hi = sec[C_FN]                                 # f's pickle
    if hi > lo:
        for _ in range(r.randint(1, 3)):
            b[r.randrange(lo, hi)] = r.randrange(256)
    return fix(b)


def mutate(r, data, others):
    return _fixed(r, data, others) if r.random() < 0.6 else _raw(r, data, others)


# ---- one case ----------------------------------------------------------------------------------
_ALLOWED = (ad.TapeError, TypeError, ValueError)   # what the sweeps of a valid tape may raise


def exercise(t, r):
    """Every sweep of a loaded tape, at its recorded point and at a nearby one."""
    rec = t._rec
    if rec.out_shape is None:
        try:
            t.forward()
        except ad.TapeError:
            return
        raise AssertionError("a tape without outputs replayed")
    flat = np.asarray(rec.x_flat(None)) + np.array([r.uniform(-0.1, 0.1) for _ in range(rec.m)])
    parts = rec.split(flat)
    x = parts[0] if len(parts) == 1 else tuple(parts)
    v = x
    w = np.ones(rec.out_shape) if rec.out_shape else 1.0
    calls = [lambda: t.forward(), lambda: t.forward(x), lambda: t.gradient(x),
             lambda: t.jvp(x, v), lambda: t.vjp(x, w), lambda: t.jacobian(x, mode="forward"),
             lambda: t.jacobian(x, mode="reverse"), lambda: t.hvp(x, v, w),
             lambda: t.hessian(x, w), lambda: t.taylor(x, v, 3)]
    calls += [lambda: listing(t), lambda: sweep(rec, flat, flat, np.ravel(w))]   # traces' C part
    for call in calls:
        try:
            call()
        except _ALLOWED:
            pass
        except Exception as e:                          # noqa: BLE001
            if not _raised_by_saved_function(e):
                raise


def _raised_by_saved_function(e):
    """e came from a function of this file's corpus, re-recorded where a guard flipped: a mutated
    file may name another saved function (the loader trusts a pickled f, as pickle does), which
    then meets arguments it was not written for"""
    tb = e.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename == __file__


def run_case(data, r):
    """'loaded' or 'rejected'; AssertionError for a rejection that says nothing."""
    try:
        t = ad.loads(data)
    except ValueError as e:
        msg = str(e)
        if not msg.startswith("tape file: ") or len(msg) < 24:
            raise AssertionError(f"a rejection that does not say what is wrong: {msg!r}")
        return "rejected"
    exercise(t, r)
    return "loaded"


def run(n_cases, seconds=None, seed=0, files=None, report=None):
    """Run up to n_cases cases (or for seconds): {"loaded": k, "rejected": k, "cases": n,
    "seconds": s}. A failing case raises, naming its seed and number."""
    files = corpus() if files is None else files
    r = random.Random(seed)
    tally = {"loaded": 0, "rejected": 0}
    t0 = time.perf_counter()
    done = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for done in range(1, n_cases + 1):
            data = r.choice(files)
            case_seed = r.randrange(2 ** 63)
            cr = random.Random(case_seed)
            bad = mutate(cr, data, files)
            try:
                tally[run_case(bad, cr)] += 1
            except Exception as e:
                raise AssertionError(f"case {done} (seed {seed}, case seed {case_seed}): "
                                     f"{type(e).__name__}: {e}") from e
            if report and done % report == 0:
                el = time.perf_counter() - t0
                print(f"{done} cases, {el:.0f} s, {tally}", flush=True)
            if seconds and done % 256 == 0 and time.perf_counter() - t0 > seconds:
                break
    tally.update(cases=done, seconds=time.perf_counter() - t0)
    return tally


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", type=int, default=10 ** 6)
    p.add_argument("--seconds", type=float, default=None)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    try:
        tally = run(a.cases, a.seconds, a.seed, report=max(1, min(a.cases // 20, 100000)))
    except AssertionError as e:
        print(f"fuzz_tapes.py: FAILED {e}", file=sys.stderr)
        return 1
    print(f"fuzz_tapes.py: {tally['cases']} cases in {tally['seconds']:.1f} s "
          f"({tally['cases'] / tally['seconds']:.0f}/s): {tally['loaded']} loaded and swept, "
          f"{tally['rejected']} rejected with a message; 0 crashes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
