"""The matrix-multiply forms on ad.Array beyond `@`: np.dot, np.inner, np.outer, np.einsum (two
operands or one) and np.linalg.norm (vector 2-norm, Frobenius). Each is written with copies
(PACK, for transposes), reshapes (free), sums and one batched MATMUL."""
import string

import numpy as np

from .array import Array, _as_array, matmul, reduce_sum
from .var import Var


def _active(a):
    return type(a) is Array or type(a) is Var


def _arr(a):
    """An operand as an Array (Vars and object arrays packed) or a float ndarray."""
    if type(a) is Array:
        return a
    if type(a) is Var or any(type(e) is Var for e in np.asarray(a, dtype=object).flat):
        return _as_array(a, "einsum")
    return np.asarray(a, dtype=np.float64)


def _transpose(a, axes):
    axes = tuple(axes)
    return a if axes == tuple(range(len(axes))) else np.transpose(a, axes)


def einsum(subscripts, *operands, **kwargs):
    """np.einsum for one or two operands with explicit or implicit output, no ellipsis and no
    repeated index within an operand: sums, then one batched matmul."""
    if kwargs:
        raise TypeError(f"numpy.einsum of ad.Arrays takes no keyword arguments; got "
                        f"{', '.join(kwargs)}")
    if not isinstance(subscripts, str) or "." in subscripts or not 1 <= len(operands) <= 2:
        raise TypeError("numpy.einsum on ad.Arrays takes a subscripts string without '...' and "
                        "one or two operands (e.g. 'ij,jk->ik', 'bij,bjk->bik', 'i,i->')")
    spec = subscripts.replace(" ", "")
    ins, _, out = spec.partition("->")
    ins = ins.split(",")
    if len(ins) != len(operands):
        raise ValueError(f"einsum: {len(ins)} operand subscripts for {len(operands)} operands")
    if "->" not in spec:                       # implicit: the indices seen once, sorted
        seen = "".join(ins)
        out = "".join(sorted(c for c in set(seen) if seen.count(c) == 1))
    ops = [_arr(a) for a in operands]
    sizes = {}
    for lab, a in zip(ins, ops):
        if len(lab) != np.ndim(a):
            raise ValueError(f"einsum: subscripts '{lab}' for an operand of shape {np.shape(a)}")
        if len(set(lab)) != len(lab):
            raise TypeError(f"einsum: repeated index in '{lab}' (a diagonal) is not supported "
                            f"on ad.Arrays")
        for c, n in zip(lab, np.shape(a)):
            if sizes.setdefault(c, n) != n:
                raise ValueError(f"einsum: index '{c}' has sizes {sizes[c]} and {n} (operand "
                                 f"shapes {', '.join(str(np.shape(o)) for o in ops)})")
    if set(out) - set("".join(ins)) or len(set(out)) != len(out):
        raise ValueError(f"einsum: invalid output subscripts '{out}'")
    # indices of one operand only and not in the output: summed first
    labs = []
    for k, (lab, a) in enumerate(zip(ins, ops)):
        others = "".join(ins[:k] + ins[k + 1:])
        drop = tuple(i for i, c in enumerate(lab) if c not in out and c not in others)
        if drop:
            ops[k] = _arr(np.sum(a, axis=drop))   # (a Var when every axis is summed)
            lab = "".join(c for c in lab if c not in (lab[i] for i in drop))
        labs.append(lab)
    if len(ops) == 1:
        return _transpose(ops[0], [labs[0].index(c) for c in out])
    (la, lb), (a, b) = labs, ops
    batch = [c for c in la if c in lb and c in out]
    contract = [c for c in la if c in lb and c not in out]
    fa = [c for c in la if c not in lb]
    fb = [c for c in lb if c not in la]
    n = lambda cs: int(np.prod([sizes[c] for c in cs], dtype=np.int64))   # noqa: E731
    a = _transpose(a, [la.index(c) for c in batch + fa + contract])
    b = _transpose(b, [lb.index(c) for c in batch + contract + fb])
    a = a.reshape(n(batch), n(fa), n(contract))
    b = b.reshape(n(batch), n(contract), n(fb))
    z = matmul(a, b) if _active(a) or _active(b) else np.matmul(a, b)
    order = batch + fa + fb
    z = z.reshape(tuple(sizes[c] for c in order))
    return _transpose(z, [order.index(c) for c in out])


def dot(a, b):
    """np.dot: matmul for 1-d and 2-d operands; for N-d, the sum over a's last axis and b's
    second-to-last."""
    if np.ndim(a) <= 2 and np.ndim(b) <= 2:
        if np.ndim(a) == 0 or np.ndim(b) == 0:
            return a * b
        return matmul(a, b)
    la = string.ascii_letters[:np.ndim(a)]
    lb = string.ascii_letters[np.ndim(a):np.ndim(a) + np.ndim(b) - 1]
    lb = lb[:-1] + la[-1] + lb[-1:]
    return einsum(f"{la},{lb}->{la[:-1] + lb[:-2] + lb[-1:]}", a, b)


def inner(a, b):
    """np.inner: the sum over both last axes."""
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return a * b
    la = string.ascii_letters[:np.ndim(a)]
    lb = string.ascii_letters[np.ndim(a):np.ndim(a) + np.ndim(b) - 1] + la[-1]
    return einsum(f"{la},{lb}->{la[:-1] + lb[:-1]}", a, b)


def outer(a, b):
    """np.outer: of the flattened operands."""
    return einsum("i,j->ij", np.ravel(a) if not _active(a) else _as_array(a, "outer").ravel(),
                  np.ravel(b) if not _active(b) else _as_array(b, "outer").ravel())


def norm(x, ord=None, axis=None, keepdims=False):
    """np.linalg.norm: the vector 2-norm (ord None or 2, over one axis or a 1-d array) and the
    Frobenius norm (ord None or 'fro' of a matrix): sqrt(sum(x * x))."""
    x = _as_array(x, "numpy.linalg.norm")
    nd = len(axis) if isinstance(axis, tuple) else 1 if axis is not None else x.ndim
    ok = ord is None or (ord == 2 and nd == 1) or (ord == "fro" and nd == 2)
    if not ok or (axis is not None and nd not in (1, 2)):
        raise TypeError(f"numpy.linalg.norm of an ad.Array supports the vector 2-norm (ord None "
                        f"or 2) and the Frobenius norm (ord None or 'fro'); got ord={ord!r} "
                        f"over {nd} axes")
    return np.sqrt(reduce_sum(x * x, axis, keepdims))


FUNCTIONS = {np.dot: dot, np.inner: inner, np.outer: outer, np.einsum: einsum,
             np.linalg.norm: norm}
