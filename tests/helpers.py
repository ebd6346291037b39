"""Code shared by the test files (not tests): the seed's f and its closed-form gradient, the
Horner polynomial, the benchmarks' Rosenbrock loop and chain family, running a function in
several threads at once and the random programs of the hypothesis tests. The op test cases are in
op_cases.py.

tests/ has no __init__.py: pytest puts tests/ on sys.path, so the test files import this module
as ``from helpers import ...``.
"""
import math
import os
import sys
import threading

import numpy as np

import tapead as ad

# ---- the benchmarks' problems (bench/benchlib.py): the tests check the functions bench/ times --
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "bench"))
from benchlib import chain_family, chain_jacobian, rosen_loop  # noqa: E402,F401


# ---- the seed's f -----------------------------------------------------------------------------
def seed_f(x1, x2):
    return x1 * ad.sqrt(ad.log(x1 / ad.sin(x2 ** 2)))


def seed_grad(x1, x2):
    """The closed-form gradient of f(x1, x2) = x1 sqrt(log(x1 / sin(x2^2))):
    df/dx1 = sqrt(L) + 1 / (2 sqrt(L)), df/dx2 = -x1 x2 cot(x2^2) / sqrt(L), L = log(x1/sin x2^2).
    """
    L = math.log(x1 / math.sin(x2 ** 2))
    return np.array([math.sqrt(L) + 1.0 / (2.0 * math.sqrt(L)),
                     -x1 * x2 / math.tan(x2 ** 2) / math.sqrt(L)])


def seed_f_vec(x):
    """The seed's f of one input vector x = (x1, x2)."""
    return seed_f(x[0], x[1])


def seed_grad_vec(x):
    """seed_grad of one point x = (x1, x2)."""
    x1, x2 = x
    return seed_grad(x1, x2)


# ---- poly: a Horner polynomial ------------------------------------------------------------------
def poly(a, z):
    """p(z) = a_0 + a_1 z + ... + a_n z^n by Horner's rule."""
    p = a[-1]
    for c in a[-2::-1]:
        p = p * z + c
    return p


# ---- threads ------------------------------------------------------------------------------------
def in_thread(fn):
    """Run fn in another thread: {"result": ...} or {"error": the exception it raised}."""
    box = {}

    def run():
        try:
            box["result"] = fn()
        except BaseException as e:           # noqa: BLE001 - handed to the main thread
            box["error"] = e
    th = threading.Thread(target=run)
    th.start()
    th.join()
    return box


def run_in_threads(body, n_threads):
    """Run body(k) for k in range(n_threads), each in its own thread, all released at once by a
    barrier; the first exception a thread raised is raised again here."""
    barrier = threading.Barrier(n_threads)
    errors = []

    def worker(k):
        try:
            barrier.wait()
            body(k)
        except BaseException as e:          # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]


# ---- random programs (hypothesis) ---------------------------------------------------------------
BINARY = {
    "add": lambda u, v: u + v, "sub": lambda u, v: u - v, "mul": lambda u, v: u * v,
    "div": lambda u, v: u / (1.0 + v * v), "pow": lambda u, v: (u * u + 1.0) ** ad.sin(v),
    "hypot": lambda u, v: ad.hypot(u, v * v + 0.5), "atan2": lambda u, v: ad.atan2(u, v * v + 1.0),
    "sum": lambda u, v: ad.sum([u, v, u * v]), "dot": lambda u, v: ad.dot([u, v], [v, ad.sin(u)]),
}


def record_program(m, body, outs, xs, unary):
    """A random program's x and tape, recorded where its values are finite and moderate
    (hypothesis.assume skips the others)."""
    from hypothesis import assume
    prog = (m, body, outs)
    x = np.array(xs[:m])
    y = np.array([float(v) for v in run_program(prog, x, unary)])
    assume(np.all(np.isfinite(y)) and np.abs(y).max() < 1e4)
    return prog, x, ad.record(lambda u: run_program(prog, u, unary), x)


def run_program(prog, x, unary, binary=BINARY):
    """Run a program (m inputs, steps, output picks) on Vars or floats: a DAG that reuses any
    earlier value, with short loops; steps name functions of unary and binary."""
    m, body, outs = prog
    vals = [x[i] for i in range(m)]
    for s in body:
        if s[0] == "u":
            vals.append(unary[s[1]](vals[s[2] % len(vals)]))
        elif s[0] == "b":
            vals.append(binary[s[1]](vals[s[2] % len(vals)], vals[s[3] % len(vals)]))
        else:
            acc, other = vals[s[2] % len(vals)], vals[s[3] % len(vals)]
            for _ in range(s[4]):
                acc = binary[s[1]](acc, other)
                vals.append(acc)
    return [vals[-1 - (o % len(vals))] for o in outs]


def program_steps(unary, binary=BINARY):
    """The hypothesis strategy of a program's steps: unary, binary and loop steps over the names
    of unary and binary (hypothesis needed)."""
    from hypothesis import strategies as st
    return st.lists(st.one_of(
        st.tuples(st.just("u"), st.sampled_from(sorted(unary)), st.integers(0, 999)),
        st.tuples(st.just("b"), st.sampled_from(sorted(binary)), st.integers(0, 999),
                  st.integers(0, 999)),
        st.tuples(st.just("loop"), st.sampled_from(sorted(binary)), st.integers(0, 999),
                  st.integers(0, 999), st.integers(2, 4))), min_size=1, max_size=12)


def raised_in_another_thread(fn):
    """The exception fn() raised in a thread of its own (None: it returned)"""
    caught = []

    def body():
        try:
            fn()
        except BaseException as e:          # noqa: BLE001 - handed to the caller
            caught.append(e)
    th = threading.Thread(target=body)
    th.start()
    th.join()
    return caught[0] if caught else None
