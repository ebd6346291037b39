from setuptools import setup

# Metadata lives in pyproject.toml; this file only hooks the cffi build of csrc/ into setuptools.
setup(cffi_modules=["tapead/_build.py:ffibuilder"])
