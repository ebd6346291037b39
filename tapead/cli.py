"""Command line: `python -m tapead` (the seed walkthrough) and `python -m tapead trace EXPR`.

EXPR is parsed with Python's ast and checked against a whitelist (names, numbers, + - * / **,
unary + -, calls of tapead's elementary functions, lists as the arguments of sum and dot); it is
then evaluated by walking the tree on tapead Vars. Nothing is ever passed to eval or exec.
"""
import argparse
import ast
import inspect
import math
import os
import sys
import textwrap

import numpy as np

import tapead as ad
from tapead import graph
from tapead._core import OP_ARITY
from tapead.optable import OPS

# the functions a trace expression may call (the op table's CLI names), with their number of
# arguments; a variadic op's function (sum, dot) takes lists, as ad.sum(xs) and ad.dot(xs, ys)
FUNCTIONS = {row.cli: OP_ARITY[op] if OP_ARITY[op] >= 0 else
             len(inspect.signature(getattr(ad, row.cli)).parameters)
             for op, row in OPS.items() if row.cli and row.cli.isidentifier()}
LISTS = {row.cli for op, row in OPS.items() if row.cli in FUNCTIONS and OP_ARITY[op] < 0}
MAX_LENGTH = 100_000
MAX_GRAPH = 2000                 # operations --dot draws without --force
BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
UNARY = {ast.USub: "-", ast.UAdd: "+"}
_KINDS = {ast.Attribute: "attribute access", ast.Subscript: "subscripts",
          ast.Lambda: "lambda expressions", ast.Compare: "comparisons",
          ast.BoolOp: "and/or", ast.IfExp: "conditional expressions",
          ast.Starred: "starred arguments", ast.NamedExpr: "assignment expressions"}


_TO_ASCII = str.maketrans({"─": "-", "→": "->", "≪": "<<", "≤": "<=", "∝": "~", "µ": "u",
                           "·": "*", "−": "-", "²": "^2", "√": "sqrt", "½": "1/2", "ε": "eps",
                           "∂": "d", "…": "...", "Σ": "sum", "′": "'", "\u0307": "'",
                           "\u0304": "_"})


class ExprError(ValueError):
    """An expression outside the allowed arithmetic subset; the message names the piece."""


def _piece(src, node):
    return _short(ast.get_source_segment(src, node) or type(node).__name__)


def _short(src, n=60):
    return src if len(src) <= n else src[:n - 3] + "..."


def _children(node):
    if isinstance(node, ast.BinOp):
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp):
        return [node.operand]
    if isinstance(node, ast.Call):                  # a list argument: its elements
        return [e for a in node.args for e in (a.elts if isinstance(a, ast.List) else [a])]
    return []


def check_expression(src):
    """Parse src and check it against the whitelist; return (tree, input names in order of
    first use). Iterative, so long sums do not hit Python's recursion limit."""
    src = src.strip()
    if len(src) > MAX_LENGTH:
        raise ExprError(f"the expression is too long ({len(src)} characters, at most "
                        f"{MAX_LENGTH}); record long programs with ad.record instead")
    limit = sys.getrecursionlimit()
    try:
        sys.setrecursionlimit(max(limit, MAX_LENGTH))   # ast of a long sum is as deep as long
        tree = ast.parse(src, mode="eval")
    except SyntaxError as e:
        raise ExprError(f"not a valid expression: {e.msg} in {_short(src)!r}") from None
    except (RecursionError, MemoryError, ValueError) as e:
        raise ExprError(f"cannot parse the expression: {type(e).__name__}: {e}") from None
    finally:
        sys.setrecursionlimit(limit)
    names, stack = [], [tree.body]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Constant):
            if type(node.value) not in (int, float):
                raise ExprError(f"only real numbers may appear as constants, not "
                                f"`{_piece(src, node)}`")
        elif isinstance(node, ast.Name):
            if node.id in FUNCTIONS:
                raise ExprError(f"`{node.id}` is a function: call it, as in {node.id}(x1)")
            if node.id not in names:
                names.append(node.id)
        elif isinstance(node, (ast.BinOp, ast.UnaryOp)):
            if type(node.op) not in (BINARY if isinstance(node, ast.BinOp) else UNARY):
                raise ExprError(f"operator not allowed in `{_piece(src, node)}` (allowed: "
                                f"+ - * / ** and unary + -)")
        elif isinstance(node, ast.Call):
            func = node.func
            if not isinstance(func, ast.Name):
                kind = _KINDS.get(type(func), "calls of anything but a function name")
                raise ExprError(f"{kind} not allowed: `{_piece(src, func)}` (only tapead's "
                                f"elementary functions may be called)")
            if func.id not in FUNCTIONS:
                raise ExprError(f"unknown function `{func.id}` in `{_piece(src, node)}`; "
                                f"allowed: {' '.join(FUNCTIONS)}")
            if node.keywords:
                raise ExprError(f"keyword arguments are not allowed: `{_piece(src, node)}`")
            if any(isinstance(a, ast.Starred) for a in node.args):
                raise ExprError(f"starred arguments are not allowed: `{_piece(src, node)}`")
            if len(node.args) != FUNCTIONS[func.id]:
                k = FUNCTIONS[func.id]
                raise ExprError(f"{func.id} takes {k} argument{'s' * (k > 1)}, got "
                                f"{len(node.args)}: `{_piece(src, node)}`")
            lists = func.id in LISTS
            for a in node.args:
                if isinstance(a, ast.List) != lists:
                    raise ExprError(f"{func.id} takes {'lists' if lists else 'numbers'}, as in "
                                    f"{func.id}({'[x1, x2]' if lists else 'x1'}): "
                                    f"`{_piece(src, node)}`")
                if lists and any(isinstance(e, ast.Starred) for e in a.elts):
                    raise ExprError(f"starred items are not allowed: `{_piece(src, node)}`")
        else:
            kind = _KINDS.get(type(node), f"`{type(node).__name__}` expressions")
            raise ExprError(f"{kind} not allowed: `{_piece(src, node)}` (allowed: names, "
                            f"numbers, + - * / **, calls of tapead's elementary functions, "
                            f"lists as the arguments of sum and dot)")
        stack.extend(reversed(_children(node)))
    return tree, names


def evaluate(tree, env):
    """Evaluate a checked tree (post-order, iterative): names bound by env (Vars or floats),
    functions from tapead."""
    stack, vals = [(tree.body, False)], []
    while stack:
        node, ready = stack.pop()
        if isinstance(node, ast.Constant):
            vals.append(float(node.value))
        elif isinstance(node, ast.Name):
            vals.append(env[node.id])
        elif not ready:
            stack.append((node, True))
            stack.extend((c, False) for c in reversed(_children(node)))
        elif isinstance(node, ast.BinOp):
            b, a = vals.pop(), vals.pop()
            op = type(node.op)
            vals.append(a + b if op is ast.Add else a - b if op is ast.Sub else a * b
                        if op is ast.Mult else a / b if op is ast.Div else a ** b)
        elif isinstance(node, ast.UnaryOp):
            a = vals.pop()
            vals.append(-a if isinstance(node.op, ast.USub) else +a)
        else:                                      # a checked Call; list arguments regrouped
            sizes = [len(a.elts) if isinstance(a, ast.List) else None for a in node.args]
            n = sum(1 if k is None else k for k in sizes)
            flat = vals[len(vals) - n:]
            del vals[len(vals) - n:]
            it = iter(flat)
            args = [next(it) if k is None else [next(it) for _ in range(k)] for k in sizes]
            vals.append(getattr(ad, node.func.id)(*args))
    return vals[0]


def _assignments(items, what):
    """NAME=VALUE strings -> {name: float}, with messages naming the bad item."""
    out = {}
    for item in items:
        name, eq, value = item.partition("=")
        name = name.strip()
        if not eq:
            raise ExprError(f"{what}: expected NAME=VALUE, got {item!r}")
        if not name.isidentifier() or name in FUNCTIONS:
            raise ExprError(f"{what}: {name!r} is not a usable input name")
        if name in out:
            raise ExprError(f"{what}: {name} given twice")
        try:
            v = float(value)
        except ValueError:
            raise ExprError(f"{what}: bad number for {name}: {value!r}") from None
        if not math.isfinite(v):
            raise ExprError(f"{what}: {name}={value} is not a finite number")
        out[name] = v
    return out


def record_expression(src, at):
    """Check src, then record it on a tape with inputs in --at order; returns (tape, names)."""
    tree, used = check_expression(src)
    missing = [n for n in used if n not in at]
    if missing:
        raise ExprError(f"no value for {', '.join(missing)}: give "
                        f"{' '.join(n + '=VALUE' for n in missing)} with --at")
    names = list(at)
    with ad.Tape() as t:
        xs = t.variables([at[n] for n in names]) if names else []
        try:
            with np.errstate(all="ignore"):
                y = evaluate(tree, dict(zip(names, xs)))
        except (ArithmeticError, ValueError) as e:       # ValueError: dot of unequal lists
            raise ExprError(f"cannot evaluate {_short(src.strip())!r}: {e}") from None
        t.outputs(y)
    return t, names


def _direction(spec, names):
    if not spec:
        return None
    v = np.zeros(len(names))
    if len(spec) == 1 and "=" not in spec[0]:
        if spec[0] not in names:
            raise ExprError(f"--tangent: {spec[0]} is not an input (inputs: {', '.join(names)})")
        v[names.index(spec[0])] = 1.0
        return v
    for name, value in _assignments(spec, "--tangent").items():
        if name not in names:
            raise ExprError(f"--tangent: {name} is not an input (inputs: {', '.join(names)})")
        v[names.index(name)] = value
    return v


def _unicode_ok(stream):
    try:
        "v̇∂ε·−─²√½".encode(stream.encoding or "ascii")
        return True
    except (UnicodeEncodeError, LookupError):
        return False


def write_graph(tape, names, path, force):
    """--dot PATH: the DOT source (.dot, .gv) or a drawing by Graphviz (.svg, .png, .pdf).
    Raises ExprError, or OSError when PATH cannot be written."""
    source = path.lower().endswith((".dot", ".gv"))
    if not source:
        try:
            graph.render_format(path)
        except ValueError:
            raise ExprError(f"--dot {path}: FILE must end in .dot or .gv (DOT source), or "
                            f".svg, .png or .pdf (drawn with Graphviz)") from None
        try:
            graph.graphviz()
        except RuntimeError as e:
            raise ExprError(f"--dot {path}: {e}") from None
    if not force and len(tape) > MAX_GRAPH:
        raise ExprError(f"--dot {path}: the tape has {len(tape)} operations, more than "
                        f"{MAX_GRAPH}: too big a graph to read; add --force to draw it anyway")
    if source:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(tape.to_dot(names=names, max_ops=None))
        return
    try:
        tape.render(path, names=names, max_ops=None)
    except RuntimeError as e:
        raise ExprError(f"--dot {path}: {e}") from None


def cmd_trace(args, parser):
    try:
        at = _assignments(args.at or [], "--at")
        tape, names = record_expression(args.expr, at)
        v = _direction(args.tangent, names)
    except ExprError as e:
        parser.error(str(e))
    if args.dot:               # first: a bad --dot is reported alone, before any trace
        try:
            write_graph(tape, names, args.dot, args.force)
        except OSError as e:
            return _fail(parser, f"--dot {args.dot}: cannot write it: {e.strerror or e}")
        except ExprError as e:
            return _fail(parser, str(e))
    print(f"f({', '.join(names)}) = {args.expr.strip()}")
    print(tape.trace(v=v, dual=args.dual, limit=None if args.all else args.limit,
                     names=names, ascii=args.ascii))
    if args.dot:
        print(f"wrote the computational graph to {args.dot}")
    return 0


def _fail(parser, message):
    """A one-line error on stderr and exit status 2 (argparse's for bad arguments)."""
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return 2


def _wrapped(names):
    return textwrap.fill(" ".join(names) + ".", 76, initial_indent="  ", subsequent_indent="  ")


def build_parser():
    p = argparse.ArgumentParser(
        prog="python -m tapead",
        description="Without a command: the seed document's walkthrough of automatic "
                    "differentiation on f(x1, x2) = x1*sqrt(log(x1/sin(x2**2))) -- its traces, "
                    "gradient by forward and reverse mode, finite differences, symbolic "
                    "expression swell and the forward/reverse cost model.")
    p.add_argument("--plot", metavar="PATH", help="also draw the finite-difference errors as a "
                   "log-log PNG (needs matplotlib)")
    p.add_argument("--ascii", action="store_true", help="print ASCII only (vdot, vbar, d)")
    sub = p.add_subparsers(dest="command", metavar="{trace}")
    t = sub.add_parser(
        "trace", help="the three traces of an arithmetic expression",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Record EXPR on a tape and print its Forward Primal, Forward Tangent and "
                    "Reverse Adjoint Traces.",
        epilog="EXPR may use input names, numbers, + - * / ** (unary + -) and calls of\n"
               f"tapead's elementary functions:\n{_wrapped(FUNCTIONS)}\n"
               "sum and dot take lists, as in sum([x1, x2, x1 * x2]) or dot([x1, x2], [x2, 3]).\n"
               "Anything else (attributes, subscripts, lambdas, other calls, keywords) is\n"
               "refused with exit status 2. The expression is parsed with ast, never eval'd.\n"
               "An expression starting with '-' goes after --, as in: trace -- \"-x1 * x2\" ...\n\n"
               "example:\n  python -m tapead trace \"x1 * sqrt(log(x1 / sin(x2 ** 2)))\" "
               "--at x1=2 x2=1 --tangent x2 --dot graph.svg")
    t.add_argument("expr", metavar="EXPR", help="arithmetic expression in the input names")
    t.add_argument("--at", nargs="+", metavar="NAME=VALUE", help="the point: one value per "
                   "input, in the order the inputs are numbered (v[-m+1] ... v[0])")
    t.add_argument("--tangent", nargs="+", metavar="NAME[=VALUE]", help="tangent direction: an "
                   "input name (unit vector) or NAME=VALUE pairs (default: the first input)")
    t.add_argument("--dual", action="store_true", help="also show the tangent trace as "
                   "dual-number arithmetic (v + v̇ε)")
    t.add_argument("--limit", type=int, default=20, metavar="N", help="lines shown at each end "
                   "of a long trace (default 20)")
    t.add_argument("--all", action="store_true", help="print every line, however long")
    t.add_argument("--dot", metavar="FILE", help="write the graph: FILE.dot/.gv as DOT source, "
                   ".svg/.png/.pdf rendered with Graphviz's dot")
    t.add_argument("--force", action="store_true", help=f"draw graphs of more than {MAX_GRAPH} ops")
    t.add_argument("--ascii", action="store_true", help="print ASCII only (vdot, vbar, d)")
    return p, t


def main(argv=None):
    parser, trace_parser = build_parser()
    args = parser.parse_args(argv)
    args.ascii = args.ascii or not _unicode_ok(sys.stdout)
    if args.ascii and hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")           # a last resort; _TO_ASCII covers ours
    try:
        if args.command == "trace":
            if args.limit < 1:
                trace_parser.error("--limit must be at least 1 (use --all for everything)")
            return cmd_trace(args, trace_parser)
        from .walkthrough import run
        run((lambda s: print(s.translate(_TO_ASCII))) if args.ascii else print,
            plot=args.plot, ascii=args.ascii)
        return 0
    except BrokenPipeError:                                # python -m tapead | head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
