"""tape.trace() and tape.to_dot()/render(): the seed's traces and its computational graph."""
import math
import re
import shutil

import numpy as np
import pytest

import tapead as ad
from tapead import graph, trace as trace_mod, view as view_mod
from tapead._core import Op
from tapead.program import listing

X1, X2 = 2.0, 1.0


def seed_f(x1, x2):
    return x1 * ad.sqrt(ad.log(x1 / ad.sin(x2 ** 2)))


@pytest.fixture
def seed():
    return ad.record(seed_f, X1, X2)


def closed_form(x1, x2):
    """The seed's v[-1] .. v[6], and their derivatives along e1 and e2, by hand."""
    v1 = x2 ** 2
    v2 = math.sin(v1)
    v3 = x1 / v2
    v4 = math.log(v3)
    v5 = math.sqrt(v4)
    v6 = x1 * v5
    values = [x1, x2, v1, v2, v3, v4, v5, v6]
    # direction e1 (x1): v1, v2 constant
    d3 = 1 / v2
    d4 = d3 / v3
    d5 = d4 / (2 * v5)
    e1 = [1.0, 0.0, 0.0, 0.0, d3, d4, d5, v5 + x1 * d5]
    # direction e2 (x2), the seed's tangent trace
    d1 = 2 * x2
    d2 = math.cos(v1) * d1
    d3 = -x1 * d2 / v2 ** 2
    d4 = d3 / v3
    d5 = 0.5 * v4 ** -0.5 * d4          # d√u = +½ u^-½ du (the seed prints a minus)
    e2 = [0.0, 1.0, d1, d2, d3, d4, d5, x1 * d5]
    return values, e1, e2


def section(text, title):
    """Lines (lhs, rule, value) of the trace section whose title starts with `title`."""
    lines = text.splitlines()
    start = next(i for i, s in enumerate(lines) if s.startswith(title))
    rows = []
    for s in lines[start + 1:]:
        if s.startswith("  ⋮"):
            continue
        if not s.startswith("  ") or s.startswith("  x̄"):     # x̄ = ...: the summary line
            break
        parts = [p.strip() for p in re.split(r" = (?![^()]*\))", s.strip())]
        rows.append(parts)
    return rows


def value(row):
    """The value column: the first field after the rule (rows are lhs = rule = value [note])."""
    return float(row[2].split()[0])


def test_primal_trace_is_the_seeds(seed):
    steps, _, outputs = listing(seed)
    assert [s.op for s in steps] == [Op.SQUARE, Op.SIN, Op.DIV, Op.LOG, Op.SQRT, Op.MUL]
    rows = section(seed.trace(), "Forward Primal Trace")
    assert [r[0] for r in rows] == ["v[-1]", "v[0]", "v[1]", "v[2]", "v[3]", "v[4]", "v[5]",
                                    "v[6]", "y"]
    assert [r[1] for r in rows] == ["x1", "x2", "v[0] ** 2", "sin(v[1])", "v[-1] / v[2]",
                                    "log(v[3])", "sqrt(v[4])", "v[-1] * v[5]", "v[6]"]
    values, _, _ = closed_form(X1, X2)
    np.testing.assert_allclose([value(r) for r in rows], values + [values[-1]], rtol=1e-12)


@pytest.mark.parametrize("direction", [0, 1])
def test_tangent_trace_against_closed_form(seed, direction):
    v = np.eye(2)[direction]
    text = seed.trace(v=tuple(v))
    rows = section(text, "Forward Tangent Trace  (")
    _, e1, e2 = closed_form(X1, X2)
    expect = [e1, e2][direction]
    assert [r[0] for r in rows][:3] == ["v̇[-1]", "v̇[0]", "v̇[1]"]
    np.testing.assert_allclose([value(r) for r in rows], expect + [expect[-1]], rtol=1e-12,
                               atol=1e-15)
    assert f"e{direction + 1}" in text and f"∂/∂x{direction + 1}" in text
    # the seed's local rules, with the corrected sign for sqrt
    rules = [r[1] for r in rows]
    assert rules[2] == "2·v[0]·v̇[0]"
    assert rules[3] == "cos(v[1])·v̇[1]"
    assert rules[4] == "(v̇[-1]·v[2] − v[-1]·v̇[2])/v[2]²"
    assert rules[6] == "½·v[4]^(−½)·v̇[4]"
    assert rules[7] == "v̇[-1]·v[5] + v[-1]·v̇[5]"


def test_default_direction_is_the_first_input(seed):
    assert seed.trace() == seed.trace(v=(1.0, 0.0))


def test_adjoint_trace_accumulates_v_minus_1_twice(seed):
    rows = section(seed.trace(), "Reverse Adjoint Trace")
    assert [r[0] for r in rows] == ["v̄[6]", "v̄[-1]", "v̄[5]", "v̄[4]", "v̄[3]", "v̄[-1]",
                                    "v̄[2]", "v̄[1]", "v̄[0]"]
    assert rows[0][1:3] == ["ȳ", "1"]
    # first via v6 = v[-1]·v5 (assignment), then via v3 = v[-1]/v2 (accumulation)
    assert rows[1][1] == "v̄[6]·∂v[6]/∂v[-1]"
    assert rows[5][1] == "v̄[-1] + v̄[3]·∂v[3]/∂v[-1]"
    values, _, _ = closed_form(X1, X2)
    v5, v2 = values[6], values[3]
    L = math.log(X1 / math.sin(X2 ** 2))
    grad = [math.sqrt(L) + 1 / (2 * math.sqrt(L)), -X1 * X2 / math.tan(X2 ** 2) / math.sqrt(L)]
    np.testing.assert_allclose(value(rows[1]), v5, rtol=1e-12)            # running value
    np.testing.assert_allclose(value(rows[5]), grad[0], rtol=1e-12)        # v5 + v̄3/v2
    np.testing.assert_allclose(value(rows[5]) - value(rows[1]), value(rows[4]) / v2, rtol=1e-12)
    np.testing.assert_allclose(value(rows[8]), grad[1], rtol=1e-12)
    text = seed.trace()
    assert "∂v[3]/∂v[-1] = 1/v[2] = 1.1884" in text


def test_dual_numbers_section(seed):
    text = seed.trace(v=(0, 1), dual=True)
    rows = section(text, "Forward Tangent Trace as dual numbers")
    assert rows[3][1] == "sin(1 + 2ε)"
    assert rows[3][2] == "0.841471 + 1.0806ε"
    assert rows[8][2].startswith("1.86091 − 1.38017ε")


def test_ascii_and_repr(seed):
    text = seed.trace(ascii=True, dual=True)
    text.encode("ascii")
    assert "vbar[-1] = vbar[-1] + vbar[3]*dv[3]/dv[-1]" in text
    assert repr(seed.trace()) == str(seed.trace())


def test_point_weights_and_names(seed):
    text = seed.trace([3.0, 0.5], w=2.0, names=["a", "b"])
    assert "at (a, b) = (3, 0.5)" in text
    g = 2 * np.array(seed.gradient((3.0, 0.5)))
    last = text.splitlines()[-1]
    np.testing.assert_allclose([float(s) for s in last.split("= (")[-1].strip(")").split(",")],
                               g, rtol=1e-13)
    with pytest.raises(ValueError):
        seed.trace(v=(1.0, 0.0, 0.0))
    with pytest.raises(ValueError):
        seed.trace(w=[1.0, 2.0])
    with pytest.raises(ValueError):
        seed.trace(names=["a"])
    with pytest.raises(ValueError):
        seed.trace(limit=0)


def _mixed(x):
    a = x[0] * x[1] - 2.5 / x[0]
    b = ad.sum([a, x[1], x[0] * 3.0]) + ad.dot(list(x), list(x))     # the n-ary scalar dot
    c = ad.hypot(a, b) + ad.atan2(x[0], b) + ad.maximum(a, x[1]) + ad.pow(x[1], a)
    return [c * a, x[1] * x[1], 4.0, x[0]]


def test_vector_outputs_constants_variadic():
    x = np.array([1.3, 0.7])
    tape = ad.record(_mixed, x)
    w = np.array([1.0, -2.0, 3.0, 0.5])
    text = tape.trace(w=w, dual=True)
    assert "y3    = 4" in text or re.search(r"y3\s+= 4\s+= 4", text)
    _, xbar = tape.vjp(x, w)
    last = text.splitlines()[-1]
    got = [float(s) for s in last.split("= (")[-1].strip(")").split(",")]
    np.testing.assert_allclose(got, xbar, rtol=1e-13)
    _, ydot = tape.jvp(x, np.array([1.0, 0.0]))
    rows = section(text, "Forward Tangent Trace  (")
    np.testing.assert_allclose([value(r) for r in rows[-4:]], ydot, rtol=1e-13)


def test_adjoint_running_sums_match_the_C_sweep():
    """Every variable's last running value, added as the trace prints it, is the C adjoint."""
    rng = np.random.default_rng(3)
    for trial in range(20):
        x = rng.uniform(0.5, 1.5, size=3)

        def f(v):
            pool = list(v)
            for _ in range(15):
                a, b = pool[rng.integers(len(pool))], pool[rng.integers(len(pool))]
                op = rng.integers(5)
                pool.append(a * b if op == 0 else a + b if op == 1 else ad.sin(a) - b
                            if op == 2 else a / (1.0 + b * b) if op == 3 else ad.sum([a, b, a]))
            return [pool[-1], pool[-2]]
        tape = ad.record(f, x)
        w = rng.normal(size=2)
        view = view_mod._View(tape, None, np.array([1.0, 0, 0]), w)
        adj = trace_mod._Adjoint(view)
        for t in set(adj.target.tolist()):
            last = int(np.flatnonzero(adj.target == t)[-1])
            assert adj.running(last) == view.adjoints[t]
        one_pass = trace_mod._Adjoint(view)
        one_pass.prepare(10 ** 6)
        assert [one_pass.running(j) for j in range(adj.target.size)] == \
            [adj.running(j) for j in range(adj.target.size)]


def test_long_tapes_print_an_excerpt():
    def f(x):
        s = x
        for _ in range(1000):
            s = ad.sin(s) * 0.5 + x
        return s
    tape = ad.record(f, 0.3)
    text = tape.trace()
    assert len(text.splitlines()) < 200
    assert "lines omitted; trace(limit=None) prints all" in text
    assert "sin 1000" in text and "mul 1000" in text          # the summary counts per op
    full = tape.trace(limit=None)
    assert len(full.splitlines()) > 3 * 3000
    assert "omitted" not in full
    assert len(tape.trace(limit=3).splitlines()) < len(text.splitlines())


def test_every_op_has_a_display_template():
    missing = [op.name for op in Op if op.name not in view_mod.RULES]
    assert not missing, f"add display templates (tapead/optable.py) to view_mod.RULES for {missing}"
    for name, rules in view_mod.RULES.items():
        if rules is not None and name in Op.__members__:
            arity = ad._core.OP_ARITY[Op[name]]
            assert len(rules[0]) == arity, name


def test_every_unary_op_traces():
    """Every function of the CLI's list (the op table's), on Vars: lists for sum and dot."""
    from tapead.cli import FUNCTIONS, LISTS
    for name, k in FUNCTIONS.items():
        fn = getattr(ad, name)
        args = (lambda a, b: [[a, b], [b, a]][:k]) if name in LISTS else \
            (lambda a, b: [a, b, a][:k])
        tape = ad.record(lambda a, b: fn(*args(a, b)), 0.5, 0.25)
        text = tape.trace(dual=True)
        assert "Reverse Adjoint Trace" in text and "∂" in text
        g = np.array(tape.gradient((0.5, 0.25)))
        last = text.splitlines()[-1]
        got = [float(s) for s in last.split("= (")[-1].strip(")").split(",")]
        np.testing.assert_allclose(got, g, rtol=1e-13, err_msg=name)


def _branchy(x):
    a = x[0] * x[1]
    if a > 1:                                        # a branch guard on the tape
        a = a * a
    return ad.where(x[0] < x[1], ad.sin(a), a / x[1])


def _xbar(text):
    return [float(s) for s in text.splitlines()[-1].split("= (")[-1].strip(")").split(",")]


def test_guards_and_where():
    x = np.array([1.0, 2.0])
    tape = ad.record(_branchy, x)
    text = tape.trace()
    assert re.search(r"v\[2\]\s+= v\[1\] > 1\s+= 1\s+branch guard", text)
    assert "v[5] if v[4] != 0 else v[6]" in text
    np.testing.assert_allclose(_xbar(text), tape.gradient(x), rtol=1e-13)
    assert "∂v[7]/∂v[6] = [v[4] = 0] = 0" in text         # the branch where did not take
    src = tape.to_dot()
    dot_structure(src)
    assert "diamond" in src
    # at a point where the guard flips, ad.record's tape re-records; an imperative one refuses
    y = np.array([0.1, 0.2])
    np.testing.assert_allclose(_xbar(tape.trace(y)), tape.gradient(y), rtol=1e-13)
    with ad.Tape() as t:
        t.outputs(_branchy(t.variables(x)))
    with pytest.raises(ad.BranchChanged):
        t.trace(y)


def test_user_primitives():
    prodsum = ad.primitive(lambda a, b: np.array([a * b, a + b]), name="prodsum",
                           jvp=lambda x, v: np.array([v[0] * x[1] + x[0] * v[1], v[0] + v[1]]),
                           vjp=lambda x, w: (w[0] * x[1] + w[1], w[0] * x[0] + w[1]))
    fsin = ad.primitive(np.sin, jvp=lambda x, v: np.cos(x[0]) * v[0], name="fsin")

    def f(x):
        u, v = prodsum(x[0], x[1])
        return ad.sin(u) * v + prodsum(2.0 * x[0], x[1])[0]
    x = np.array([1.0, 2.0])
    tape = ad.record(f, x)
    text = tape.trace(dual=True)
    assert "prodsum(v[-1], v[0])[1]" in text and "prodsum.jvp(" in text
    assert "prodsum.vjp((v̄[1], v̄[2]))[0]" in text
    np.testing.assert_allclose(_xbar(text), tape.gradient(x), rtol=1e-13)
    rows = section(text, "Forward Tangent Trace  (")
    np.testing.assert_allclose(value(rows[-1]), tape.jvp(x, np.array([1.0, 0.0]))[1],
                               rtol=1e-13)
    dot_structure(tape.to_dot())
    # a primitive without a vjp rule: the tangent trace, and a note instead of the adjoints
    tape = ad.record(lambda a, b: fsin(a) * b, 1.0, 2.0)
    text = tape.trace()
    assert "Forward Tangent Trace  (" in text
    assert "Reverse Adjoint Trace: not available: primitive fsin has no vjp rule" in text


# ---- the graph ----------------------------------------------------------------------------------
def dot_structure(src):
    assert src.count("{") == src.count("}")
    body = [s.strip() for s in src.splitlines() if s.strip() and not s.strip().startswith("//")]
    assert body[0] == "digraph tape {" and body[-1] == "}"
    nodes = set(re.findall(r"^\s*(\w+) \[", src, re.M)) - {"node", "edge", "graph"}
    edges = re.findall(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?;", src, re.M)
    for a, b, _ in edges:
        assert a in nodes and b in nodes, (a, b)
    # every quoted string is closed
    for line in body:
        assert len(re.findall(r'(?<!\\)"', line)) % 2 == 0, line
    return nodes, edges


def test_dot_is_well_formed_and_carries_partials(seed):
    src = seed.to_dot()
    nodes, edges = dot_structure(src)
    assert {"v0", "v1", "v7", "out0"} <= nodes
    assert len(nodes) == 2 + 6 + 1
    labels = {(a, b): re.search(r'label="([^"]*)"', attrs).group(1)
              for a, b, attrs in edges if "label" in attrs}
    # ∂v3/∂v[-1] = 1/v2 and ∂v3/∂v2 = -v[-1]/v2² at (2, 1)
    s = math.sin(1.0)
    assert float(labels[("v0", "v4")]) == pytest.approx(1 / s, rel=1e-5)
    assert float(labels[("v3", "v4")]) == pytest.approx(-2 / s ** 2, rel=1e-5)
    assert ("v7", "out0") in [(a, b) for a, b, _ in edges]
    assert 'label="v[3] = v[-1] / v[2]\\n2.37679"' in src


def test_dot_constants_outputs_and_escaping():
    tape = ad.record(_mixed, np.array([1.3, 0.7]))
    nodes, edges = dot_structure(tape.to_dot(names=['a"b', "c\\d"]))
    assert sum(1 for n in nodes if n.startswith("out")) == 4
    assert any(n.startswith("c") for n in nodes)


def test_dot_refuses_big_tapes():
    def f(x):
        for _ in range(2100):
            x = x * 1.0001
        return x
    tape = ad.record(f, 1.0)
    with pytest.raises(ValueError, match="max_ops=None"):
        tape.to_dot()
    dot_structure(tape.to_dot(max_ops=None))
    with pytest.raises(ValueError, match="max_ops"):
        tape.render("big.svg")


def test_render_without_graphviz_says_how_to_install(seed, tmp_path, monkeypatch):
    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        seed.render(tmp_path / "g.svg")
    with pytest.raises(ValueError, match=".svg"):
        seed.render(tmp_path / "g.txt")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_render_svg_and_png(seed, tmp_path):
    svg = tmp_path / "seed.svg"
    assert seed.render(svg) == str(svg)
    assert "<svg" in svg.read_text()
    png = tmp_path / "seed.png"
    seed.render(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
