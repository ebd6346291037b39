"""python -m tapead (the seed walkthrough) and python -m tapead trace EXPR (safe parsing)."""
import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

from tapead import cli

ENV = {**os.environ, "PYTHONIOENCODING": "utf-8"}
SEED = "x1 * sqrt(log(x1 / sin(x2 ** 2)))"


def run(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "tapead", *args], capture_output=True,
                          text=True, encoding="utf-8", env=ENV, timeout=timeout)


# ---- the walkthrough ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def walkthrough():
    return run()


def test_walkthrough_finishes_with_its_comparisons(walkthrough):
    r = walkthrough
    assert r.returncode == 0, r.stderr
    out = r.stdout
    for piece in ["Forward Primal Trace", "Forward Tangent Trace  (ẋ = e2",
                  "Reverse Adjoint Trace", "v̄[-1] = v̄[-1] + v̄[3]·∂v[3]/∂v[-1]",
                  "dual numbers",
                  "forward mode, 2 tangent sweeps", "reverse mode, 1 adjoint sweep",
                  "by hand", "1.467827504425832", "-1.380165568322725",
                  "forward (f(x+h)−f(x))/h", "central", "1e-01", "1e-13", "truncation",
                  "round-off", "expression swell", "tangent visits", "adjoint visits",
                  "mode=auto", "toy neural network", "matmul 2", "max rel. diff",
                  "walkthrough took"]:
        assert piece in out, piece
    # the network's loss curves, both ways, equal the hand-written backpropagation's
    ways = [line for line in out.splitlines() if line.startswith(("replay the", "record every"))]
    assert len(ways) == 2 and all(float(line.split()[-2]) <= 1e-10 for line in ways), ways
    if importlib.util.find_spec("sympy"):
        assert "len(str(dl/dx))" in out
    else:
        assert "pip install sympy" in out
    # mode="auto": forward when m <= n, reverse otherwise
    rows = [line.split() for line in out.splitlines() if line.endswith(("forward", "reverse"))
            and line.split()[0].isdigit()]
    assert rows and all((r[-1] == "forward") == (int(r[0]) <= int(r[1])) for r in rows)


def test_walkthrough_plot(tmp_path):
    from tapead import walkthrough
    lines, path = [], tmp_path / "errors.png"
    walkthrough.numerical(lines.append, walkthrough.record_seed(), plot=str(path))
    if importlib.util.find_spec("matplotlib"):
        assert path.read_bytes()[:4] == b"\x89PNG"
    else:
        assert "pip install matplotlib" in lines[-1] and not path.exists()


def test_help():
    r = run("--help")
    assert r.returncode == 0 and "walkthrough" in r.stdout and "trace" in r.stdout
    r = run("trace", "--help")
    assert r.returncode == 0
    for piece in ["--at", "--tangent", "--dot", "elementary functions", "never eval", "sin",
                  "atan2"]:
        assert piece in r.stdout, piece


# ---- the trace command --------------------------------------------------------------------------
def test_trace_seed_expression(tmp_path):
    dot = tmp_path / "g.dot"
    r = run("trace", SEED, "--at", "x1=2", "x2=1", "--tangent", "x2", "--dual", "--dot", str(dot))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "v[3]  = v[-1] / v[2]" in out
    assert "ẏ     = v̇[6]" in out and "-1.38016556832273" in out
    assert "v̄[-1] = v̄[-1] + v̄[3]·∂v[3]/∂v[-1]" in out
    assert "dual numbers" in out
    src = dot.read_text(encoding="utf-8")
    assert src.startswith("// tapead") and "digraph tape {" in src and src.count("{") == \
        src.count("}")


def test_trace_names_direction_values_and_ascii():
    r = run("trace", "a * b + pow(a, 2.5) - -b", "--at", "b=0.5", "a=3", "--tangent", "a=1",
            "b=2", "--ascii")
    assert r.returncode == 0, r.stderr
    r.stdout.encode("ascii")
    assert "at (b, a) = (0.5, 3)" in r.stdout        # inputs numbered in --at order
    assert "xdot = (2, 1)" in r.stdout
    assert "vbar[" in r.stdout


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_trace_renders_svg(tmp_path):
    svg = tmp_path / "g.svg"
    r = run("trace", SEED, "--at", "x1=2", "x2=1", "--dot", str(svg))
    assert r.returncode == 0, r.stderr
    assert "<svg" in svg.read_text()


HOSTILE = [
    ("__import__('os').system('echo pwned')", "__import__('os').system"),
    ("().__class__", "().__class__"),
    ("x1.real", "attribute access"),
    ("x1[0]", "x1[0]"),
    ("lambda: 1", "lambda"),
    ("(lambda: 1)()", "lambda"),
    ("open('f')", "open"),
    ("unknown(x1)", "unknown"),
    ("eval('1')", "eval"),
    ("sin(x1, x2)", "sin takes 1 argument"),
    ("sin(x=x1)", "keyword"),
    ("sin(*[x1])", "starred"),
    ("x1 % 2", "x1 % 2"),
    ("x1 // 2", "x1 // 2"),
    ("x1 < 2", "comparisons"),
    ("x1 if x2 else 2", "conditional"),
    ("x1 and x2", "and/or"),
    ("~x1", "~x1"),
    ("'a' + x1", "'a'"),
    ("True * x1", "True"),
    ("1j * x1", "1j"),
    ("[x1]", "List"),
    ("sin", "`sin` is a function"),
    ("x1 +", "not a valid expression"),
    ("x1; x2", "not a valid expression"),
    ("(y := x1)", "assignment"),
    ("f'{x1}'", "JoinedStr"),
    ("1/0 + x1", "float division by zero"),
    ("sin([x1])", "sin takes numbers"),
    ("sum(x1, x2)", "sum takes 1 argument"),
    ("sum(x1)", "sum takes lists"),
    ("dot([x1], x2)", "dot takes lists"),
    ("sum([*[x1]])", "starred"),
    ("sum([[x1]])", "List"),
    ("dot([x1], [x1, x2])", "equal length"),
]


@pytest.mark.parametrize("expr, piece", HOSTILE)
def test_hostile_expressions_are_refused(expr, piece):
    with pytest.raises(cli.ExprError, match=None) as e:
        cli.record_expression(expr, {"x1": 2.0, "x2": 1.0})
    assert piece in str(e.value)


@pytest.mark.parametrize("expr, piece", HOSTILE[:8])
def test_hostile_expressions_exit_2(expr, piece):
    r = run("trace", expr, "--at", "x1=2", "x2=1")
    assert r.returncode == 2
    assert piece in r.stderr
    assert "pwned" not in r.stdout and "pwned" not in r.stderr.replace(expr, "")


@pytest.mark.parametrize("args, piece", [
    (["x1 * x2", "--at", "x1=2"], "no value for x2"),
    (["x1 * x2"], "no value for x1, x2"),
    (["x1", "--at", "x1=abc"], "bad number for x1"),
    (["x1", "--at", "x1"], "expected NAME=VALUE"),
    (["x1", "--at", "x1=nan"], "not a finite number"),
    (["x1", "--at", "x1=1", "x1=2"], "x1 given twice"),
    (["x1", "--at", "1x=1"], "not a usable input name"),
    (["x1", "--at", "sin=1"], "not a usable input name"),
    (["x1", "--at", "x1=1", "--tangent", "x9"], "x9 is not an input"),
    (["x1", "--at", "x1=1", "--limit", "0"], "--limit"),
])
def test_bad_arguments_exit_2(args, piece):
    r = run("trace", *args)
    assert r.returncode == 2
    assert piece in r.stderr


def test_long_and_deep_expressions():
    tape, names = cli.record_expression("+".join(["x1"] * 5000), {"x1": 1.0})
    assert len(tape) == 4999 and tape([1.0]) == 5000.0
    tape, _ = cli.record_expression("-" * 3000 + "x1", {"x1": 2.0})
    assert tape([2.0]) == 2.0
    with pytest.raises(cli.ExprError):
        cli.record_expression("(" * 1000 + "x1" + ")" * 1000, {"x1": 1.0})
    with pytest.raises(cli.ExprError, match="too long"):
        cli.record_expression("x1+" * 50000 + "x1", {"x1": 1.0})


def test_constant_expression_and_unused_input():
    tape, names = cli.record_expression("2 * 3 + 1", {})
    assert names == [] and tape.n_inputs == 0
    assert "y = 7" in tape.trace().replace("  ", " ").replace("  ", " ")
    r = run("trace", "x1 * 2", "--at", "x1=1", "x2=5")
    assert r.returncode == 0
    assert "x̄ = (v̄[-1], v̄[0]) = (2, 0)" in r.stdout          # x2 unused: adjoint 0


def test_where_sum_and_dot_with_lists():
    """where takes a number as its condition (nonzero: true); sum and dot take lists, as
    ad.sum(xs) and ad.dot(xs, ys); each records its one operation."""
    for expr, at, ops, value, grad in [
        ("sum([x1, x2, x1 * x2])", (2.0, 1.0), {"sum": 1, "mul": 1}, 5.0, (2.0, 3.0)),
        ("dot([x1, x2], [x2, 3])", (2.0, 1.0), {"dot": 1}, 5.0, (1.0, 5.0)),
        ("where(x1 - 2, x1 * x2, sin(x2))", (3.0, 0.5), {"where": 1}, 1.5, (0.5, 3.0)),
        ("sum([])", (2.0, 1.0), {}, 0.0, (0.0, 0.0)),
    ]:
        tape, _ = cli.record_expression(expr, {"x1": at[0], "x2": at[1]})
        assert all(tape.stats()["by_opcode"].get(k) == n for k, n in ops.items()), expr
        assert tape(at) == value and tape.gradient(at).tolist() == list(grad), expr
    r = run("trace", "where(x1 - 2, x1 * x2, sin(x2))", "--at", "x1=2", "x2=1")
    assert r.returncode == 0, r.stderr
    assert "v[4]  = v[2] if v[1] != 0 else v[3]" in r.stdout
