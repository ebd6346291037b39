"""The tape at a point, as the traces and the graph show it: the operations with their operands,
values, tangents, adjoints and local partials from the C sweeps (tapead.program), and each op's
rules as text from its display templates (tapead/optable.py). Numbering as in the seed: with m
inputs, variable i prints as v[i - m + 1]. tapead/trace.py and tapead/graph.py both read this
one model."""
import re

import numpy as np

from ._core import OP_ARITY, OP_FORMULA, GroupOp, Op
from .optable import display_templates
from .primitive import lookup
from .program import at_point, decode, export, sweep

# ---- display templates (tapead/optable.py): op name -> (∂z/∂operand each, tangent rule) ------
RULES = display_templates()

# ops whose adjoint reaches only some operands (rules.h): guards none, WHERE the chosen one
_GUARDS = {op.name for op in GroupOp.GUARD}
_PRIMITIVES = {op.name for op in GroupOp.PRIMITIVE}
_ASCII = str.maketrans({"·": "*", "−": "-", "²": "^2", "√": "sqrt", "½": "1/2", "π": "pi",
                        "≠": "!=", "×": "*", "ε": "eps", "∂": "d", "…": "...", "⋮": ":",
                        "′": "'"})
_SLOTS = "xyw"


class Text(str):
    """A str that shows itself unquoted at the interactive prompt."""

    def __repr__(self):
        return str(self)


def _num(c, digits=15):
    return f"{float(c):.{digits}g}"


class _View:
    """The tape at a point as numpy arrays: ops, their operands and results (tapead.program.decode),
    and the C-computed values, tangents, adjoints and partials (tapead.program.at_point).
    Everything comes from one recording (self.rec: rec, or the tape's when it is read; another
    thread may re-record the tape meanwhile) at one point."""

    def __init__(self, tape, x=None, v=None, w=None, names=None, ascii=False, rec=None):
        self.v, self.w = v, w
        self.missing = {}                         # sweep -> why it is not shown
        try:                                      # (re-records where a branch guard flips)
            at = at_point(tape, x, v, w, rec)
        except TypeError:                         # a user primitive without a jvp/vjp rule
            at = at_point(tape, x, rec=rec)
            for key, vv, ww in (("tangents", v, None), ("adjoints", None, w)):
                try:
                    at[key] = sweep(at["rec"], at["x"], vv, ww)[key]
                except TypeError as e:
                    self.missing[key] = str(e)
        self.rec = at["rec"]                      # the recording swept just now
        self.ops, self.args, self.consts, self.outputs = export(self.rec)
        self.m, self.n_ops, self.ascii = self.rec.m, self.ops.size, ascii
        # per op: its operands' position and count, its first result and number of results
        self.start, self.count, self.first, self.results = decode(self.ops, self.args, self.m)
        self.n_vars = self.m + int(self.results.sum())
        self.op_of_var = np.repeat(np.arange(self.n_ops), self.results)     # from variable m on
        self.x = at["x"]                          # flat; the point swept
        self.values, self.tangents = at["values"], at["tangents"]
        self.adjoints, self.partials = at["adjoints"], at["partials"]
        if names is None:
            names = [f"x{k + 1}" for k in range(self.m)]
        if len(names) != self.m:
            raise ValueError(f"expected {self.m} input names, got {len(names)}")
        self.in_names = list(names)
        n = len(self.outputs)
        self.out_names = ["y"] if n == 1 else [f"y{k + 1}" for k in range(n)]

    # ---- names ----
    def t(self, s):
        return s.translate(_ASCII) if self.ascii else s

    def var(self, i):
        return f"v[{i - self.m + 1}]"

    def dot(self, name):      # tangent of a name: v̇[3] (ascii: vdot[3])
        return _decorate(name, "\u0307", "dot", self.ascii)

    def bar(self, name):      # adjoint of a name: v̄[3] (ascii: vbar[3])
        return _decorate(name, "\u0304", "bar", self.ascii)

    def operand(self, a):
        """Name of operand a: a variable, or a constant's value (negative in parentheses)."""
        if a >= 0:
            return self.var(a)
        c = self.consts[-1 - a]
        s = _num(c)
        return f"({s})" if c < 0 or s.startswith("-") else s

    def op_name(self, k):
        return Op(int(self.ops[k])).name

    def operands(self, k):
        s = int(self.start[k])
        return self.args[s:s + int(self.count[k])].tolist()

    def result(self, i):
        """(op, which of its results) of variable i >= m."""
        k = int(self.op_of_var[i - self.m])
        return k, i - int(self.first[k])


def _decorate(name, mark, word, ascii):
    if ascii:
        lead = re.match(r"[A-Za-z_]*", name).end()
        return name[:lead] + word + name[lead:] if lead else word + "(" + name + ")"
    return name[0] + mark + name[1:]


# ---- the local rules of one op, as text --------------------------------------------------------
def _elide(terms, joiner, keep=3):
    if len(terms) > 2 * keep:
        terms = terms[:keep] + ["…"] + terms[-1:]
    return joiner.join(terms)


def call_info(view, k):
    """A user primitive's CALL, op k: (primitive, takes an array, number of outputs n, input
    operands). Its operands are the primitive's id (a constant), then its inputs."""
    ops = view.operands(k)
    prim, array = lookup(int(view.consts[-1 - ops[0]]))
    return prim, array, int(view.results[k]), ops[1:]


def _call_text(view, k, j, operand):
    prim, _, n, ins = call_info(view, k)
    args = _elide([operand(a) for a in ins], ", ")
    return f"{prim.name}({args})" + (f"[{j}]" if n > 1 else "")


def primal_rule(view, k, operand=None, j=0):
    """Result j of op k as a formula of earlier variables, from the op's FORMULA in ops.def;
    operand(a) names operand a (default: v[i] or the constant)."""
    operand = operand or view.operand
    name = view.op_name(k)
    if name in _PRIMITIVES:
        return _call_text(view, k, j, operand)
    ops = [operand(a) for a in view.operands(k)]
    if name == "SUM":
        return _elide(ops, " + ")
    if name == "DOT":
        return _elide([f"{a} * {b}" for a, b in zip(ops[::2], ops[1::2])], " + ")
    rhs = OP_FORMULA[Op(int(view.ops[k]))].split("=", 1)[1].strip()
    if OP_ARITY[Op(int(view.ops[k]))] < 0 or len(ops) > 3:
        return f"{name.lower()}({', '.join(ops)})"
    env = dict(zip(_SLOTS, ops))
    return re.sub(r"\b([xyw])\b", lambda mo: env.get(mo.group(1), mo.group(1)), rhs)


def _env(view, k):
    ops = view.operands(k)
    env = {"z": view.var(int(view.first[k]))}
    for s, a in zip(_SLOTS, ops):
        env[s] = view.operand(a)
        env["d" + s] = view.dot(view.var(a)) if a >= 0 else "0"
    return env


def partial_rules(view, k):
    """∂v[k]/∂operand as text, one per operand."""
    name, ops = view.op_name(k), view.operands(k)
    if name == "SUM":
        return ["1"] * len(ops)
    if name == "DOT":
        return [view.operand(ops[i ^ 1]) for i in range(len(ops))]
    rules = RULES.get(name)
    if rules is None or len(rules[0]) != len(ops):
        z = view.var(int(view.first[k]))
        return [f"∂{z}/∂{view.operand(a)}" for a in ops]
    env = _env(view, k)
    return [r.format(**env) for r in rules[0]]


def tangent_rule(view, k, j=0):
    """The tangent of result j of op k in terms of earlier values and tangents."""
    name, ops = view.op_name(k), view.operands(k)
    if name in _PRIMITIVES:
        prim, _, n, ins = call_info(view, k)
        args = _elide([view.operand(a) for a in ins], ", ")
        dots = _elide([view.dot(view.var(a)) if a >= 0 else "0" for a in ins], ", ")
        return f"{prim.name}.jvp(({args}), ({dots}))" + (f"[{j}]" if n > 1 else "")
    rules = RULES.get(name)
    if rules is not None and all(a >= 0 for a in ops) and len(rules[0]) == len(ops):
        return rules[1].format(**_env(view, k))
    if name == "DOT":
        terms = []
        for a, b in zip(ops[::2], ops[1::2]):
            parts = [f"{view.dot(view.var(a))}·{view.operand(b)}" if a >= 0 else None,
                     f"{view.operand(a)}·{view.dot(view.var(b))}" if b >= 0 else None]
            terms += [p for p in parts if p]
        return _elide(terms, " + ") or "0"
    terms = []                                    # Σ ∂z/∂a · ȧ over variable operands
    for a, p in zip(ops, partial_rules(view, k)):
        if a < 0 or p == "0":
            continue
        d = view.dot(view.var(a))
        if p == "1":
            terms.append(d)
        elif p == "−1":
            terms.append("−" + d)
        else:
            terms.append(f"({p})·{d}" if re.search(r" [+−] |/", p) else f"{p}·{d}")
    return _elide(terms, " + ").replace("+ −", "− ") or "0"
