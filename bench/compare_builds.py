"""Two builds of tapead side by side in one process: sweep ns/op and bytes/op on a Rosenbrock tape.

    python bench/compare_builds.py OLD NEW [--ops 1000000] [--rounds 400]

OLD and NEW are source trees with their extensions built in place (``pip install -e .`` or
``python setup.py build_ext --inplace``), e.g. ``git archive main | tar -x -C /tmp/main`` then a
build there. Each tree's ``tapead`` package is copied under another name (tapead_a, tapead_b: the
package imports itself relatively), both record the same Rosenbrock tape, and their primal sweeps
(tape.forward) and gradients (primal + adjoint) run alternately, the order swapped every round,
so both see the same machine load; the best of the rounds is reported (a noisy shared machine
adds time, never removes it). The adjoint is best gradient minus best primal.
"""
import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time

import numpy as np
from scipy.optimize import rosen, rosen_der

from benchlib import rosen_loop


def load(tree, name, into):
    shutil.copytree(os.path.join(tree, "tapead"), os.path.join(into, name),
                    ignore=shutil.ignore_patterns("__pycache__"))
    return importlib.import_module(name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--ops", type=int, default=10**6, help="tape size (8 ops per input)")
    ap.add_argument("--rounds", type=int, default=400)
    a = ap.parse_args()
    n = a.ops // 8 + 1
    x0 = np.random.default_rng(0).uniform(-2.0, 2.0, n)
    x1 = np.random.default_rng(1).uniform(-2.0, 2.0, n)
    with tempfile.TemporaryDirectory() as tmp:
        sys.path.insert(0, tmp)
        tapes = {}
        for label, tree, name in (("old", a.old, "tapead_a"), ("new", a.new, "tapead_b")):
            ad = load(os.path.abspath(tree), name, tmp)
            t = ad.record(rosen_loop, x0)
            np.testing.assert_allclose(t.forward(x1), rosen(x1), rtol=1e-12)
            np.testing.assert_allclose(t.gradient(x1), rosen_der(x1), rtol=1e-12, atol=1e-10)
            tapes[label] = t
        best = {(b, k): np.inf for b in tapes for k in ("primal", "gradient")}
        for r in range(a.rounds):
            for b in ("old", "new") if r % 2 == 0 else ("new", "old"):
                t = tapes[b]
                for kind, fn in (("primal", t.forward), ("gradient", t.gradient)):
                    start = time.perf_counter()
                    fn(x1)
                    best[b, kind] = min(best[b, kind], time.perf_counter() - start)
        for b, t in tapes.items():
            ops = len(t)
            p, g = best[b, "primal"] / ops * 1e9, best[b, "gradient"] / ops * 1e9
            print(f"{b}: {ops} ops, {t.nbytes / ops:.3f} B/op, primal {p:.3f} ns/op, "
                  f"gradient {g:.3f} ns/op, adjoint {g - p:.3f} ns/op (best of {a.rounds})")


if __name__ == "__main__":
    main()
