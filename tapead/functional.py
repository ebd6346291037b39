"""The functional API of API.md section 3, with JAX's names and return conventions.

Each transform records f once at the given arguments and sweeps that tape: a thin layer over
Tape, not a separate engine.
"""
import numpy as np

from .tape import record


def _argnums(argnums, nargs):
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    if not nums:
        raise ValueError("argnums must name at least one argument")
    for a in nums:
        if not isinstance(a, int) or not -nargs <= a < nargs:
            raise ValueError(f"argnums {argnums!r} out of range for {nargs} positional "
                             f"arguments")
    return tuple(a % nargs for a in nums), single


def _record(f, args, argnums):
    """Tape of f over args[argnums] (the other arguments stay plain values)."""
    nums, single = _argnums(argnums, len(args))

    def g(*active):
        full = list(args)
        for a, v in zip(nums, active):
            full[a] = v
        return f(*full)
    return record(g, *(args[a] for a in nums)), single, len(nums)


def _as_tuple(r, pieces):
    return r if pieces > 1 else (r,)


def grad(f, argnums=0):
    """Gradient of a scalar-valued f with respect to args[argnums] (a tuple for a tuple)."""
    whole = type(argnums) is int and argnums in (0, -1)    # grad(f)(x): f itself is recorded

    def grad_f(*args):
        if whole and len(args) == 1:
            return record(f, args[0]).gradient()
        tape, single, pieces = _record(f, args, argnums)
        g = tape.gradient()
        return g if single else _as_tuple(g, pieces)
    return grad_f


def jacobian(f, argnums=0, mode="auto"):
    """Jacobian of f, shaped f(x).shape + x.shape; mode "auto", "forward" or "reverse"."""
    def jac_f(*args):
        tape, single, pieces = _record(f, args, argnums)
        J = tape.jacobian(None, mode=mode)
        return J if single else _as_tuple(J, pieces)
    return jac_f


def jacfwd(f, argnums=0):
    """Jacobian by forward mode (one tangent direction per input)."""
    return jacobian(f, argnums, mode="forward")


def jacrev(f, argnums=0):
    """Jacobian by reverse mode (one adjoint direction per output)."""
    return jacobian(f, argnums, mode="reverse")


def hessian(f, argnums=0):
    """Hessian of a scalar-valued f, shaped x.shape + x.shape; for a tuple argnums a nested
    tuple (H[i][j] shaped args[i].shape + args[j].shape), as JAX."""
    def hess_f(*args):
        tape, single, pieces = _record(f, args, argnums)
        H = tape.hessian(None)
        if single or pieces > 1:
            return H
        return ((H,),)
    return hess_f


def hvp(f, primals, tangents):
    """Hessian of scalar-valued f at primals applied to tangents (one forward-over-reverse
    sweep): shaped like the primal for one primal, a tuple for several."""
    primals, tangents = tuple(primals), tuple(tangents)
    _same_shapes("hvp", "tangent", primals, tangents)
    tape = record(f, *primals)
    return tape.hvp(None, tangents[0] if len(tangents) == 1 else tangents)


def jvp(f, primals, tangents):
    """(f(*primals), J·tangents); primals and tangents are tuples of matching structure."""
    primals, tangents = tuple(primals), tuple(tangents)
    _same_shapes("jvp", "tangent", primals, tangents)
    tape = record(f, *primals)
    return tape.jvp(None, tangents[0] if len(tangents) == 1 else tangents)


def vjp(f, *primals):
    """(f(*primals), pullback) where pullback(w) is the tuple of cotangents w·J, one per
    primal."""
    tape = record(f, *primals)
    y = tape.forward()

    def pullback(w):
        _same_shapes("vjp", "cotangent", (y,), (w,))
        return _as_tuple(tape.vjp(None, w)[1], len(primals))
    return y, pullback


def _same_shapes(what, name, primals, tangents):
    """JAX's rule: one tangent per primal, of the primal's shape (no batching here; the Tape
    methods take a direction axis)."""
    if len(primals) != len(tangents):
        raise ValueError(f"{what}: {len(primals)} primals but {len(tangents)} {name}s")
    for k, (p, t) in enumerate(zip(primals, tangents)):
        if np.shape(p) != np.shape(t):
            raise ValueError(f"{what}: {name} {k} has shape {np.shape(t)}, expected "
                             f"{np.shape(p)} (the shape of its primal)")
