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
    decls = ""
    for header in ("tape.h", "batch.h"):
        with open(os.path.join(CSRC, header)) as f:
            decls += "".join(line for line in f if not line.lstrip().startswith("#"))
    enum = "".join(f"    TP_OP_{name} = ...,\n" for name, *_ in op_rows())
    with open(os.path.join(CSRC, "callback.h")) as f:            # its one declaration
        callback = "".join('extern "Python+C" ' + line for line in f if line.startswith("int "))
    return decls + "enum tp_opcode {\n" + enum + "    TP_N_OPCODES = ...\n};\n" + callback


# One set of flags and dependencies for both compiled modules (setup.py reads these for
# tapead._fast). IEEE semantics: no -ffast-math, no contraction into FMA (same bits on every
# machine). -fno-crossjumping keeps one dispatch jump per op handler in the threaded sweeps
# (merged jumps mispredict: 2 ns/op instead of 7 on the Rosenbrock tape).
CFLAGS = ["-O3", "-std=gnu99", "-ffp-contract=off", "-fno-fast-math", "-fno-crossjumping"]
DEPENDS = sorted(os.path.relpath(os.path.join(CSRC, f)) for f in os.listdir(CSRC)
                 if f.endswith((".h", ".def")))
SOURCES = ["tape.c", "sweep.c", "second.c", "taylor.c", "inspect.c", "primitive.c", "work.c",
           "core_api.c", "pattern.c", "colour.c", "serial.c", "optimize.c", "batch.c",
           "blocktape.c", "block.c", "matmul.c", "gather.c", "reduce.c", "recycle.c"]

ffibuilder = FFI()
ffibuilder.cdef(cdef_source())
ffibuilder.set_source(
    "tapead._tapead",
    '#include "tape_impl.h"\n#include "batch.h"',
    sources=[os.path.relpath(os.path.join(CSRC, f)) for f in SOURCES],
    include_dirs=[os.path.relpath(CSRC)],
    depends=DEPENDS,
    extra_compile_args=CFLAGS,
    libraries=["m"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
