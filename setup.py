import importlib.util
import os
import shutil

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

# Metadata lives in pyproject.toml. Two compiled modules, one set of compiler flags and header
# dependencies (tapead/_build.py, loaded by path: the package is not importable before it is built):
#   tapead._tapead  the C core (csrc/*.c), cffi API mode, built by tapead/_build.py
#   tapead._fast    the hot paths in CPython's C API (csrc/fast.c): Var's number protocol, small
#                   replays and records, calling the core through its typed table (core_api.h)
_spec = importlib.util.spec_from_file_location(
    "_tapead_build", os.path.join(os.path.dirname(os.path.abspath(__file__)), "tapead", "_build.py"))
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)



class build_py_headers(build_py):
    """csrc's headers installed as tapead/include/: native kernels include them (tapead/native.py)."""

    def run(self):
        super().run()
        dst = os.path.join(self.build_lib, "tapead", "include")
        os.makedirs(dst, exist_ok=True)
        for h in os.listdir("csrc"):
            if h.endswith(".h"):
                shutil.copy(os.path.join("csrc", h), dst)


setup(
    cmdclass={"build_py": build_py_headers},
    cffi_modules=["tapead/_build.py:ffibuilder"],
    ext_modules=[Extension("tapead._fast", ["csrc/fast.c"], include_dirs=["csrc"],
                           depends=build.DEPENDS, extra_compile_args=build.CFLAGS)],
)
