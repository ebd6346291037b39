"""The seed's numerical methods, as a checker: finite differences and check_grads."""
import numpy as np

from .convert import as_float_array as _as_float_array
from .tape import record

_EPS = np.finfo(np.float64).eps


def finite_diff(f, x, h=None, method="central"):
    """Jacobian estimate of f at x by differences, shaped f(x).shape + x.shape.

    method "forward": (f(x + h e_i) - f(x)) / h, error O(h) + O(eps/h), default
    h = sqrt(eps)·max(1, |x_i|); "central": (f(x + h e_i) - f(x - h e_i)) / 2h, error O(h²) +
    O(eps/h), default h = cbrt(eps)·max(1, |x_i|). f is called on plain float arrays (a float
    for a scalar x).
    """
    if method not in ("forward", "central"):
        raise ValueError(f"method must be 'forward' or 'central', got {method!r}")
    x = _as_float_array(x, "x")
    xf = x.ravel()
    if h is None:
        base = np.sqrt(_EPS) if method == "forward" else np.cbrt(_EPS)
        steps = base * np.maximum(1.0, np.abs(xf))
    else:
        steps = np.broadcast_to(_as_float_array(h, "h"), xf.shape)
        if not np.all(np.isfinite(steps) & (steps > 0)):
            raise ValueError(f"h must be a positive finite step (or one per entry of x); got "
                             f"{h!r}")

    def call(v):
        y = f(float(v[0]) if x.ndim == 0 else v.reshape(x.shape))
        return np.asarray(y, dtype=np.float64)

    y0 = call(xf.copy()) if method == "forward" else None
    cols = []
    for i, hi in enumerate(steps):
        xp = xf.copy()
        xp[i] += hi
        hi = xp[i] - xf[i]                 # the step actually taken
        if hi == 0:                        # x + h == x
            at = "x" if x.ndim == 0 else f"x{[int(j) for j in np.unravel_index(i, x.shape)]}"
            raise ValueError(f"the step h = {float(steps[i])!r} is lost in rounding at {at} = "
                             f"{float(xf[i])!r}: give a larger h")
        if method == "forward":
            cols.append((call(xp) - y0) / hi)
        else:
            xm = xf.copy()
            xm[i] -= hi
            cols.append((call(xp) - call(xm)) / (2 * hi))
    yshape = cols[0].shape if cols else np.shape(call(xf))
    J = np.stack(cols, axis=-1) if cols else np.empty(yshape + (0,))
    return J.reshape(yshape + x.shape)


def check_grads(f, args, order=1, modes=("fwd", "rev"), eps=None, rtol=None, atol=None):
    """Check tapead's derivatives of f at args against central differences.

    args is a tuple of f's positional arguments. order=1: for each mode ("fwd": the Jacobian by
    tangent sweeps, "rev": by adjoint sweeps) every entry is compared with central differences
    of f. order=2 adds the Hessian (forward over reverse; of w·f for a vector f, w fixed and
    random) against central differences of the gradient that order 1 checked, as JAX checks the
    derivatives of derivatives. An entry passes when |AD - numeric| <= atol + rtol·|numeric|;
    otherwise AssertionError names the worst entry with both values. Defaults:
    eps = cbrt(machine eps)·max(1, |x|), rtol = atol = 1e-5.
    """
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    if isinstance(modes, str):
        modes = (modes,)
    for m in modes:
        if m not in ("fwd", "rev"):
            raise ValueError(f"modes must be drawn from ('fwd', 'rev'), got {m!r}")
    if not isinstance(args, (tuple, list)):
        raise TypeError(f"check_grads: args must be a tuple or list of f's positional "
                        f"arguments, as in check_grads(f, (x,)); got {type(args).__name__}")
    if eps is not None and not (isinstance(eps, (int, float, np.integer, np.floating)) and
                                np.isfinite(eps) and eps > 0):
        raise ValueError(f"check_grads: eps must be a positive finite number, got {eps!r}")
    args = tuple(args)
    rtol = 1e-5 if rtol is None else rtol
    atol = 1e-5 if atol is None else atol
    tape = record(f, *args)

    def steps(a):
        return None if eps is None else \
            eps * np.maximum(1.0, np.abs(np.asarray(a, dtype=float)).ravel())

    def with_arg(fun, k):
        def fk(v):
            full = list(args)
            full[k] = v
            return fun(*full)
        return fk
    for mode in modes:
        J = tape.jacobian(None, mode="forward" if mode == "fwd" else "reverse")
        for k, (Jk, a) in enumerate(zip(J if len(args) > 1 else (J,), args)):
            _compare(Jk, finite_diff(with_arg(f, k), a, h=steps(a)), rtol, atol,
                     f"check_grads ({mode}, argument {k}): entry {{}} of the Jacobian")
    if order == 2:
        w = np.ones(tape._out_shape) if tape.n_outputs == 1 else \
            np.random.default_rng(0).uniform(0.5, 1.5, tape.n_outputs).reshape(tape._out_shape)
        H = tape.hessian(None, w=w)

        def gradient(*xs):                       # the AD gradient of w·f, checked above
            g = tape.vjp(xs[0] if len(xs) == 1 else xs, w)[1]
            return np.concatenate([np.ravel(gi) for gi in _pieces(g, len(xs))])
        for k, a in enumerate(args):
            blocks = H[k] if len(args) > 1 else (H,)
            row = np.concatenate([np.reshape(b, (np.size(a), -1)) for b in blocks], axis=1) \
                if len(args) > 1 else np.reshape(H, (np.size(a), -1))
            num = finite_diff(with_arg(gradient, k), a, h=steps(a))     # (m_total,) + a.shape
            num = np.reshape(num, (-1, np.size(a))).T
            _compare(row, num, rtol, atol,
                     f"check_grads (order 2, argument {k}): entry {{}} of the Hessian")


def _pieces(g, n):
    return g if n > 1 else (g,)


def _compare(ad_, num, rtol, atol, where):
    ad_ = np.asarray(ad_, dtype=np.float64)
    num = np.asarray(num, dtype=np.float64).reshape(ad_.shape)
    err = np.abs(ad_ - num) - (atol + rtol * np.abs(num))
    bad = ~(err <= 0)
    if np.any(bad):
        worst = np.unravel_index(np.nanargmax(np.where(bad, np.nan_to_num(err, nan=np.inf),
                                                       -np.inf)), err.shape) if err.ndim else ()
        raise AssertionError(
            f"{where.format(tuple(int(i) for i in worst))} differs: AD {float(ad_[worst])!r}, "
            f"numeric {float(num[worst])!r} (rtol={rtol}, atol={atol})")
