"""The functional API (docs/API.md), with JAX's names and return conventions.

Each transform records f once at the given arguments and sweeps that tape: a thin layer over
Tape, not a separate engine. Arguments, f's result and the shapes asked for are checked here
first, so that errors name the transform the user called (ad.grad, ad.hessian, ...).
"""
import reprlib

import numpy as np

from ._core import check, ffi, lib
from .convert import as_float_array as _as_float_array
from .tape import _MODES, record
from .array import Array
from .var import Var, _number


def _argnums(name, argnums, nargs):
    single = isinstance(argnums, (int, np.integer))
    if not single and not isinstance(argnums, (tuple, list)):
        raise TypeError(f"{name}: argnums must be an int or a tuple of ints, got {argnums!r}")
    nums = (argnums,) if single else tuple(argnums)
    if not nums:
        raise ValueError(f"{name}: argnums must name at least one argument")
    for a in nums:
        if not isinstance(a, (int, np.integer)):
            raise TypeError(f"{name}: argnums must be an int or a tuple of ints, got "
                            f"{argnums!r}")
        if not -nargs <= a < nargs:
            raise ValueError(f"{name}: argnums {argnums!r} out of range for {nargs} positional "
                             f"argument{'s' * (nargs != 1)}")
    return tuple(int(a) % nargs for a in nums), single


def _record(name, f, args, argnums):
    """Tape of f over the arguments argnums names, each once (the others stay plain values);
    whether argnums is one int; and for each entry of argnums, its input piece on the tape."""
    nums, single = _argnums(name, argnums, len(args))
    active = tuple(dict.fromkeys(nums))          # argnums=(0, 0): one input, asked twice
    for a in active:
        _as_float_array(args[a], f"{name}: argument {a}")

    def g(*xs):
        full = list(args)
        for a, v in zip(active, xs):
            full[a] = v
        return f(*full)
    return (record(_checked(name, g), *(args[a] for a in active)), single,
            [active.index(a) for a in nums])


def _record_at(name, f, primals):
    """Tape of f at primals (a tuple), each checked."""
    if not primals:
        raise TypeError(f"{name} needs at least one primal (an argument of f) to differentiate "
                        f"at")
    for k, p in enumerate(primals):
        _as_float_array(p, f"{name}: primal {k}")
    return record(_checked(name, f), *primals)


def _checked(name, f):
    """f, with its result checked as a tape's outputs are, in the words of the transform."""
    def g(*xs):
        y = f(*xs)
        if type(y) is not Var and type(y) is not Array:   # (a 0-d Array: its one element)
            _check_result(name, y)
        return y
    return g


def _check_result(name, y):
    try:
        items = np.asarray(y, dtype=object).flat
    except ValueError as e:
        raise ValueError(f"{name}: f must return a number or a regular (nested) array of "
                         f"numbers: {e}") from None
    for e in items:
        if type(e) is not Var and type(e) is not Array and _number(e) is None:
            got = reprlib.repr(y) if e is y else \
                f"a {type(y).__name__} holding a {type(e).__name__}"
            raise TypeError(f"{name}: f must return a number or a regular (nested) array of "
                            f"numbers (computed from its arguments, or constants); it returned "
                            f"{got}")


def _scalar(name, tape, hint):
    if tape.n_outputs != 1:
        raise ValueError(f"{name} needs f to return a scalar (one number); it returned an array "
                         f"of shape {tape._out_shape} ({hint})")


def _as_tuple(r, pieces):
    return r if pieces > 1 else (r,)


def _pick(r, pick):
    """Results per argnums entry from the tuple r of results per input piece; an argument
    named twice gets its own copy each time after the first (JAX's arrays do not alias)."""
    seen, out = set(), []
    for i in pick:
        out.append(_fresh(r[i]) if i in seen else r[i])
        seen.add(i)
    return tuple(out)


def _fresh(a):
    return a.copy() if isinstance(a, np.ndarray) else \
        tuple(_fresh(b) for b in a) if isinstance(a, tuple) else a


def _plain(x):
    """A number or a float64 vector: ad.record takes it in one C call, no checks needed here."""
    return type(x) is float or (type(x) is np.ndarray and x.dtype == np.float64 and x.ndim == 1)


def grad(f, argnums=0):
    """Gradient of a scalar-valued f with respect to args[argnums] (a tuple for a tuple)."""
    return _grad(f, argnums, "ad.grad", False)


def value_and_grad(f, argnums=0):
    """(f(*args), its gradient) from one recording: as ad.grad, with the value (JAX's name)."""
    return _grad(f, argnums, "ad.value_and_grad", True)


def _grad(f, argnums, name, with_value):
    checked = _checked(name, f)

    def grad_f(*args):
        if argnums == 0 and type(argnums) is int and len(args) == 1 and _plain(args[0]):
            tape = record(checked, args[0])          # the common case: one C call records f
            _scalar(name, tape, "ad.jacobian differentiates a vector-valued f")
            single, pick = True, None
        else:
            tape, single, pick = _record(name, f, args, argnums)
            _scalar(name, tape, "ad.jacobian differentiates a vector-valued f")
        vg = None if tape._rec.fast else _at_recording(tape._rec)
        if vg is None:
            y, g = tape.forward() if with_value else None, tape.gradient()
        else:
            y, g = vg
        g = g if single else _pick(_as_tuple(g, max(pick) + 1), pick)
        return (y, g) if with_value else g      # forward(): the recorded point
    grad_f.__name__ = f"{name[3:]}({getattr(f, '__name__', 'f')})"
    return grad_f


def _at_recording(rec):
    """(value, gradient) of a tape with one Var output at its recorded point, from the values
    of the recording: one adjoint sweep (tp_backward), no primal sweep. None for a constant
    output."""
    code = ffi.new("int32_t[1]")
    if lib.tp_output_code(rec._p, 0, code) < 0 or code[0] < 0:
        return None
    root = code[0]
    g = np.empty(rec.m)
    check(lib.tp_backward(rec._p, root, 1.0, ffi.from_buffer("double[]", g), rec.m), "gradient")
    return lib.tp_value(rec._p, root), rec.shape_x(g)


def jacobian(f, argnums=0, mode="auto"):
    """Jacobian of f, shaped f(x).shape + x.shape; mode "auto", "forward" or "reverse"."""
    return _jacobian("ad.jacobian", f, argnums, mode)


def _jacobian(name, f, argnums, mode):
    if mode not in _MODES:
        raise ValueError(f"{name}: mode must be one of {_MODES}, got {mode!r}")

    def jac_f(*args):
        tape, single, pick = _record(name, f, args, argnums)
        J = tape.jacobian(None, mode=mode)
        return J if single else _pick(_as_tuple(J, max(pick) + 1), pick)
    return jac_f


def jacfwd(f, argnums=0):
    """Jacobian by forward mode (one tangent direction per input)."""
    return _jacobian("ad.jacfwd", f, argnums, "forward")


def jacrev(f, argnums=0):
    """Jacobian by reverse mode (one adjoint direction per output)."""
    return _jacobian("ad.jacrev", f, argnums, "reverse")


_SCALAR_HESSIAN = "take the Hessian of a scalar, such as ad.dot(w, f(x)) for weights w"


def hessian(f, argnums=0):
    """Hessian of a scalar-valued f, shaped x.shape + x.shape; for a tuple argnums a nested
    tuple (H[i][j] shaped args[i].shape + args[j].shape), as JAX."""
    def hess_f(*args):
        tape, single, pick = _record("ad.hessian", f, args, argnums)
        _scalar("ad.hessian", tape, _SCALAR_HESSIAN)
        H = tape.hessian(None)
        if single:
            return H
        rows = H if max(pick) > 0 else ((H,),)          # blocks per input piece
        return _pick(tuple(_pick(row, pick) for row in rows), pick)
    return hess_f


def hvp(f, primals, tangents):
    """Hessian of scalar-valued f at primals applied to tangents (one forward-over-reverse
    sweep): shaped like the primal for one primal, a tuple for several."""
    primals, tangents = _pairs("ad.hvp", primals, tangents)
    tape = _record_at("ad.hvp", f, primals)
    _scalar("ad.hvp", tape, _SCALAR_HESSIAN)
    return tape.hvp(None, tangents[0] if len(tangents) == 1 else tangents)


def jvp(f, primals, tangents):
    """(f(*primals), J·tangents); primals and tangents are tuples of matching structure."""
    primals, tangents = _pairs("ad.jvp", primals, tangents)
    tape = _record_at("ad.jvp", f, primals)
    return tape.jvp(None, tangents[0] if len(tangents) == 1 else tangents)


def vjp(f, *primals):
    """(f(*primals), pullback) where pullback(w) is the tuple of cotangents w·J, one per
    primal."""
    tape = _record_at("ad.vjp", f, primals)
    y = tape.forward()

    def pullback(w):
        _as_float_array(w, "ad.vjp's pullback: the cotangent")
        _same_shapes("ad.vjp's pullback", "cotangent", (y,), (w,), "output")
        return _as_tuple(tape.vjp(None, w)[1], len(primals))
    return y, pullback


def _pairs(name, primals, tangents):
    """JAX's rules: primals and tangents are tuples or lists, one tangent per primal, each of
    its primal's shape (no batching here; the Tape methods take a direction axis)."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError(f"{name}: primals and tangents must be tuples or lists, one entry per "
                        f"argument of f, as in {name}(f, (x,), (v,)); got "
                        f"{type(primals).__name__} and {type(tangents).__name__}")
    for k, t in enumerate(tangents):
        _as_float_array(t, f"{name}: tangent {k}")
    _same_shapes(name, "tangent", primals, tangents)
    return tuple(primals), tuple(tangents)


def _same_shapes(what, name, primals, tangents, of="primal"):
    if len(primals) != len(tangents):
        raise ValueError(f"{what}: {len(primals)} primals but {len(tangents)} {name}s")
    for k, (p, t) in enumerate(zip(primals, tangents)):
        if np.shape(p) != np.shape(t):
            raise ValueError(f"{what}: {name} {k} has shape {np.shape(t)}, expected "
                             f"{np.shape(p)} (the shape of its {of})")
