"""tape.trace(): the seed's Forward Primal, Forward Tangent and Reverse Adjoint Traces as text.

Values, tangents, adjoints and local partials come from the C sweeps (tp_export, tp_inspect via
tapead.program); the adjoint trace's running sums add those numbers in the sweep's order (a user
primitive's share comes from its own vjp rule, called as the C sweep calls it). The templates
(tapead/optable.py) are display text only: how to print each op's local partials and tangent
rule in terms of its operands. Numbering as in the seed: with m inputs, variable i prints as
v[i - m + 1].
"""
import re
import unicodedata

import numpy as np

from ._core import Op
from .convert import as_float_array as _as_float_array
from .primitive import floats
from .view import (_GUARDS, _PRIMITIVES, Text, _View, _elide, _num, call_info, partial_rules,
                   primal_rule, tangent_rule)

# ---- the three traces as rows (lhs, rule, value, note) -----------------------------------------
def _primal_row(view, i):
    m, nv = view.m, view.n_vars
    if i < m:
        return view.var(i), view.in_names[i], _num(view.values[i]), ""
    if i < nv:
        k, j = view.result(i)
        guard = view.op_name(k) in _GUARDS
        return (view.var(i), primal_rule(view, k, j=j), _num(view.values[i]),
                "branch guard: replays check this outcome" if guard else "")
    o = i - nv
    out = int(view.outputs[o])
    val = view.values[out] if out >= 0 else view.consts[-1 - out]
    return view.out_names[o], view.operand(out), _num(val), ""


def _tangent_row(view, i):
    m, nv = view.m, view.n_vars
    if i < m:
        return view.dot(view.var(i)), view.dot(view.in_names[i]), _num(view.tangents[i]), ""
    if i < nv:
        k, j = view.result(i)
        ops, parts = view.operands(k), view.partials
        s = int(view.start[k])
        notes = [f"∂/∂{view.var(a)} = {_num(parts[s + c], 6)}"
                 for c, a in enumerate(ops) if a >= 0]
        note = _elide(notes, ", ", keep=2) if notes else ""
        if view.op_name(k) in _PRIMITIVES:
            note = "the primitive's own jvp rule"
        return view.dot(view.var(i)), tangent_rule(view, k, j), _num(view.tangents[i]), note
    o = i - nv
    out = int(view.outputs[o])
    val = view.tangents[out] if out >= 0 else 0.0
    return view.dot(view.out_names[o]), view.dot(view.var(out)) if out >= 0 else "0", _num(val), ""


def _dual_text(view, a):
    if a < 0:
        return view.operand(a)
    val, tan = view.values[a], view.tangents[a]
    sign, tan_s = ("−", _num(-tan, 6)) if tan < 0 or (tan == 0 and np.signbit(tan)) else \
        ("+", _num(tan, 6))
    return f"{_num(val, 6)} {sign} {tan_s}ε"


def _dual_row(view, i):
    m, nv = view.m, view.n_vars
    if i < m:
        return view.var(i), view.in_names[i], _dual_text(view, i), ""
    if i < nv:
        k, j = view.result(i)
        rule = primal_rule(view, k, lambda a: f"({_dual_text(view, a)})" if a >= 0
                           else view.operand(a), j)
        rule = re.sub(r"\(\(([^()]*)\)\)", r"(\1)", rule)      # sin((a + bε)) -> sin(a + bε)
        return view.var(i), rule, _dual_text(view, i), ""
    o = i - nv
    out = int(view.outputs[o])
    return view.out_names[o], view.operand(out), _dual_text(view, out), ""


class _Adjoint:
    """The reverse sweep as lines: output seeds, then each (op, variable operand) pair from the
    last op to the first, operands in order -- the order of the C sweep."""

    def __init__(self, view):
        self.view = view
        start, count = view.start, view.count
        seeds = [(int(t), o) for o, t in enumerate(view.outputs) if t >= 0]
        total = int(count.sum())
        op_of = np.repeat(np.arange(view.n_ops), count)
        first = np.repeat(np.cumsum(count) - count, count)
        pos = np.repeat(start, count) + (np.arange(total) - first)
        order = np.lexsort((pos, -op_of)) if total else np.empty(0, dtype=np.int64)
        op_of, pos = op_of[order], pos[order]
        keep = view.args[pos] >= 0
        names = np.array([op.name for op in sorted(Op)])[view.ops[op_of]] if total else []
        where = np.asarray(names) == "WHERE"
        if total:                     # guards: no adjoint; WHERE: not to its condition
            keep &= ~np.isin(names, list(_GUARDS))
            keep &= ~where | (pos != start[op_of])
        self.op_of, self.pos = op_of[keep], pos[keep]
        self.target = view.args[self.pos].astype(np.int64)
        az, p = view.adjoints[view.first[self.op_of]], view.partials[self.pos]
        # a zero adjoint or an operand WHERE did not choose adds exactly nothing
        self.contrib = np.where((az == 0.0) | (where[keep] & (p == 0.0)), 0.0, az * p)
        calls = np.asarray(names)[keep] == "CALL" if total else np.zeros(0, dtype=bool)
        for k in np.unique(self.op_of[calls]).tolist():
            sel = np.flatnonzero(calls & (self.op_of == k))
            self.contrib[sel] = self._vjp(k)[self.pos[sel] - start[k] - 1]   # after the id
        self.seeds = seeds
        self.seed_of = {}
        for t, o in seeds:
            self.seed_of.setdefault(t, []).append(o)
        self.n = len(seeds) + self.pos.size
        # first and last line of each variable, and running values when many lines are shown
        tg, n = self.target, self.target.size
        self.first = np.full(view.n_vars, -1, dtype=np.int64)
        self.last = self.first.copy()
        u, i = np.unique(tg, return_index=True)
        self.first[u] = i
        u, i = np.unique(tg[::-1], return_index=True)
        self.last[u] = n - 1 - i
        self._all = None

    def _vjp(self, k):
        """What the CALL op k adds to its inputs: the primitive's vjp rule at the output
        adjoints, called as the C sweep calls it (tapead.primitive.tp_py_call)."""
        view = self.view
        prim, array, n, ins = call_info(view, k)
        z = int(view.first[k])
        w = view.adjoints[z:z + n]
        if not np.any(w):
            return np.zeros(len(ins))                  # the rule is not asked
        x = np.array([view.values[a] if a >= 0 else view.consts[-1 - a] for a in ins])
        r = prim._rule("vjp")(x if array else tuple(x.tolist()),
                              w.copy() if n > 1 else float(w[0]))
        return floats(r, prim, "vjp rule").ravel()

    def prepare(self, shown):
        """Before printing `shown` lines: with many lines, add up all running values in one
        pass (the per-line sums below are O(lines) each)."""
        if shown > 200 and self._all is None:
            run = np.zeros(self.view.n_vars)
            for t, o in self.seeds:
                run[t] = run[t] + float(self.view.w[o])
            out = np.empty(self.target.size)
            for j, (t, c) in enumerate(zip(self.target.tolist(), self.contrib.tolist())):
                run[t] = run[t] + c
                out[j] = run[t]
            self._all = out

    def row(self, i):
        view = self.view
        if i < len(self.seeds):
            t, o = self.seeds[i]
            prior = [p for p in self.seed_of[t] if p < o]
            wsym = self.w_name(o)
            rule = wsym if not prior else f"{view.bar(view.var(t))} + {wsym}"
            val = 0.0
            for p in self.seed_of[t]:
                if p <= o:
                    val = val + float(view.w[p])
            return view.bar(view.var(t)), rule, _num(val), ""
        j = i - len(self.seeds)
        t, k = int(self.target[j]), int(self.op_of[j])
        z = view.var(int(view.first[k]))
        fresh = not self.seed_of.get(t) and self.first[t] == j
        lhs = view.bar(view.var(t))
        term = f"{view.bar(z)}·∂{z}/∂{view.var(t)}"
        if view.op_name(k) == "CALL":
            prim, _, n, _ = call_info(view, k)
            outs = ", ".join(view.bar(view.var(int(view.first[k]) + i)) for i in range(n))
            term = f"{prim.name}.vjp({outs if n == 1 else '(' + outs + ')'})" \
                   f"[{int(self.pos[j] - view.start[k] - 1)}]"
        rule = term if fresh else f"{lhs} + {term}"
        if self.last[t] != j:
            val = self.running(j)
        else:
            val = view.adjoints[t]                  # the last contribution: the C sweep's value
        if view.op_name(k) == "CALL":
            return lhs, rule, _num(val), "the primitive's own vjp rule"
        slot = int(self.pos[j] - view.start[k])
        p_rule = partial_rules(view, k)[slot]
        p_val = _num(view.partials[self.pos[j]], 6)
        shown = [p_rule] if re.search(r"[a-z\[]", p_rule) and "∂" not in p_rule else []
        note = " = ".join([f"∂{z}/∂{view.var(t)}"] + shown + [p_val])
        return lhs, rule, _num(val), note

    def running(self, j):
        """v̄ of line j's target after line j: its seeds, then its contributions in sweep order,
        added one by one as the C sweep adds them."""
        if self._all is not None:
            return float(self._all[j])
        t = int(self.target[j])
        run = 0.0
        for o in self.seed_of.get(t, []):
            run = run + float(self.view.w[o])
        for c in self.contrib[:j + 1][self.target[:j + 1] == t].tolist():
            run = run + c
        return run

    def w_name(self, o):
        return self.view.bar(self.view.out_names[o])


# ---- layout ------------------------------------------------------------------------------------
def _width(s):
    return sum(0 if unicodedata.combining(ch) else 1 for ch in s)


def _pad(s, n):
    return s + " " * max(0, n - _width(s))


def _excerpt(n, limit):
    """Indices of lines to show: all, or the first and last `limit` with a gap marker (None)."""
    if limit is None or n <= 2 * limit + 1:
        return list(range(n))
    return list(range(limit)) + [None] + list(range(n - limit, n))


def _section(view, title, n, row, limit, rule_width=46):
    idx = _excerpt(n, limit)
    rows = [None if i is None else tuple(view.t(c) for c in row(i)) for i in idx]
    real = [r for r in rows if r is not None]
    lw, rw, vw = (min(max((_width(r[c]) for r in real), default=0), cap)
                  for c, cap in ((0, 20), (1, rule_width), (2, 20)))
    out = [view.t(title)]
    for r in rows:
        if r is None:
            out.append(view.t(f"  ⋮  ({n - 2 * limit} lines omitted; "
                              "trace(limit=None) prints all)"))
            continue
        lhs, rule, val, note = r
        head = f"  {_pad(lhs, lw)} = {_pad(rule, rw)} = "
        out.append(f"{head}{_pad(val, vw)}    {note}" if note else head + val)
    return out


def _vector(vals, digits=6, keep=8):
    items = [_num(a, digits) for a in np.ravel(vals)]
    if len(items) > keep:
        return "(" + ", ".join(items[:keep - 1]) + f", …, {items[-1]})  ({len(items)} entries)"
    return "(" + ", ".join(items) + ")"


def _direction_text(view):
    nz, xd = np.flatnonzero(view.v), view.dot("x")
    if nz.size == 1 and view.v[nz[0]] == 1.0:
        return f"{xd} = e{nz[0] + 1} = {_vector(view.v)}, i.e. ∂/∂{view.in_names[nz[0]]}"
    return f"{xd} = {_vector(view.v)}"


def trace(tape, x=None, v=None, w=None, *, dual=False, limit=20, names=None, ascii=False):
    """The seed's three traces of `tape` at x (None: the last point swept) as text.

    v: tangent direction shaped like x (default: the first input, e1); w: adjoint weights shaped
    like y (default 1 for each output). dual=True adds the tangent trace as dual-number
    arithmetic. limit: lines shown at each end of a long trace (None: all). names: input names
    (default x1 ... xm). ascii=True avoids non-ASCII symbols (v̇ -> vdot, v̄ -> vbar, ∂ -> d).
    """
    rec = tape._rec                     # read once: replays in other threads may re-record
    m, n = rec.m, rec.n_out
    rec.x_flat(x)
    if v is None:
        vf = np.zeros(m)
        vf[:1] = 1.0
    else:
        vf = rec.x_flat(v, "v")
    if w is None:
        wf = np.ones(n)
    else:
        wa = _as_float_array(w, "w")             # as the replays: no None, no strings
        if wa.shape != rec.out_shape and wa.size != n:
            raise ValueError(f"expected w of shape {rec.out_shape} (like y), got shape "
                             f"{wa.shape}")
        wf = wa.ravel()
    if limit is not None and (int(limit) != limit or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    view = _View(tape, x, vf, wf, names=names, ascii=ascii, rec=rec)
    m, n = view.m, len(view.outputs)              # of the recording swept (x may re-record)
    counts = np.bincount(view.ops, minlength=len(Op))
    by_op = ", ".join(f"{Op(k).name.lower()} {c}" for k, c in enumerate(counts.tolist())
                      if c) or "none"
    lines = [f"tape: {m} input{'s' * (m != 1)}, {view.n_ops} operation"
             f"{'s' * (view.n_ops != 1)} ({by_op}), {n} output{'s' * (n != 1)}"]
    point = ", ".join(view.in_names[:8]) + (", …" if m > 8 else "")
    lines.append(f"at ({point}) = {_vector(view.x, 15)}")
    total = view.n_vars + n
    lines += [""] + _section(view, "Forward Primal Trace", total,
                             lambda i: _primal_row(view, i), limit)
    if "tangents" in view.missing:
        lines += ["", f"Forward Tangent Trace: not available: {view.missing['tangents']}"]
        dual = False
    else:
        lines += [""] + _section(view, f"Forward Tangent Trace  ({_direction_text(view)})",
                                 total, lambda i: _tangent_row(view, i), limit)
    if dual:
        vd = view.dot("v")
        lines += [""] + _section(view, f"Forward Tangent Trace as dual numbers  (v + {vd}ε, "
                                 f"ε² = 0; f(v + {vd}ε) = f(v) + f′(v)·{vd}ε)", total,
                                 lambda i: _dual_row(view, i), limit)
    if "adjoints" in view.missing:
        lines += ["", f"Reverse Adjoint Trace: not available: {view.missing['adjoints']}"]
        return Text(unicodedata.normalize("NFC", view.t("\n".join(lines))))
    adj = _Adjoint(view)
    adj.prepare(len(_excerpt(adj.n, limit)))
    yb = view.bar("y")
    wtext = f"{yb} = 1" if n == 1 and wf[0] == 1.0 else f"{yb} = w = {_vector(wf)}"
    lines += [""] + _section(view, f"Reverse Adjoint Trace  ({wtext}; evaluated top to bottom, "
                             "from the last operation to the inputs)", adj.n, adj.row, limit)
    bars = ", ".join(view.bar(view.var(i)) for i in range(min(m, 8))) + (", …" if m > 8 else "")
    lines.append(f"  {view.bar('x')} = ({bars}) = {_vector(view.adjoints[:m], 15)}")
    return Text(unicodedata.normalize("NFC", view.t("\n".join(lines))))   # ȳ, ẋ precomposed
