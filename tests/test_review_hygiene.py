"""Regression tests for the hostile review's hygiene findings (items 4, 5, 11-15): copied
primitives, duplicated argnums, the primitive registry's leak, trace/to_dot racing a
re-recording, input validation, a machine without the optional tools, and error messages."""
import copy
import gc
import importlib
import math
import os
import pickle
import re
import shutil
import subprocess
import sys
import threading
import time
import weakref

import numpy as np
import pytest

import tapead as ad
from tapead import graph

primitive_mod = importlib.import_module("tapead.primitive")   # ad.primitive is the function

SEED = "x1 * sqrt(log(x1 / sin(x2 ** 2)))"


# ---- item 11: the primitive registry frees what is gone ---------------------------------------------
def _make_primitive(scale):
    big = np.full(100_000, scale)                    # a large captured object (800 kB)

    def fun(x):
        return x * big[0]

    p = ad.primitive(fun, jvp=lambda x, v: big[0] * v[0], vjp=lambda x, w: (big[0] * w,))
    return p, big


def test_item11_primitives_and_their_captures_are_freed():
    gc.collect()
    before = len(primitive_mod._registry)
    refs = []
    for k in range(30):                              # a primitive made per "optimiser step"
        p, big = _make_primitive(float(k + 1))
        tape = ad.record(lambda x: p(x) * x, 2.0)
        assert tape.gradient(3.0) == 2 * 3.0 * (k + 1)
        assert tape.jvp(3.0, 1.0)[1] == 2 * 3.0 * (k + 1)
        with ad.Tape() as t:
            x = t.variables(np.array([1.0, 2.0]))
            t.outputs(p(x[0]) + p(x[1]))
        assert t.gradient(np.array([5.0, 6.0])).tolist() == [k + 1.0, k + 1.0]
        refs.append((weakref.ref(p), weakref.ref(big)))
        del p, big, tape, t, x
    gc.collect()
    alive = [k for k, (rp, rb) in enumerate(refs) if rp() is not None or rb() is not None]
    assert alive == [], f"primitives (or what they capture) still alive: {alive}"
    assert len(primitive_mod._registry) <= before + 2      # ids are reused, not piled up


def test_item11_a_tape_keeps_its_primitives_alive():
    p, big = _make_primitive(3.0)
    rp, rb = weakref.ref(p), weakref.ref(big)
    with ad.Tape() as t:                             # imperative: no f holding p
        x = t.variables(2.0)
        y = p(x) * x
        t.outputs(y)
    del p, big
    gc.collect()
    assert rp() is not None and rb() is not None
    for _ in range(3):                               # other primitives come and go meanwhile
        q, _big = _make_primitive(7.0)
        ad.record(lambda u: q(u), 1.0).gradient(2.0)
        del q, _big
        gc.collect()
    assert t.gradient(4.0) == 2 * 3.0 * 4.0
    assert t.jvp(4.0, 1.0)[1] == 24.0
    assert t.jacobian(5.0, mode="reverse") == 30.0
    y.backward()
    assert x.grad == 12.0
    assert "v̄[0]" in t.trace(4.0)
    del t
    gc.collect()
    assert rp() is not None                          # the Vars x, y still hold the recording
    assert y.tape.gradient(1.0) == 6.0
    del x, y
    gc.collect()
    assert rp() is None and rb() is None
