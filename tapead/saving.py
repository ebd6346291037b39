"""Saving and loading tapes (docs/API.md, "Saving and loading"): ``t.dumps()``/``ad.loads()``,
``t.save(path)``/``ad.load(path)``, and pickle and copy.deepcopy through the same bytes.

csrc/serial.c writes the file and validates every part of it that the C sweeps read; this module
adds the Python side as a JSON meta section (input pieces' shapes, the output shape, the files of
the guard sites, the primitives' names) and f of ad.record as pickle bytes, and checks them.
"""
import importlib
import json
import os
import pickle
import pickletools

import numpy as np

from ._core import check, ffi, lib
from .errors import TapeError

_primitive = importlib.import_module(".primitive", __package__)   # ad.primitive is the function

_MSG = 600                        # room for the C loader's message
_INFO = 13                        # tp_load_header's info (serial.c)
_MAX_DIMS = 64
(_I_INPUTS, _I_OPS, _I_OUTPUTS, _I_GUARDS, _I_AT_GUARDS, _I_SITES, _I_AT_SITES, _I_PRIMS,
 _I_AT_META, _I_META, _I_AT_FN, _I_FN, _I_BLOCKVARS) = range(_INFO)
_FUNCTION_STATES = ("none", "pickled", "dropped")


class FunctionNotSaved(ValueError, pickle.PicklingError):
    """f of ad.record cannot be pickled (a lambda, a closure, a local function), so a saved tape
    could not re-record it: saving refuses (``function=False`` saves the tape without f)."""


# ---- saving ------------------------------------------------------------------------------------
def dumps(tape, function=True):
    """The tape as bytes (see Tape.dumps)."""
    out, n, _ = _dump(tape, function)
    return out[:n]                        # (a slice of a cffi buffer is bytes)


def save(tape, path, function=True):
    """Write the tape's bytes to path (see Tape.save)."""
    out, n, _ = _dump(tape, function)
    with open(path, "wb") as f:
        f.write(memoryview(out)[:n])


def _dump(tape, function, check_names=True):
    """(buffer, length, primitives in file order) of the tape's file."""
    rec = tape._rec
    if not lib.tp_closed(rec._p):
        raise TapeError("only a closed tape can be saved: save it after its `with` block ends")
    fn, state = b"", "none"
    if tape._fn is not None:
        if function:
            fn, state = _pickle_function(tape._fn), "pickled"
        else:
            state = "dropped"
    elif getattr(tape, "_fn_note", None):
        state = "dropped"
    prims, table = _primitives(rec, check_names)
    guards = np.asarray(rec.guards, dtype=np.int32)
    files, file_ix, sites = [], {}, []
    for var, (file, line, frozen) in rec.sites.items():
        ix = file_ix.setdefault(str(file), len(files))
        if ix == len(files):
            files.append(str(file))
        sites.append((var, -1 if frozen is None else frozen,
                      line if isinstance(line, int) and 0 <= line < 2 ** 31 else -1, ix))
    sites = np.asarray(sites, dtype=np.int32).reshape(-1, 4)
    meta = json.dumps({
        "pieces": [list(s) for s in rec.pieces],
        "out_shape": None if rec.out_shape is None else list(rec.out_shape),
        "primitives": table, "site_files": files, "function": state,
        "arrays": bool(getattr(tape, "_arrays", False)),     # f re-records with ad.Arrays
    }, separators=(",", ":")).encode()
    ids = ffi.new("int32_t[]", [i for i, _ in prims] or [0])
    out = _buffer(lib.tp_dump_bound(rec._p, guards.size, sites.size // 4, len(meta), len(fn)))
    n = check(lib.tp_dump(rec._p, ids, len(prims), _i32(guards), guards.size, _i32(sites),
                          sites.size // 4, _u8(meta), len(meta), _u8(fn), len(fn),
                          ffi.from_buffer("uint8_t[]", out)), "save")
    return out, n, [p for _, p in prims]


def _buffer(n):
    """A cffi buffer of n bytes, given back to the C side when collected: a block a freed tape
    left when one fits (csrc/recycle.c), whose pages are in already."""
    cap = ffi.new("int64_t *")
    p = lib.tp_buffer(n, cap)
    if p == ffi.NULL:
        raise MemoryError(f"no memory for a tape file of {n} bytes")
    size = cap[0]
    return ffi.buffer(ffi.gc(p, lambda q: lib.tp_buffer_release(q, size)), n)


def _u8(b):
    return ffi.from_buffer("uint8_t[]", b)


def _i32(a):
    return ffi.from_buffer("int32_t[]", np.ascontiguousarray(a, dtype=np.int32))


def _primitives(rec, check_names):
    """[(id, Primitive)] of the primitives the recording calls, and the file's table of them:
    [name, takes an array]. Every name must name one live primitive only."""
    ids = ffi.new("int32_t[]", 16)
    n = check(lib.tp_dump_prims(rec._p, ids, 16), "save")
    if n > 16:
        ids = ffi.new("int32_t[]", n)
        check(lib.tp_dump_prims(rec._p, ids, n), "save")
    prims, table = [], []
    for i in ids[0:n]:
        prim, array = _primitive.lookup(i)
        if check_names:
            _primitive.by_name(prim.name, "cannot save this tape")
        prims.append((i, prim))
        table.append([prim.name, bool(array)])
    return prims, table


def _pickle_function(fn):
    name = getattr(fn, "__qualname__", None) or repr(fn)
    try:
        return pickle.dumps(fn, protocol=4)
    except Exception as e:          # noqa: BLE001 - pickle raises several kinds
        raise FunctionNotSaved(
            f"cannot save f = {name} of this ad.record tape: pickle cannot save it ({e}). A "
            f"loaded tape re-records f where a branch guard flips, so f must be picklable by "
            f"reference: a function defined at module level. Or save the tape without f: "
            f"t.dumps(function=False) (or t.save(path, function=False)), whose replays raise "
            f"BranchChanged where a guard flips") from None


# ---- loading -----------------------------------------------------------------------------------
def loads(data, function=True):
    """A Tape from bytes that Tape.dumps (or Tape.save) wrote (see docs/API.md)."""
    if not isinstance(data, bytes):        # bytes: no memoryview whose export a traceback
        try:                                # cycle could hold (CPython cannot clear that)
            data = memoryview(data).tobytes()
        except TypeError:
            raise TypeError(f"ad.loads expects bytes (or a bytes-like object), got "
                            f"{type(data).__name__}") from None
    return _load(data, function)


def load(path, function=True):
    """A Tape from a file that Tape.save wrote."""
    return _load(_read(path), function)


def _read(path):
    """The bytes of the file at path, as a uint8 array: NumPy's large arrays are on huge pages,
    which the kernel's copy fills in half the time of f.read()'s bytes. (Not a _buffer: the kept
    blocks are for the tape's own arrays, which it would take from them.)"""
    with open(os.fspath(path), "rb", buffering=0) as f:
        size = os.fstat(f.fileno()).st_size
        buf = np.empty(size + 1, dtype=np.uint8)     # a byte more: a file that grew is seen
        view, n = memoryview(buf), 0
        while n < buf.size and (got := f.readinto(view[n:])):
            n += got
        del view
        if n > size:                                 # it grew (or has no size: a pipe)
            return buf.tobytes() + f.read()
    return buf[:n]


def _bad(msg):
    return ValueError("tape file: " + (msg if isinstance(msg, str)
                                       else ffi.string(msg).decode("utf-8", "replace")))


def _load(data, function, prims=None):
    """The Tape of data (bytes, or a buffer of this module's own: _read's, _dump's); prims: the
    primitives of its table (copy.deepcopy), else by name."""
    from .recording import Recording as _Recording
    from .tape import Tape
    n = len(data)
    b = ffi.from_buffer("uint8_t[]", data)
    info, msg = ffi.new(f"int64_t[{_INFO}]"), ffi.new(f"char[{_MSG}]")
    rc = lib.tp_load_header(b, n, info, msg, _MSG)
    if rc == lib.TP_EFILE:
        raise _bad(msg)
    check(rc, "load")
    info = list(info)
    meta = _meta(bytes(data[info[_I_AT_META]:info[_I_AT_META] + info[_I_META]]), info)
    if prims is None:
        prims = [_primitive.by_name(name, "tape file") for name, _ in meta["primitives"]]
    ids = [p._id(array) for p, (_, array) in zip(prims, meta["primitives"])]
    tape = Tape.__new__(Tape)
    rec = _Recording(tape)                   # its new, empty C tape is what tp_load fills
    rc = lib.tp_load(rec._p, b, n, ffi.new("int32_t[]", ids or [0]), len(ids), msg, _MSG)
    if rc == lib.TP_EFILE:
        raise _bad(msg)
    check(rc, "load")
    tape._rec, tape._fn, tape._rerecords = rec, None, 0
    if meta["arrays"]:
        tape._arrays = True
    tape._fn_note = ("saved without its function (t.dumps(function=False))"
                     if meta["function"] == "dropped" else None)
    rec.pieces = [tuple(s) for s in meta["pieces"]]
    rec.sizes = [_size(s) for s in rec.pieces]
    rec.m = info[_I_INPUTS]
    scalars = all(not s for s in rec.pieces)
    rec.fast = ((1 if len(rec.pieces[0]) == 1 else 2 if scalars else 0) if len(rec.pieces) == 1
                else 3 if scalars and rec.pieces else 0)
    if info[_I_BLOCKVARS]:        # array block ops (tp_load counted their results) replay
        rec.fast = 0               # through the general paths
    rec.out_shape = None if meta["out_shape"] is None else tuple(meta["out_shape"])
    rec.n_out = info[_I_OUTPUTS]
    rec.guards = np.frombuffer(data, np.int32, info[_I_GUARDS], info[_I_AT_GUARDS]).tolist()
    sites = np.frombuffer(data, np.int32, 4 * info[_I_SITES], info[_I_AT_SITES]).reshape(-1, 4)
    files = meta["site_files"]
    for var, frozen, line, ix in sites.tolist():
        if not 0 <= ix < len(files):
            raise _bad(f"guard site of variable {var} names file {ix} of {len(files)}")
        rec.sites[var] = (files[ix], None if line < 0 else line, None if frozen < 0 else frozen)
    if prims:
        _primitive._users.setdefault(rec, set()).update(prims)
    rc = lib.tp_load_values(rec._p, msg, _MSG)
    if rc == lib.TP_EFILE:
        raise _bad(msg)
    if rc == lib.TP_ECALLBACK:
        try:
            _primitive.raise_pending()
        except Exception as e:      # noqa: BLE001 - the primitive's own exception, wrapped
            raise _bad(f"computing the values at recording failed in a primitive: "
                       f"{type(e).__name__}: {e}") from e
    check(rc, "load")
    if meta["function"] == "pickled":
        if function:
            tape._fn = _unpickle_function(bytes(data[info[_I_AT_FN]:info[_I_AT_FN] + info[_I_FN]]))
        else:
            tape._fn_note = "loaded without its function (ad.loads(..., function=False))"
    return tape


_MEMO_OPS = {"PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"}


def _check_pickle(data):
    """Reject a pickle whose lengths or memo indices ask for more than its size: the unpickler
    would try to allocate that much (a memo index of 2**31 grows the memo to it)."""
    n = 0
    for n, (op, arg, _) in enumerate(pickletools.genops(data), 1):
        if (op.name in _MEMO_OPS and not 0 <= arg <= n) or \
                (op.name == "FRAME" and not 0 <= arg <= len(data)):
            raise ValueError(f"{op.name} {arg} is out of range")
    if not n:
        raise ValueError("it is empty")


def _unpickle_function(data):
    try:
        _check_pickle(data)
        fn = pickle.loads(data)
    except Exception as e:          # noqa: BLE001 - whatever unpickling raised
        raise _bad(f"its function f (ad.record) cannot be restored: {type(e).__name__}: {e}. "
                   f"Import or define it as it was when saved, or load the tape without it: "
                   f"ad.loads(data, function=False)") from None
    if not callable(fn):
        raise _bad(f"its function f (ad.record) unpickles to a {type(fn).__name__}, which is "
                   f"not callable")
    return fn


def _meta(raw, info):
    """The meta section, checked against the counts of the C header."""
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as e:
        raise _bad(f"its meta section is not valid JSON ({type(e).__name__})") from None
    if not isinstance(meta, dict) or set(meta) != {"pieces", "out_shape", "primitives",
                                                   "site_files", "function", "arrays"}:
        raise _bad("its meta section does not have the keys of this format")
    if not isinstance(meta["arrays"], bool):
        raise _bad("its meta section's arrays is not true or false")
    pieces, out_shape = meta["pieces"], meta["out_shape"]
    if not isinstance(pieces, list) or not all(_is_shape(s) for s in pieces) or \
            sum(_size(s) for s in pieces) != info[_I_INPUTS]:
        raise _bad(f"its input pieces {_short(pieces)} do not hold its {info[_I_INPUTS]} inputs")
    if out_shape is None and info[_I_OUTPUTS]:
        raise _bad("it has outputs but no output shape")
    if out_shape is not None and (not _is_shape(out_shape) or
                                  _size(out_shape) != info[_I_OUTPUTS]):
        raise _bad(f"its output shape {_short(out_shape)} does not hold its "
                   f"{info[_I_OUTPUTS]} outputs")
    table = meta["primitives"]
    if not isinstance(table, list) or len(table) != info[_I_PRIMS] or not all(
            isinstance(e, list) and len(e) == 2 and isinstance(e[0], str) and
            isinstance(e[1], bool) for e in table):
        raise _bad(f"its primitive table does not list {info[_I_PRIMS]} (name, array) pairs")
    files = meta["site_files"]
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise _bad("its guard sites' files are not a list of names")
    if meta["function"] not in _FUNCTION_STATES or \
            (meta["function"] == "pickled") != (info[_I_FN] > 0):
        raise _bad(f"its function state {_short(meta['function'])} does not match its "
                   f"{info[_I_FN]} bytes of f")
    return meta


def _is_shape(s):
    return isinstance(s, list) and len(s) <= _MAX_DIMS and all(
        type(d) is int and 0 <= d < 2 ** 31 for d in s)


def _size(s):
    out = 1
    for d in s:
        out *= d
    return out


def _short(v):
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."
