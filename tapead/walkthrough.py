"""`python -m tapead`: the seed document's walkthrough on f(x1, x2) = x1·sqrt(log(x1 / sin(x2²))).

Sections as in the seed: the traces, the gradient by forward and reverse mode against the
hand-coded formula, numerical differences (truncation vs round-off), symbolic differentiation
(expression swell), the cost model (forward ∝ m·ops, reverse ∝ n·ops), and the toy neural
network trained by reverse mode.
"""
import math
import time

import numpy as np

import tapead as ad

X0 = (2.0, 1.0)
STEPS = [10.0 ** -k for k in range(1, 14)]


def f(x1, x2):
    return x1 * ad.sqrt(ad.log(x1 / ad.sin(x2 ** 2)))


def by_hand(x1, x2):
    """The seed's hand-coded partials: ∂f/∂x1 = √L + 1/(2√L), ∂f/∂x2 = −x1·x2·cot(x2²)·L^(−½)
    with L = log(x1 / sin(x2²))."""
    L = math.log(x1 / math.sin(x2 ** 2))
    return np.array([math.sqrt(L) + 1 / (2 * math.sqrt(L)),
                     -x1 * x2 / math.tan(x2 ** 2) / math.sqrt(L)])


def _heading(out, title):
    out(f"\n{title}\n{'─' * len(title)}")


def _swept(t):
    s = t.stats()["swept"]
    return np.array([s["primal"], s["tangent"], s["adjoint"]])


def record_seed():
    with ad.Tape() as t:
        x = t.variables(list(X0))             # inputs v[-1], v[0]
        t.outputs(f(x[0], x[1]))
    return t


def traces(out, t, ascii=False):
    _heading(out, "1. The computational graph as a Wengert list: the seed's traces")
    out("Recorded with\n    with ad.Tape() as t:\n        x1, x2 = t.variables([2.0, 1.0])\n"
        "        t.outputs(x1 * ad.sqrt(ad.log(x1 / ad.sin(x2 ** 2))))\n"
        "and printed by t.trace(v=[0, 1], dual=True): the tangent direction is x2, as in the\n"
        "seed. (The seed's tangent line for v5 = sqrt(v4) has a sign slip; the rule is\n"
        "d√u = +½·u^(−½)·du, as below.) Values, tangents, adjoints and local partials all\n"
        "come from the C sweeps; the text beside them is the op's rule, for reading.\n")
    out(t.trace(list(X0), v=[0.0, 1.0], dual=True, ascii=ascii))


def gradients(out, t):
    _heading(out, "2. The gradient: forward mode, reverse mode and the seed's hand-coded formula")
    for point in (list(X0), [3.0, 0.5]):
        s0 = _swept(t)
        fwd = np.array([t.jvp(point, e)[1] for e in np.eye(2)])     # m = 2 tangent sweeps
        s1 = _swept(t)
        rev = t.gradient(point)                                      # 1 adjoint sweep
        s2 = _swept(t)
        hand = by_hand(*point)
        out(f"at (x1, x2) = ({point[0]:g}, {point[1]:g}):  f = {t(point):.15g}")
        out(f"  forward mode, 2 tangent sweeps (jvp with e1, e2): {fwd[0]: .15f}  {fwd[1]: .15f}"
            f"   [{(s1 - s0)[1]} tangent op-visits]")
        out(f"  reverse mode, 1 adjoint sweep (gradient):         {rev[0]: .15f}  {rev[1]: .15f}"
            f"   [{(s2 - s1)[2]} adjoint op-visits]")
        out(f"  by hand: √L + 1/(2√L), −x1·x2·cot(x2²)/√L:          {hand[0]: .15f}  "
            f"{hand[1]: .15f}")
        out(f"  largest difference from the hand-coded formula: forward "
            f"{np.max(np.abs(fwd - hand)):.1e}, reverse {np.max(np.abs(rev - hand)):.1e}\n")
    out("t.jacobian(x, mode=\"forward\") carries all m directions in one sweep (m·ops tangent "
        "visits);\nmode=\"reverse\" carries n weight vectors (n·ops adjoint visits).")


def numerical(out, t, plot=None):
    _heading(out, "3. Numerical methods: finite differences for ∂f/∂x2 at (2, 1) against AD")
    exact = t.gradient(list(X0))[1]
    rows = []
    for h in STEPS:
        fd = ad.finite_diff(t, list(X0), h=h, method="forward")[1]
        cd = ad.finite_diff(t, list(X0), h=h, method="central")[1]
        rows.append((h, fd, abs(fd - exact), cd, abs(cd - exact)))
    out(f"AD (reverse mode): {exact:.15f}   exact to rounding, no step to choose\n")
    out(f"{'h':>7}  {'forward (f(x+h)−f(x))/h':>24} {'error':>9}   "
        f"{'central (f(x+h)−f(x−h))/2h':>27} {'error':>9}")
    for h, fd, fe, cd, ce in rows:
        out(f"{h:7.0e}  {fd:24.15f} {fe:9.1e}   {cd:27.15f} {ce:9.1e}")
    bf = min(rows, key=lambda r: r[2])
    bc = min(rows, key=lambda r: r[4])
    out(f"\nLarge h: truncation error (∝ h forward, ∝ h² central). Small h: round-off, ∝ ε/h "
        f"(ε = 2.2e-16):\n\"thou shalt not subtract numbers which are approximately equal\". "
        f"Best: forward {bf[2]:.0e} at h = {bf[0]:.0e},\ncentral {bc[4]:.0e} at h = {bc[0]:.0e};"
        f" AD agrees with the closed form to {abs(exact - by_hand(*X0)[1]):.0e}.")
    if plot:
        _plot(out, rows, plot)
    else:
        out("(python -m tapead --plot errors.png draws this table as a log-log plot; needs "
            "matplotlib)")


def _plot(out, rows, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        out(f"--plot {path}: matplotlib is not installed (pip install matplotlib); no plot.")
        return
    h = [r[0] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.loglog(h, [max(r[2], 1e-18) for r in rows], "o-", label="forward difference")
    ax.loglog(h, [max(r[4], 1e-18) for r in rows], "s-", label="central difference")
    ax.set_xlabel("step h")
    ax.set_ylabel("|error| against AD")
    ax.set_title("∂f/∂x2 at (2, 1): truncation (right) vs round-off (left)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    out(f"wrote the log-log plot to {path}")


def symbolic(out, depths=range(2, 8)):
    _heading(out, "4. Symbolic differentiation: expression swell")
    try:
        import sympy
    except ImportError:
        out("sympy is not installed: pip install sympy, then run python -m tapead again to see "
            "the size of\nsympy's derivative grow exponentially while the tape grows linearly.")
        return
    out("The logistic map l1 = x, l(n+1) = 4·l(n)·(1 − l(n)) (Baydin et al. 2018): sympy's "
        "d l(n)/dx\nagainst the tape of l(n), whose gradient costs one primal and one adjoint "
        "sweep over it.\n")
    out(f"{'n':>3} {'tape ops':>9} {'sympy ops in l(n)':>18} {'ops in dl/dx':>13} "
        f"{'len(str(dl/dx))':>16} {'AD − sympy at x=0.3':>20}")
    x = sympy.Symbol("x")
    for n in depths:
        expr = x
        for _ in range(n - 1):
            expr = 4 * expr * (1 - expr)
        d = sympy.diff(expr, x)

        def logistic(v, n=n):
            for _ in range(n - 1):
                v = 4 * v * (1 - v)
            return v
        tape = ad.record(logistic, 0.3)
        gap = tape.gradient(0.3) - float(d.subs(x, 0.3))
        out(f"{n:3d} {len(tape):9d} {sympy.count_ops(expr):18d} {sympy.count_ops(d):13d} "
            f"{len(str(d)):16d} {gap:20.1e}")
    out("\nThe tape stores each l(k) once and refers to it by index; the symbolic tree repeats "
        "it at every use.")


def _model(m, n):
    def F(x):
        s = ad.sum([ad.sin(a) * a for a in x])          # 2m + 1 operations
        return [ad.cos(s * (j + 1)) for j in range(n)]  # 2n operations
    return ad.record(F, np.linspace(0.1, 1.0, m))


def _best_time(fn, budget=0.05):
    best, spent = float("inf"), 0.0
    while spent < budget:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
    return best


def cost(out, shapes=((1, 1000), (10, 100), (100, 100), (100, 10), (1000, 1))):
    _heading(out, "5. The cost model: Jacobians of f: R^m → R^n, forward vs reverse")
    out("F(x) = [cos((j+1)·Σ sin(x_i)·x_i) for j < n]: about 2m + 2n operations. The tape "
        "counts every op it\nvisits (tape.stats()[\"swept\"]); a sweep carrying k directions "
        "counts k per op.\n")
    out(f"{'m':>5} {'n':>5} {'ops':>5} {'forward: tangent visits':>24} {'time':>9} "
        f"{'reverse: adjoint visits':>24} {'time':>9}  {'mode=auto':>9}")
    for m, n in shapes:
        t = _model(m, n)
        x = np.linspace(0.1, 1.0, m)
        s0 = _swept(t)
        Jf = t.jacobian(x, mode="forward")
        s1 = _swept(t)
        Jr = t.jacobian(x, mode="reverse")
        s2 = _swept(t)
        t.jacobian(x, mode="auto")
        s3 = _swept(t)
        assert np.allclose(Jf, Jr, rtol=1e-12, atol=1e-12)
        auto = "forward" if (s3 - s2)[1] else "reverse"
        tf = _best_time(lambda: t.jacobian(x, mode="forward"))
        tr = _best_time(lambda: t.jacobian(x, mode="reverse"))
        out(f"{m:5d} {n:5d} {len(t):5d} {(s1 - s0)[1]:24d} {tf * 1e6:7.0f}µs "
            f"{(s2 - s1)[2]:24d} {tr * 1e6:7.0f}µs  {auto:>9}")
    out("\nForward visits = m·ops, reverse = n·ops: reverse mode wins when n ≪ m (a gradient: "
        "n = 1),\nforward when m ≪ n. mode=\"auto\" picks forward when m ≤ 1.5·n (an adjoint "
        "direction costs\nabout 1.5 tangent directions), else reverse.")


def network(out, steps=50, seed=0):
    _heading(out, "6. A toy neural network trained by reverse mode")
    n, d_in, h, d_out, lr = 64, 1000, 100, 10, 1e-4
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, d_in)), rng.normal(size=(n, d_out))
    w0 = [rng.uniform(-0.03, 0.03, (d_in, h)), rng.uniform(-0.03, 0.03, h),
          rng.uniform(-0.1, 0.1, (h, d_out)), rng.uniform(-0.1, 0.1, d_out)]

    def loss(W1, b1, W2, b2):                  # the seed's network, written with NumPy
        hid = np.maximum(x @ W1 + b1, 0.0)
        return np.sum((hid @ W2 + b2 - y) ** 2)

    def by_hand(w):                            # backpropagation written out, the oracle
        W1, b1, W2, b2 = w
        z = x @ W1 + b1
        hid = np.maximum(z, 0.0)
        r = hid @ W2 + b2 - y
        g = 2.0 * r
        gh = g @ W2.T * (z > 0)
        return np.sum(r ** 2), (x.T @ gh, gh.sum(0), hid.T @ g, g.sum(0))

    t = ad.record(loss, *w0)                   # once: the weights are the tape's inputs
    ways = {"replay the recorded tape (t.vjp(w, 1.0))": lambda w: t.vjp(tuple(w), 1.0),
            "record every step (ad.value_and_grad)":
                lambda w, vg=ad.value_and_grad(loss, argnums=(0, 1, 2, 3)): vg(*w),
            "backpropagation by hand (NumPy)": by_hand}
    out(f"The seed's two-layer ReLU network (N={n}, D_in={d_in}, H={h}, D_out={d_out}, sum of "
        f"squares,\nSGD lr={lr}), recorded from NumPy code: {len(t)} tape operations "
        f"({', '.join(f'{k} {v}' for k, v in t.stats()['by_opcode'].items())}).\n")
    curves = {}
    for name, step in ways.items():
        w = [a.copy() for a in w0]
        losses, fastest = [], float("inf")
        for _ in range(steps):
            t0 = time.perf_counter()
            value, grads = step(w)
            for p, g in zip(w, grads):
                p -= lr * g
            fastest = min(fastest, time.perf_counter() - t0)    # (a shared machine adds time)
            losses.append(float(value))
        curves[name] = (np.array(losses), fastest)
    ref = curves["backpropagation by hand (NumPy)"][0]
    out(f"{'':44}{'loss at step 0':>15}{steps - 1:>7}  {'max rel. diff':>14}  {'a step':>9}")
    for name, (c, dt) in curves.items():
        diff = float(np.max(np.abs(c - ref) / ref))
        out(f"{name:44}{c[0]:15.6g}{c[-1]:7.4g}  {diff:14.1e}  {dt * 1e3:7.2f}ms")
    out("\nThe same losses to rounding: the tape's gradient is the backpropagation the seed "
        "derives by hand.\nbench/test_bench_network.py times 500 steps of each way against "
        "PyTorch.")


def run(out=print, plot=None, ascii=False):
    t_start = time.perf_counter()
    out("tapead: the seed's walkthrough on f(x1, x2) = x1·sqrt(log(x1 / sin(x2²)))")
    out("=" * 74)
    t = record_seed()
    traces(out, t, ascii=ascii)
    gradients(out, t)
    numerical(out, t, plot=plot)
    symbolic(out)
    cost(out)
    network(out)
    out(f"\nNext: python -m tapead trace \"x1 * sqrt(log(x1 / sin(x2 ** 2)))\" --at x1=2 x2=1 "
        f"--tangent x2 --dot graph.svg\n(walkthrough took {time.perf_counter() - t_start:.1f} s)")
