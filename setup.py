from setuptools import Extension, setup

# Metadata lives in pyproject.toml. Two compiled modules:
#   tapead._tapead  the C core (csrc/tape.c, csrc/sweep.c), cffi API mode, built by tapead/_build.py
#   tapead._fast    the hot paths in CPython's C API (csrc/fast.c): Var's number protocol and
#                   small replays, calling the core's functions directly
CFLAGS = ["-O3", "-std=c99", "-ffp-contract=off", "-fno-fast-math"]
setup(
    cffi_modules=["tapead/_build.py:ffibuilder"],
    ext_modules=[Extension("tapead._fast", ["csrc/fast.c"], include_dirs=["csrc"],
                           depends=["csrc/tape.h"], extra_compile_args=CFLAGS)],
)
