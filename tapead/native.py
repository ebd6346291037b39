"""Native kernels: a closed tape's program compiled to C with the system compiler (Tape.compile).

The batched forward sweep and the batched reverse sweep with one output weight (forward,
gradient, vjp with w of shape (B,) + y.shape) then run straight-line code, generated here from
the tape: no dispatch per operation, values in registers, and the compiler vectorises each
function over a tile of 8 points (points in the vector lanes). The rules are csrc/rules.h's
macros, expanded per operation; per point the arithmetic and its order are the interpreter's, so
results equal the interpreted ones to the last bit (NaN payloads aside: docs/API.md §10.2).

Layout of the code: the operations are cut into segments of SEGMENT operations, one C function
each for the forward and the reverse sweep (a function's compile time grows faster than its
length). Values and adjoints that cross segments live in per-call tiles V and A (row i: variable
i at the 8 points); the last segment's forward and reverse sweeps are one function, its values
kept in locals. Within a function the adjoints are locals accumulated in the interpreter's order.

Scalar operations only: a tape with primitives or array operations raises TypeError naming them.
Compiled code is cached in this process by its source: compiling the same program again (a copy,
a loaded tape, a re-recording down a branch seen before) runs no compiler.
"""
import hashlib
import math
import os
import shlex
import shutil
import subprocess
import sysconfig
import tempfile
import threading
import time

import numpy as np

from ._core import OP_ARITY, GroupOp, Op, check, ffi, lib
from .errors import TapeError
from .program import decode, export

W = 8                 # points per tile: the vector lanes of one AVX-512 register (transpose8)
SEGMENT = 200         # operations per generated function (its live values stay in L1)
MAX_OPS = 100_000     # larger tapes: ValueError (the compiler takes ~1 s per 1000 operations)

_VARIADIC = {Op.SUM, Op.DOT}
_HEADERS = ("rules.h", "times.h", "transpose.h")    # csrc/, installed as tapead/include/
_cache = {}           # source digest -> (cffi FFI, library, kernel address): never unloaded
_lock = threading.Lock()


# ---- generating the C source --------------------------------------------------------------------
def _const(c):
    """A C constant expression with exactly the bits of the double c."""
    c = float(c)
    if np.isfinite(c):
        return c.hex()
    bits = int(np.float64(c).view(np.uint64))
    sign = "-" if bits >> 63 else ""
    if math.isinf(c):
        return f"{sign}__builtin_inf()"
    quiet, payload = bits >> 51 & 1, bits & ((1 << 51) - 1)
    return f'{sign}__builtin_nan{"" if quiet else "s"}("{payload:#x}")'


class _Program:
    """The tape's operations decoded: per op its opcode, operands, result, segment."""

    def __init__(self, ops, args, outputs, m):
        start, count, first, results = decode(ops, args, m)
        self.m, self.outputs = m, [int(o) for o in outputs]
        self.ops = [Op(int(o)) for o in ops]
        bad = sorted({op.name for op in self.ops} - {op.name for op in _supported()})
        if bad:
            raise TypeError(f"Tape.compile(): the tape holds {', '.join(bad)}, which native "
                            f"kernels do not compile (scalar operations only: no user "
                            f"primitives or array operations); its batched replays stay "
                            f"interpreted")
        self.operands = [[int(a) for a in args[s:s + c]] for s, c in zip(start, count)]
        self.result = [int(f) for f in first]
        self.nv = m + len(self.ops)
        n = len(self.ops)
        self.segments = [(lo, min(lo + SEGMENT, n)) for lo in range(0, n, SEGMENT)] or [(0, 0)]
        self.seg_of_var = np.zeros(self.nv, dtype=np.int64)
        for k, (lo, hi) in enumerate(self.segments):
            self.seg_of_var[m + lo:m + hi] = k
        self.seg_of_var[:m] = -1                       # inputs: in V from the start

    def uses(self, o):
        """The variable operands of op o whose values its rules read."""
        return [q for q in self.operands[o] if q >= 0]


def _supported():
    return ({op for op in GroupOp.PARTIAL if OP_ARITY[op] in (1, 2)} | _VARIADIC |
            set(GroupOp.GUARD) | {Op.WHERE})


def _value_rows(P):
    """Variables whose values go through V: the inputs, the outputs (the driver reads them from
    V: no code per output), values read by another segment's operations. (A segment's reverse
    function recomputes its own values: cheaper than storing and loading all of them.)"""
    rows = set(range(P.m)) | {q for q in P.outputs if q >= 0}
    for k, (lo, hi) in enumerate(P.segments):
        for o in range(lo, hi):
            for q in P.uses(o):
                if P.seg_of_var[q] != k:
                    rows.add(q)
    return rows


def _touches(P, o):
    """The adjoints op o's reverse rule reads or adds to (its result's, its operands')."""
    op = P.ops[o]
    if op in GroupOp.GUARD:
        return set()
    q = P.operands[o][1:] if op is Op.WHERE else P.operands[o]   # not WHERE's condition
    return {a for a in q if a >= 0} | {P.result[o]}


def _adjoint_plan(P):
    """For each segment, the adjoints its reverse function loads from A at its start (the
    outputs', which the driver seeds there, and those a later segment added to) and stores to A
    at its end (those of variables of earlier segments and of the inputs); the others start at
    0.0 where first touched, as the interpreter's do. And the inputs nothing touches (the driver
    zeroes their rows of A)."""
    last = len(P.segments) - 1
    loads, stores, in_a = {}, {}, {q for q in P.outputs if q >= 0}
    for k in range(last, -1, -1):
        lo, hi = P.segments[k]
        touched = set().union(*(_touches(P, o) for o in range(lo, hi)))
        own = set(P.result[lo:hi])
        loads[k] = sorted(touched & in_a)
        stores[k] = sorted(touched - own)
        in_a |= set(stores[k])
    return loads, stores, sorted(set(range(P.m)) - in_a)


class _Writer:
    def __init__(self, P, vrows):
        self.P, self.vrows = P, vrows
        self.vslot = {i: k for k, i in enumerate(sorted(vrows))}   # V's rows, dense: inputs first

    def val(self, q, local):
        if q < 0:
            return f"k{-1 - q}"
        return f"v{q}" if q in local else f"V[{self.vslot[q]}][p]"

    def forward(self, o, local, out, store=True):
        """Op o's primal: `double v<iz>` in local, stored to V if others read it (and store)."""
        P, op = self.P, self.P.ops[o]
        q, iz, name = P.operands[o], P.result[o], op.name
        if op in _VARIADIC:
            vals = ", ".join(self.val(a, local) for a in q)
            out.append(f"double v{iz}; {{ const double q_[] = {{{vals}}}; const int32_t n = "
                       f"{len(q)}; double z; {name}_PRIMAL; v{iz} = z; }}")
        else:
            names = "xyw"[:len(q)]
            decl = ", ".join(f"{n} = {self.val(a, local)}" for n, a in zip(names, q))
            idx = ", ".join(f"i{n} = {a}" for n, a in zip(names, q))
            out.append(f"double v{iz}; {{ const double {decl}; const int32_t {idx}; double z; "
                       f"{' '.join(f'(void)i{n};' for n in names)} {name}_PRIMAL; v{iz} = z; }}")
        local.add(iz)
        if store and iz in self.vrows:
            out.append(f"V[{self.vslot[iz]}][p] = v{iz};")

    def reverse(self, o, local, adj, out):
        """Op o's adjoint rule: its operands' adjoints += partial * its result's adjoint."""
        P, op = self.P, self.P.ops[o]
        q, iz, name = P.operands[o], P.result[o], op.name
        if op in GroupOp.GUARD:
            return
        az = self.adj(iz, adj, out)
        if op is Op.WHERE:                       # only the chosen operand: no 0 * Inf
            c = f"({self.val(q[0], local)} != 0.0)"
            if q[1] >= 0:
                ay = self.adj(q[1], adj, out)
                out.append(f"{ay} = {c} ? {ay} + {az} : {ay};")
            if q[2] >= 0:
                aw = self.adj(q[2], adj, out)
                out.append(f"{aw} = {c} ? {aw} : {aw} + {az};")
            return
        z = f"v{iz}" if iz in local else f"V[{self.vslot[iz]}][p]"
        if op in _VARIADIC:
            vals = ", ".join(self.val(a, local) for a in q)
            targets = {i: self.adj(a, adj, out) for i, a in enumerate(q) if a >= 0}
            out.append(f"{{ const double q_[] = {{{vals}}}; const double z = {z}; (void)z; "
                       f"const int32_t n = {len(q)}; (void)n;")
            out += [f"{{ const int32_t i = {i}; double pi; {name}_PARTIAL; "
                    f"{a} += TIMES_A({az}, pi); }}" for i, a in targets.items()]
            out.append("}")
            return
        names = "xy"[:len(q)]
        decl = ", ".join(f"{n} = {self.val(a, local)}" for n, a in zip(names, q))
        idx = ", ".join(f"i{n} = {a}" for n, a in zip(names, q))
        ps = ", ".join(f"p{n}" for n in names)
        acc = [(n, a) for n, a in zip(names, q) if a >= 0]
        targets = [self.adj(a, adj, out) for _, a in acc]
        adds = " ".join(f"{t} += TIMES_A({az}, p{n});" for (n, _), t in zip(acc, targets))
        voids = " ".join(f"(void){n}; (void)i{n};" for n in names)
        out.append(f"{{ const double {decl}, z = {z}; const int32_t {idx}; double {ps}; "
                   f"{voids} (void)z; {name}_PARTIAL; {adds} }}")

    def adj(self, i, adj, out):
        """The local holding variable i's adjoint, declared (0.0) at its first touch."""
        if i not in adj:
            adj.add(i)
            out.append(f"double a{i} = 0.0;")
        return f"a{i}"


def source(rec):
    """The C source of the native kernel of the closed recording rec."""
    ops, args, consts, outputs = export(rec)
    P = _Program(ops, args, outputs, rec.m)
    vrows = _value_rows(P)
    loads, stores, untouched = _adjoint_plan(P)
    wr = _Writer(P, vrows)
    in_a = set(range(P.m)) | {q for q in P.outputs if q >= 0} | {
        i for k in stores for i in stores[k]}
    aslot = {i: k for k, i in enumerate(sorted(in_a))}               # A's rows, dense: inputs first
    last = len(P.segments) - 1
    n_out = len(P.outputs)
    used = sorted({-1 - a for qs in P.operands for a in qs if a < 0} |
                  {-1 - q for q in P.outputs if q < 0})
    L = ["/* generated by tapead/native.py */",
         "#include <stdint.h>", "#include <stdlib.h>", "#include <string.h>",
         '#include "rules.h"', '#include "times.h"', '#include "transpose.h"',
         f"#define W {W}",
         "typedef double row_t[W];",
         "#define VAL(i) q_[i]",
         "#define CHECK_GUARD(z, w) flip_ |= ((z) == 1.0 - (w))",
         "/* an adjoint times a partial (times.h's rule): a partial the compiler knows finite and",
         " * nonzero needs no test, since a sum of adjoints from +0.0 is never -0.0 and so adding",
         " * a*p or +0 gives the same bits */",
         "#define TIMES_A(a, p) (__builtin_constant_p(p) && __builtin_isfinite(p) && (p) != 0.0 \\",
         "                       ? (a) * (p) : tp_times((a), (p)))"]
    L += [f"static const double k{c} = {_const(consts[c])};" for c in used]

    def point_loop(head, body):
        return [head, "{", '    _Pragma("GCC ivdep")', "    for (int p = 0; p < W; p++) {",
                *("        " + s for s in body), "    }", "}"]

    def forward_body(k, local, store=True):
        lo, hi = P.segments[k]
        body = ["int flip_ = 0;"]
        inputs = sorted({q for o in range(lo, hi) for q in P.uses(o) if q < P.m})
        body += [f"const double v{i} = V[{i}][p];" for i in inputs]
        local.update(inputs)
        for o in range(lo, hi):
            wr.forward(o, local, body, store)
        return body

    def reverse_body(k, local):
        lo, hi = P.segments[k]
        body, adj = [f"double a{i} = A[{aslot[i]}][p];" for i in loads[k]], set(loads[k])
        for o in range(hi - 1, lo - 1, -1):
            wr.reverse(o, local, adj, body)
        return body + [f"A[{aslot[i]}][p] = {wr.adj(i, adj, body)};" for i in stores[k]]

    for k in range(last):           # forward functions of all but the last segment
        local = set()
        body = forward_body(k, local) + ["F[p] |= flip_;"]
        L += point_loop(f"static void fwd{k}(row_t *restrict V, int *restrict F)", body)
        local = set()
        body = forward_body(k, local, store=False) + ["(void)flip_;"] + reverse_body(k, local)
        L += point_loop(f"static void rev{k}(const row_t *restrict V, row_t *restrict A)", body)
    # the last segment: forward alone, and forward with the reverse sweep
    local = set()
    body = forward_body(last, local) + ["F[p] |= flip_;"]
    L += point_loop("static void fwd_last(row_t *restrict V, int *restrict F)", body)
    local = set()
    body = forward_body(last, local) + ["F[p] |= flip_;"] + reverse_body(last, local)
    L += point_loop("static void both_last(row_t *restrict V, row_t *restrict A, int *restrict F)",
                    body)
    nv, na = max(len(wr.vslot), 1), max(len(aslot), 1)
    L += [f"""
static const int32_t untouched[] = {{{"".join(f"{i}, " for i in untouched)}-1}};
/* output o: the rows of its variable in V and A, or (-1) the constant out_const[o] */
static const int32_t out_v[] = {{{"".join(f"{wr.vslot[q] if q >= 0 else -1}, " for q in P.outputs)}-1}};
static const int32_t out_a[] = {{{"".join(f"{aslot[q] if q >= 0 else -1}, " for q in P.outputs)}-1}};
static const double out_const[] = {{{"".join(f"{_const(consts[-1 - q]) if q < 0 else 0}, " for q in P.outputs)}0}};

int tp_native_kernel(int64_t B, const double *x, const double *w, int64_t ws, double *y,
                     double *g, uint8_t *flips)
{{
    const int64_t m = {P.m}, n = {n_out};
    row_t *V = aligned_alloc(64, {nv} * sizeof(row_t));
    row_t *A = g ? aligned_alloc(64, {na} * sizeof(row_t)) : NULL;
    /* the gradients of a tile, point by point (rows padded to whole vectors): written with
     * aligned stores, then copied row by row into g (stores across g's rows are slower) */
    const int64_t mp = (m + 7) & ~(int64_t)7;
    double *G = g ? aligned_alloc(64, (size_t)(W * mp + 8) * sizeof(double)) : NULL;
    int F[W];
    if (!V || (g && (!A || !G))) {{ free(V); free(A); free(G); return -1; }}
    for (int64_t b0 = 0; b0 < B; b0 += W) {{
        const int64_t nb = B - b0 < W ? B - b0 : W;
        if (nb < W) memset(V, 0, (size_t)m * sizeof(row_t));
        transpose8(&V[0][0], W, x + b0 * m, m, nb, m);
        memset(F, 0, sizeof F);
        if (g) {{
            /* the seeds: 0 + each output's weight, in output order (as the interpreter) */
            for (int64_t o = 0; o < n; o++)
                if (out_a[o] >= 0) memset(A[out_a[o]], 0, sizeof(row_t));
            for (int64_t o = 0; o < n; o++)
                if (out_a[o] >= 0)
                    for (int64_t p = 0; p < W; p++)
                        A[out_a[o]][p] += w ? (p < nb ? w[(b0 + p) * ws + o] : 0.0) : (double)(o == 0);
{''.join(f"            fwd{k}(V, F);{chr(10)}" for k in range(last))}            both_last(V, A, F);
{''.join(f"            rev{k}(V, A);{chr(10)}" for k in range(last - 1, -1, -1))}            for (size_t k = 0; k < sizeof untouched / sizeof *untouched - 1; k++)
                memset(A[untouched[k]], 0, sizeof(row_t));   /* inputs no operation reads */
            if (m < 32) transpose8(g + b0 * m, m, &A[0][0], W, m, nb);   /* short rows: direct */
            else {{
                transpose8(G, mp, &A[0][0], W, m, nb);
                for (int64_t p = 0; p < nb; p++) memcpy(g + (b0 + p) * m, G + p * mp, (size_t)m * sizeof(double));
            }}
        }} else {{
{''.join(f"            fwd{k}(V, F);{chr(10)}" for k in range(last))}            fwd_last(V, F);
        }}
        for (int64_t p = 0; p < nb; p++) {{
            flips[b0 + p] = (uint8_t)(F[p] != 0);
            if (y)
                for (int64_t o = 0; o < n; o++)
                    y[(b0 + p) * n + o] = out_v[o] >= 0 ? V[out_v[o]][p] : out_const[o];
        }}
    }}
    free(V); free(A); free(G);
    return 0;
}}
"""]
    return "\n".join(L) + "\n"


# ---- compiling and loading ----------------------------------------------------------------------
def _include_dir():
    here = os.path.dirname(os.path.abspath(__file__))
    for d in (os.path.join(here, "include"), os.path.join(os.path.dirname(here), "csrc")):
        if all(os.path.isfile(os.path.join(d, h)) for h in _HEADERS):
            return d
    raise RuntimeError(f"Tape.compile(): tapead's C headers ({', '.join(_HEADERS)}) are not "
                       f"installed next to the package; reinstall tapead")


def _compiler():
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cmd = shlex.split(cc)
    if not cmd or shutil.which(cmd[0]) is None:
        for alt in ("cc", "gcc", "clang"):
            if shutil.which(alt):
                return [alt]
        raise RuntimeError(f"Tape.compile() needs a C compiler (tried {cc!r}, cc, gcc, "
                           f"clang; set CC): none was found, so batched replays stay "
                           f"interpreted")
    return cmd


# IEEE semantics as the core's build (no contraction into FMA); no trapping (its selects may then
# vectorise: results are the same); libm's functions called, never folded at compile time on
# constant operands (the compiler's correctly rounded values can differ from libm's in the last
# bit); sqrt and fabs are exact either way.
_LIBM = ("exp expm1 log log1p log2 log10 sin cos tan asin acos atan sinh cosh tanh asinh acosh "
         "atanh atan2 hypot erf pow cbrt").split()
FLAGS = ["-O2", "-std=gnu11", "-ffp-contract=off", "-fno-fast-math", "-fno-trapping-math",
         "-fno-math-errno", *(f"-fno-builtin-{f}" for f in _LIBM), "-fPIC", "-shared"]


def _build(src):
    """Compile src into a shared library and load it: (ffi, lib), cached by src and flags.
    TAPEAD_NATIVE_CFLAGS adds flags (tests/run_sanitizers.sh: the sanitizers)."""
    flags = FLAGS + shlex.split(os.environ.get("TAPEAD_NATIVE_CFLAGS", ""))
    key = hashlib.sha256("\0".join([src] + flags).encode()).hexdigest()
    with _lock:
        if key in _cache:
            return _cache[key], 0.0
        cc, inc = _compiler(), _include_dir()
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="tapead-native-") as d:
            c, so = os.path.join(d, "kernel.c"), os.path.join(d, f"kernel_{key[:16]}.so")
            with open(c, "w") as f:
                f.write(src)
            err = ""
            for arch in (["-march=native"], []):           # the host's vector units if known
                r = subprocess.run(cc + flags + arch + ["-I", inc, c, "-o", so, "-lm"],
                                   capture_output=True, text=True)
                if r.returncode == 0:
                    break
                err = r.stderr
            else:
                raise RuntimeError(f"Tape.compile(): the C compiler ({' '.join(cc)}) failed:\n"
                                   f"{err[-2000:]}")
            from cffi import FFI
            nffi = FFI()
            nffi.cdef("int tp_native_kernel(int64_t B, const double *x, const double *w, "
                      "int64_t ws, double *y, double *g, uint8_t *flips);")
            try:
                nlib = nffi.dlopen(so)    # mapped: the file may go
            except OSError as e:          # a temporary directory mounted noexec, say
                raise RuntimeError(f"Tape.compile(): the compiled kernel could not be loaded "
                                   f"from {d} ({e}); set TMPDIR to a directory that allows "
                                   f"executable mappings") from None
            addr = int(nffi.cast("uintptr_t", nlib.tp_native_kernel))
        _cache[key] = (nffi, nlib, addr)
        return _cache[key], time.perf_counter() - t0


def compile_recording(rec):
    """Give the closed recording rec its native kernel; the seconds the compiler took (0.0 when
    the code was cached)."""
    p = rec._p
    if not lib.tp_closed(p):
        raise TapeError("Tape.compile(): this tape is still recording; compile it after its "
                        "`with` block")
    n = lib.tp_n_ops(p)
    if n > MAX_OPS:
        raise ValueError(f"Tape.compile(): the tape has {n} operations; native kernels are "
                         f"made for tapes of at most {MAX_OPS} (the compiler takes about a "
                         f"second per 1000 operations)")
    (_, _, addr), seconds = _build(source(rec))
    check(lib.tp_set_native(p, ffi.cast("void *", addr)), "Tape.compile()")
    return seconds


def compile_quietly(t):
    """t compiled if a compiler is at hand (or the code cached), else left interpreted: for
    copies and pickles of a compiled tape (the same results either way)."""
    try:
        t.compile()
    except RuntimeError:
        pass
    return t


def loads_compiled(data):
    """ad.loads for the pickle of a compiled tape: compiled again where it is loaded (once per
    program and process)."""
    from .saving import loads
    return compile_quietly(loads(data))
