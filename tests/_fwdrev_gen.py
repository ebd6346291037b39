"""Random tapes and points for test_attack_fwdrev.py (a helper module, not a test file)."""
import numpy as np

import tapead as ad

INF, NAN = np.inf, np.nan

CONSTS = [0.0, -0.0, INF, -INF, NAN, 1.0, -1.0, 2.5, 0.5, -3.0]
HUGE_TINY = [1e308, -1e308, 1e-308, 5e-324, 1e154, 1e-160]
SPECIAL = [0.0, -0.0, INF, -INF, NAN, 1.0, -1.0, 0.5, 2.0, -3.0]

UNARY = {
    "neg": lambda u: -u, "square": lambda u: u ** 2, "sqrt": ad.sqrt, "cbrt": ad.cbrt,
    "exp": ad.exp, "expm1": ad.expm1, "log": ad.log, "log1p": ad.log1p, "log2": ad.log2,
    "log10": ad.log10, "sin": ad.sin, "cos": ad.cos, "tan": ad.tan, "asin": ad.asin,
    "acos": ad.acos, "atan": ad.atan, "sinh": ad.sinh, "cosh": ad.cosh, "tanh": ad.tanh,
    "asinh": ad.asinh, "acosh": ad.acosh, "atanh": ad.atanh, "erf": ad.erf, "abs": ad.abs,
    "sign": ad.sign,
}
BINARY = {
    "add": lambda u, v: u + v, "sub": lambda u, v: u - v, "mul": lambda u, v: u * v,
    "div": lambda u, v: u / v, "pow": lambda u, v: u ** v, "atan2": ad.atan2,
    "hypot": ad.hypot, "maximum": ad.maximum, "minimum": ad.minimum,
    "where": lambda u, v: ad.where(u > v, u, v * 2.0),
    "where0": lambda u, v: (ad.where(u > 0.0, v, u) if isinstance(u, ad.Var)
                            else ad.where(v > 0.0, u, v)),
}


def _nary_dot(args):
    n = len(args) // 2 * 2
    if n == 0:
        return args[0]
    return ad.dot(list(args[:n:2]), list(args[1:n:2]))


def scalar_program(rng, m, n_ops, consts, tree=False, binary=None, unary=None):
    """A random program: a list of steps (kind, name, operand refs); a ref is ('v', i) or
    ('c', value). tree: every variable (inputs included) is used at most once, so that each
    Jacobian entry is the product along one path (no sum of paths to cancel); the outputs are
    then taken from the unused variables."""
    steps = []
    pool = list(range(m))                  # tree: the variables not used yet
    nvar = m
    names_u, names_b = list(unary or UNARY), list(binary or BINARY)

    def var():
        if tree:
            k = len(pool) - 1 - min(int(rng.exponential(1.5)), len(pool) - 1)
            return ("v", pool.pop(k))
        return ("v", nvar - 1 - min(int(rng.exponential(2.0)), nvar - 1))

    def ref():
        if rng.random() < 0.3 or (tree and not pool):
            return ("c", consts[rng.integers(len(consts))])
        return var()

    for _ in range(n_ops):
        r = rng.random()
        if r < 0.45:
            steps.append(("u", names_u[rng.integers(len(names_u))], [var()]))
        elif r < 0.9:
            ops = [var(), ref()]
            if rng.random() < 0.5:
                ops.reverse()
            steps.append(("b", names_b[rng.integers(len(names_b))], ops))
        else:
            k = int(rng.integers(2, 5))
            ops = [var()] + [ref() for _ in range(k - 1)]
            steps.append(("n", "sum" if rng.random() < 0.5 else "dot", ops))
        pool.append(nvar)
        nvar += 1
    return steps, (pool if tree else None)


def run_program(steps, xs):
    vals = list(xs)

    def get(r):
        return r[1] if r[0] == "c" else vals[r[1]]

    for kind, name, ops in steps:
        args = [get(r) for r in ops]
        if kind == "u":
            vals.append(UNARY[name](args[0]))
        elif kind == "b":
            vals.append(BINARY[name](args[0], args[1]))
        elif name == "sum":
            vals.append(ad.sum(args))
        else:
            vals.append(_nary_dot(args))
    return vals


def record_scalar(rng, m, n_ops, n_out, consts=CONSTS, tree=False, binary=None, unary=None):
    steps, pool = scalar_program(rng, m, n_ops, consts, tree, binary, unary)
    x0 = rng.uniform(0.2, 0.9, m)
    with ad.Tape() as t:
        xs = list(t.variables(x0))
        vals = run_program(steps, xs)
        outs = [vals[pool[-1 - i] if tree else -1 - i] for i in range(min(n_out, len(pool) if tree else n_out))]
        t.outputs(outs)
    return t, steps


def point(rng, m, specials=SPECIAL, p_special=0.6):
    x = rng.uniform(-3.0, 3.0, m)
    for i in range(m):
        if rng.random() < p_special:
            x[i] = specials[rng.integers(len(specials))]
    return x


# ---- array programs ---------------------------------------------------------------------------
ARR_UNARY = ["neg", "square", "sqrt", "cbrt", "exp", "log", "log1p", "sin", "tan", "asin",
             "acosh", "atanh", "tanh", "erf", "abs", "sign", "cosh"]
ARR_BINARY = ["add", "sub", "mul", "div", "pow", "atan2", "hypot", "maximum", "minimum",
              "logaddexp"]
_ARR_BIN = {"add": lambda u, v: u + v, "sub": lambda u, v: u - v, "mul": lambda u, v: u * v,
            "div": lambda u, v: u / v, "pow": lambda u, v: u ** v, "atan2": np.arctan2,
            "hypot": np.hypot, "maximum": np.maximum, "minimum": np.minimum,
            "logaddexp": np.logaddexp}


def _const_array(rng, shape, consts):
    c = rng.uniform(-2.0, 2.0, shape)
    flat = c.reshape(-1)
    for i in range(flat.size):
        if rng.random() < 0.5:
            flat[i] = consts[rng.integers(len(consts))]
    return c


def array_program(rng, shape, n_ops, consts, tree):
    """A random array program, a function of one input array of `shape` ((3,) or (2, 3)).
    tree: every array is used once (a where's condition aside: it has no derivative) and no
    reduction is broadcast back, so that each Jacobian entry is the product along one path."""
    n0 = shape[-1]
    steps = []
    for _ in range(n_ops):
        r = rng.random()
        if r < 0.3:
            steps.append(("u", ARR_UNARY[rng.integers(len(ARR_UNARY))]))
        elif r < 0.55:
            bshape = [shape, shape[-1:], (1,) * len(shape), ()][rng.integers(4)]
            steps.append(("bc", ARR_BINARY[rng.integers(len(ARR_BINARY))],
                          _const_array(rng, bshape, consts), bool(rng.random() < 0.5)))
        elif r < 0.67:                     # tree: it mixes the elements, so only at the end
            if not tree:
                steps.append(("matmul", _const_array(rng, (n0, n0), consts), bool(rng.random() < 0.5)))
        elif r < 0.74:
            steps.append(("gather", rng.permutation(n0) if tree else rng.integers(0, n0, n0)))
        elif r < 0.82:
            steps.append(("where", _const_array(rng, shape, consts), _const_array(rng, (n0,), consts)))
        elif r < 0.9:
            steps.append(("split", ARR_BINARY[rng.integers(len(ARR_BINARY))]))
        elif not tree:
            steps.append(("fold", ["sum", "prod", "max", "min", "vv"][rng.integers(5)]))
    final = ["sum", "prod", "max", "vv", "matmul", "none"][rng.integers(6)]
    cfinal = _const_array(rng, (n0, 2), consts)

    def f(x):
        a = x
        for s in steps:
            k, n = s[0], a.shape[-1]
            if k == "u":
                a = UNARY[s[1]](a)
            elif k == "bc":
                c = s[2][..., :n] if s[2].ndim else s[2]
                a = _ARR_BIN[s[1]](a, c) if s[3] else _ARR_BIN[s[1]](c, a)
            elif k == "matmul":
                c = s[1][:n, :n]
                a = a @ c if s[2] else a @ c.T
            elif k == "gather":
                a = a[..., s[1][:n] % n]
            elif k == "where":
                a = np.where(a > s[1][..., :n], a, s[2][:n])
            elif k == "split" and n >= 2:        # two halves of the last axis, combined
                h = n // 2
                b = _ARR_BIN[s[1]](a[..., :h], a[..., n - h:])
                a = np.concatenate([b, a[..., h: n - h]], axis=-1) if n - 2 * h else b
            elif k == "fold":
                if s[1] == "vv":                  # a product of two variable blocks
                    flat = a.reshape(-1)
                    a = a * (flat @ flat[::-1])
                else:
                    red = {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min}[s[1]]
                    a = a - red(a, axis=-1, keepdims=True)
        if final == "sum":
            return np.sum(a, axis=-1)
        if final == "prod":
            return np.prod(a, axis=-1)
        if final == "max":
            return np.max(a, axis=-1)
        if final == "matmul":
            return a @ cfinal[: a.shape[-1]]
        if final == "vv":
            flat = a.reshape(-1)
            h = flat.shape[0] // 2
            return flat[:h] @ flat[flat.shape[0] - h:] if h else flat
        return a

    return f, steps, final
