"""cffi build script (API mode, out of line): compiles csrc/ into tapead._tapead.

setup.py names it in ``cffi_modules``. The cdef is csrc/tape.h without its preprocessor lines,
plus the opcode enum generated from csrc/ops.def (cffi takes the values from the compiler).
"""
import os
import re

from cffi import FFI

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CSRC = os.path.join(ROOT, "csrc")
OP_ROW = re.compile(r'^OP\(\s*(\w+)\s*,\s*(\w+)\s*,\s*(\w+)\s*,\s*(\w+)\s*,\s*"(.*)"\s*\)')


def op_rows(path=os.path.join(CSRC, "ops.def")):
    """(name, arity, results, rule, formula) for each row of the op list, in opcode order."""
    with open(path) as f:
        return [m.groups() for m in map(OP_ROW.match, f) if m]


def cdef_source():
    with open(os.path.join(CSRC, "tape.h")) as f:
        decls = "".join(line for line in f if not line.lstrip().startswith("#"))
    enum = "".join(f"    TP_OP_{name} = ...,\n" for name, *_ in op_rows())
    callback = ('extern "Python+C" int tp_py_call(int prim, int mode, int64_t k, const double *x, '
                'int64_t n, int64_t K, const double *in, double *out);\n')
    return decls + "enum tp_opcode {\n" + enum + "    TP_N_OPCODES = ...\n};\n" + callback


ffibuilder = FFI()
ffibuilder.cdef(cdef_source())
ffibuilder.set_source(
    "tapead._tapead",
    '#include "tape_impl.h"',
    sources=[os.path.relpath(os.path.join(CSRC, f))
             for f in ("tape.c", "sweep.c", "second.c", "taylor.c", "inspect.c", "primitive.c",
                       "work.c", "optimize.c")],
    include_dirs=[os.path.relpath(CSRC)],
    depends=[os.path.join(CSRC, f) for f in ("ops.def", "rules.h", "series.h", "tape.h",
                                             "tape_impl.h", "sweeps.h", "work.h", "primal_body.h", "sweep_body.h",
                                             "sweep2_body.h")],
    # IEEE semantics: no -ffast-math, no contraction into FMA (same bits on every machine).
    # -fno-crossjumping keeps one dispatch jump per op handler in the threaded sweeps (merged
    # jumps mispredict: 2 ns/op instead of 7 on the Rosenbrock tape).
    extra_compile_args=["-O3", "-std=gnu99", "-ffp-contract=off", "-fno-fast-math",
                        "-fno-crossjumping"],
    libraries=["m"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
