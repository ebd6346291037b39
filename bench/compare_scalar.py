"""Scalar tapes, two builds side by side in one process: recording and replay times of the
scalar benchmarks (Rosenbrock's loop over x[i], the seed's f) on an OLD and a NEW tree.

    OPENBLAS_NUM_THREADS=1 python bench/compare_scalar.py OLD NEW [--rounds 200]

As compare_builds.py: each tree's ``tapead`` (extensions built in place) is imported under its
own name, the cases run alternately (order swapped every round) and the best of the rounds is
reported with the ratio NEW / OLD. Made to check that ad.Array inputs by default (f gets an
ad.Array, not an object ndarray of Var) cost scalar code nothing.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

from benchlib import SEED_X, SEED_X_NEW, rosen_loop
from compare_builds import load


def cases(ad):
    def seed_tape_f(x):                 # benchlib.seed_tape_f with this build's functions
        return x[0] * ad.sqrt(ad.log(x[0] / ad.sin(x[1] ** 2)))

    def seed2(x1, x2):
        return x1 * ad.sqrt(ad.log(x1 / ad.sin(x2 ** 2)))
    out = {}
    for n in (10**3, 10**4):
        x = np.random.default_rng(n).uniform(-2.0, 2.0, n)
        t = ad.record(rosen_loop, x)
        out[f"rosen n={n}: ad.record(f, x).gradient()"] = \
            lambda x=x: ad.record(rosen_loop, x).gradient()
        out[f"rosen n={n}: tape.gradient(x)"] = lambda t=t, x=x: t.gradient(x)
    xs = np.array(SEED_X)
    xn = np.array(SEED_X_NEW)
    t1 = ad.record(seed_tape_f, xs)
    g = ad.grad(seed_tape_f)
    out["seed: ad.record(f, array).gradient()"] = lambda: ad.record(seed_tape_f, xs).gradient()
    out["seed: ad.record(f, x1, x2).gradient()"] = \
        lambda: ad.record(seed2, *SEED_X).gradient()
    out["seed: ad.grad(f)(array)"] = lambda: g(xs)
    out["seed: tape.gradient(array)"] = lambda: t1.gradient(xn)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("-k", default="", help="only the cases whose name contains this")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sys.path.insert(0, tmp)
        runs = {}
        for label, tree, name in (("old", a.old, "tapead_a"), ("new", a.new, "tapead_b")):
            runs[label] = cases(load(os.path.abspath(tree), name, tmp))
        names = [k for k in runs["old"] if a.k in k]
        best = {(b, k): np.inf for b in runs for k in names}
        for r in range(a.rounds):
            for k in names:
                reps = 1 if "n=10000" in k else 20
                for b in ("old", "new") if r % 2 == 0 else ("new", "old"):
                    fn = runs[b][k]
                    start = time.perf_counter()
                    for _ in range(reps):
                        fn()
                    best[b, k] = min(best[b, k], (time.perf_counter() - start) / reps)
        print(f"| case | old µs | new µs | new / old |\n| --- | ---: | ---: | ---: |")
        for k in names:
            o, n = best["old", k], best["new", k]
            print(f"| {k} | {o * 1e6:.2f} | {n * 1e6:.2f} | {n / o:.3f} |")


if __name__ == "__main__":
    main()
