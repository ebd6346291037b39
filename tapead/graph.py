"""tape.to_dot() and tape.render(): the computational graph of a tape, drawn by Graphviz.

Nodes are the inputs, one per operation (its rule and value) and the outputs; an edge from an
operand to an operation carries the local partial derivative at the point, computed by the C
sweeps (tapead.program.at_point). Graphviz is optional: to_dot needs nothing, render needs `dot`.
"""
import os
import shutil
import subprocess

from ._core import lib
from .view import _GUARDS, _PRIMITIVES, _View, _num, call_info, primal_rule

MAX_OPS = 2000
FORMATS = ("svg", "png", "pdf")


def _q(s):
    """A DOT double-quoted string."""
    return '"' + str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _check_size(n_ops, max_ops):
    if max_ops is not None and n_ops > max_ops:
        raise ValueError(f"this tape has {n_ops} operations, more than max_ops={max_ops}: "
                         f"a graph that size is unreadable and slow to lay out; pass "
                         f"max_ops=None (or a larger number) to draw it anyway, or use "
                         f"tape.trace() for an excerpt")


def to_dot(tape, x=None, *, max_ops=MAX_OPS, names=None, rankdir="LR"):
    """Graphviz DOT source of the computational graph at x (None: the last point swept).

    Inputs are boxes, operations ellipses labelled with their rule and value, outputs double
    octagons; each edge is labelled with the local partial ∂v[k]/∂v[j] at x. Constants are
    small plain-text nodes (no partial). Raises ValueError beyond max_ops operations.
    """
    rec = tape._rec                     # read once: replays in other threads may re-record
    _check_size(lib.tp_n_ops(rec._p), max_ops)
    view = _View(tape, x, names=names, rec=rec)
    _check_size(view.n_ops, max_ops)              # x re-recorded the tape: another size
    m = view.m
    point = ", ".join(f"{n}={_num(a, 6)}" for n, a in zip(view.in_names[:8], view.x))
    n = len(view.outputs)
    lines = [f"// tapead computational graph: {m} input{'s' * (m != 1)}, {view.n_ops} "
             f"operation{'s' * (view.n_ops != 1)}, {n} output{'s' * (n != 1)}",
             f"// edge labels: local partial derivatives at ({point}{', …' if m > 8 else ''})",
             "digraph tape {",
             f"  rankdir={rankdir};",
             '  node [fontname="Helvetica", fontsize=11];',
             '  edge [fontname="Helvetica", fontsize=9, color="#555555"];']
    for i in range(m):
        label = f"{view.var(i)} = {view.in_names[i]}\n{_num(view.values[i], 6)}"
        lines.append(f"  v{i} [shape=box, style=filled, fillcolor=\"#dbe9f6\", label={_q(label)}];")
    for k in range(view.n_ops):
        kind = view.op_name(k)
        guard = kind in _GUARDS                       # a comparison: no derivative flows
        shape = "diamond, style=dashed" if guard else "ellipse"
        for j in range(int(view.results[k])):         # its results: one node each
            z = int(view.first[k]) + j
            label = f"{view.var(z)} = {primal_rule(view, k, j=j)}\n{_num(view.values[z], 6)}"
            lines.append(f"  v{z} [shape={shape}, label={_q(label)}];")
            if kind in _PRIMITIVES:     # a user primitive: its rules are Python callables
                lines += [f"  v{a} -> v{z};" for a in call_info(view, k)[3] if a >= 0]
        if kind in _PRIMITIVES:
            continue
        z, start, ops = int(view.first[k]), int(view.start[k]), view.operands(k)
        for j, a in enumerate(ops[:2] if guard else ops):
            if a < 0:          # a constant operand: its own small node, no derivative
                c = f"c{start + j}"
                lines.append(f"  {c} [shape=plaintext, fontcolor=\"#777777\", "
                             f"label={_q(_num(view.consts[-1 - a], 6))}];")
                lines.append(f"  {c} -> v{z} [style=dashed, color=\"#aaaaaa\"];")
            elif guard:
                lines.append(f"  v{a} -> v{z} [style=dashed];")
            else:
                p = _num(view.partials[start + j], 6)
                lines.append(f"  v{a} -> v{z} [label={_q(p)}, "
                             f"tooltip={_q(f'∂{view.var(z)}/∂{view.var(a)} = {p}')}];")
    for o, out in enumerate(view.outputs.tolist()):
        name = view.out_names[o]
        value = view.values[out] if out >= 0 else view.consts[-1 - out]
        lines.append(f"  out{o} [shape=doubleoctagon, style=filled, fillcolor=\"#fde2c8\", "
                     f"label={_q(f'{name}{chr(10)}{_num(value, 6)}')}];")
        if out >= 0:
            lines.append(f"  v{out} -> out{o} [style=bold];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_format(path):
    """The output format of path by its extension (svg, png or pdf), else ValueError."""
    fmt = os.path.splitext(path)[1].lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"render writes {', '.join('.' + f for f in FORMATS)} files; got "
                         f"{path!r} (tape.to_dot() gives the DOT source)")
    return fmt


def graphviz():
    """The path of Graphviz's `dot`, else RuntimeError saying how to install it."""
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError("Graphviz's `dot` program was not found on PATH, so the graph cannot "
                           "be rendered. Install Graphviz (Debian/Ubuntu: apt-get install "
                           "graphviz; macOS: brew install graphviz; conda: conda install "
                           "graphviz), or save tape.to_dot() to a .dot file and render it "
                           "elsewhere")
    return dot


def render(tape, path, x=None, *, max_ops=MAX_OPS, names=None, timeout=120):
    """Write the graph to path as SVG, PNG or PDF (by extension) with Graphviz's `dot`."""
    path = os.fspath(path)
    fmt = render_format(path)                     # the arguments first, then Graphviz
    _check_size(len(tape), max_ops)
    dot = graphviz()
    source = to_dot(tape, x, max_ops=max_ops, names=names)
    try:
        done = subprocess.run([dot, f"-T{fmt}", "-o", path], input=source.encode(),
                              capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"dot took more than {timeout} s to lay the graph out; pass a "
                           f"larger timeout, or draw less (tape.trace() for an excerpt)") from None
    if done.returncode != 0:
        err = " ".join(done.stderr.decode(errors="replace").split())      # one line
        raise RuntimeError(f"dot failed ({done.returncode}): {err}")
    return path
