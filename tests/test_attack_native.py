"""Adversarial cases for Tape.compile() (tapead/native.py): programs the random ones rarely make
(an operation's operands the same variable, outputs repeated or from early segments, deep sums,
segments of 1 or 2 operations), guards down every segment, the shapes and layouts of x and of the
weights, copies and optimised tapes, threads, and tapes with many outputs (their kernel's tiles
of outputs and weights were on the stack: a segfault on a thread with a small stack)."""
import copy
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import tapead as ad
import tapead.native as native
from tapead.batch import set_threads

import _fwdrev_gen
from _fwdrev_gen import point, record_scalar
from test_native import same_bits

try:
    native._compiler()
    native._include_dir()
except RuntimeError as e:                                   # pragma: no cover
    pytest.skip(f"no C compiler or headers: {e}", allow_module_level=True)


def check_all(t, u, X, rng, loop=0):
    """forward, gradient (one output), vjp with weights holding 0, -0, Inf and NaN agree; and
    the first `loop` points with the one-point interpreted vjp"""
    same_bits(t(X, batch=True), u(X, batch=True))
    if t.n_outputs == 1:
        same_bits(t.gradient(X, batch=True), u.gradient(X, batch=True))
    w = rng.standard_normal((len(X),) + t._out_shape)
    for value, p in ((0.0, 0.2), (-0.0, 0.1), (np.inf, 0.05), (np.nan, 0.05)):
        w[rng.random(w.shape) < p] = value
    a, b = t.vjp(X, w, batch=True), u.vjp(X, w, batch=True)
    for p, q in zip(a, b):
        same_bits(p, q)
    for i in range(min(loop, len(X))):
        same_bits(t.vjp(X[i], w[i])[1], b[1][i])


def compiled_twin(t):
    return t, copy.deepcopy(t).compile()


def record(f, m):
    with ad.Tape() as t:
        t.outputs(f(list(t.variables(np.linspace(0.3, 0.9, m)))))
    return t


def special_points(rng, B, m):
    X = rng.standard_normal((B, m))
    X[1], X[2], X[3] = 0.0, -0.0, np.inf
    X[4, 0], X[5, -1] = np.nan, 5e-324
    return X


def same_operands(x):
    a, b = x
    return [a * a, ad.hypot(a, a), ad.atan2(b, b), ad.where(a > b, b, b), a / a, a - a, b ** b,
            ad.maximum(a, a), ad.minimum(b, b), ad.logaddexp(a, a),
            ad.dot([a, b, a], [b, a, a]), ad.sum([a] * 5 + [b])]


def chain_with_early_outputs(x):
    a = x[0] * 1.5
    v = [a]
    for _ in range(30):
        v.append(ad.sin(v[-1]) + a * x[1])
    return [v[1], v[1], a, x[0], v[-1], 2.0, v[1], x[1], x[1]]


@pytest.mark.parametrize("segment", [1, 2, 3])
@pytest.mark.parametrize("f", [same_operands, chain_with_early_outputs])
def test_shared_operands_and_repeated_outputs(f, segment, monkeypatch):
    monkeypatch.setattr(native, "SEGMENT", segment)
    rng = np.random.default_rng(segment)
    check_all(*compiled_twin(record(f, 2)), special_points(rng, 21, 2), rng, loop=6)


def test_deep_sum_and_dot(monkeypatch):
    monkeypatch.setattr(native, "SEGMENT", 2)
    rng = np.random.default_rng(9)
    f = lambda x: [ad.sum([x[i % 2] * (i + 0.5) for i in range(150)] + [x[0]] * 100),
                   ad.dot([x[i % 2] for i in range(120)], [x[i // 3 % 2] + 0.0 for i in range(120)])]
    check_all(*compiled_twin(record(f, 2)), special_points(rng, 13, 2), rng, loop=3)


@pytest.mark.parametrize("segment", [1, 2])
def test_random_programs_tiny_segments(segment, monkeypatch):
    monkeypatch.setattr(native, "SEGMENT", segment)
    monkeypatch.setitem(_fwdrev_gen.BINARY, "logaddexp", ad.logaddexp)
    consts = _fwdrev_gen.CONSTS + _fwdrev_gen.HUGE_TINY
    for seed in range(4):
        rng = np.random.default_rng(7000 + 10 * segment + seed)
        m = int(rng.integers(1, 5))
        t, _ = record_scalar(rng, m, int(rng.integers(6, 25)), int(rng.integers(1, 4)), consts)
        X = np.array([point(rng, m, _fwdrev_gen.SPECIAL + _fwdrev_gen.HUGE_TINY)
                      for _ in range(19)])
        check_all(*compiled_twin(t), X, rng, loop=3)


def test_no_operations_and_constant_outputs():
    rng = np.random.default_rng(2)
    check_all(*compiled_twin(record(lambda x: [x[1], -0.0, x[0], float("nan"), x[1]], 2)),
              special_points(rng, 10, 2), rng)


def test_many_inputs_few_operations():
    rng = np.random.default_rng(3)
    t = record(lambda x: [x[10] * x[1999] + x[1000], x[5]], 2000)   # G's rows (m >= 32)
    check_all(*compiled_twin(t), rng.standard_normal((11, 2000)), rng)


def branchy(x):
    s = x[0] * x[1] if x[0] > x[1] else ad.sin(x[0]) - x[1]
    k = 0
    while s < 3.0 and k < 4:
        s = s + ad.exp(x[2] * 0.1)
        k += 1
    a = x[2] if x[2] > 0 else -x[2]
    for i in range(12):                       # guards in every segment
        s = ad.sin(s) * x[2] if s > x[i % 3] else s + x[i % 3] * 0.5
    return [s * a, a]


@pytest.mark.parametrize("segment", [1, 3, 200])
def test_guards_rerecord_as_interpreted(segment, monkeypatch):
    monkeypatch.setattr(native, "SEGMENT", segment)
    rng = np.random.default_rng(segment)
    t0 = ad.record(branchy, np.array([0.7, 0.2, 0.5]))
    X = special_points(rng, 45, 3)
    w = rng.standard_normal((45, 2))
    for call in (lambda t: t(X, batch=True), lambda t: t.vjp(X, w, batch=True)[1]):
        t, u = copy.deepcopy(t0), copy.deepcopy(t0).compile()
        same_bits(call(t), call(u))
        assert t.stats()["rerecords"] == u.stats()["rerecords"] > 0
    same_bits(u.vjp(X[:8], w[:8], batch=True)[1],
               [copy.deepcopy(t0).vjp(x, wi)[1] for x, wi in zip(X[:8], w[:8])])


@pytest.mark.parametrize("segment", [1, 2, 200])
def test_imperative_guards_same_points(segment, monkeypatch):
    monkeypatch.setattr(native, "SEGMENT", segment)
    with ad.Tape() as t:
        x = t.variables([0.5, 0.3, 0.1])
        s = x[0]
        for i in range(20):
            s = ad.sin(s) * 1.1 if s > x[i % 3] else s + x[1]
        t.outputs(s)
    u = copy.deepcopy(t).compile()
    X = np.random.default_rng(segment).uniform(-1, 1, (37, 3))
    X[0] = [0.5, 0.3, 0.1]
    for call in (lambda t: t(X, batch=True), lambda t: t.gradient(X, batch=True)):
        with pytest.raises(ad.BranchChanged) as e1:
            call(t)
        with pytest.raises(ad.BranchChanged) as e2:
            call(u)
        assert e1.value.points == e2.value.points and str(e1.value) == str(e2.value)


def _two_outputs(x):
    return [ad.exp(x[0]) * x[1] - x[2] / (x[0] + 3.0), x[1] ** 2]


def test_layouts_of_x_and_w_and_tails():
    t, u = compiled_twin(ad.record(_two_outputs, np.array([0.1, 0.2, 0.3])))
    u.compile()                                          # twice: no harm
    rng = np.random.default_rng(5)
    big = rng.standard_normal((30, 6))
    cases = [big[:, ::2], big[:, :3].astype(np.float32), big[:5, :3].tolist(),
             np.asfortranarray(big[:, :3]), big[::-1, 3:]]
    cases += [rng.standard_normal((B, 3)) for B in (0, 1, 7, 8, 9, 17)]
    for X in cases:
        same_bits(t(X, batch=True), u(X, batch=True))
        w = rng.standard_normal((len(X), 4))[:, ::2]     # weights not contiguous
        same_bits(t.vjp(X, w, batch=True)[1], u.vjp(X, w, batch=True)[1])


def _redundant(x):
    a, b = x[0] * x[1], x[0] * x[1]
    return [a + b, ad.sin(a) * 0.0 + x[2] * 1.0, (x[2] - x[2]) + a]


@pytest.mark.parametrize("how", ["record", "method", "loaded"])
def test_optimized_and_loaded_tapes(how):
    t = ad.record(_redundant, np.array([0.3, 0.4, 0.5]), optimize=how == "record")
    if how == "method":
        t.optimize()
    if how == "loaded":
        t = ad.loads(t.dumps())
    rng = np.random.default_rng(6)
    check_all(*compiled_twin(t), special_points(rng, 19, 3), rng, loop=3)


def _sines(k):
    return ad.record(lambda x: ad.sum([ad.sin(x[i]) * x[(i + k) % 6] for i in range(6)])
                     + x[0] ** (k + 1), np.ones(6))


def test_compile_while_other_threads_call():
    t = _sines(0)
    X = np.random.default_rng(8).standard_normal((5000, 6))
    ref = copy.deepcopy(t).gradient(X, batch=True)
    errors, stop = [], threading.Event()

    def call():
        try:
            while not stop.is_set():
                same_bits(t.gradient(X, batch=True), ref)
        except Exception as e:                          # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=call) for _ in range(2)]
    for th in threads:
        th.start()
    t.compile()
    stop.set()
    for th in threads:
        th.join()
    assert not errors and t.stats()["native"]
    same_bits(t.gradient(X, batch=True), ref)


def test_threads_compiling_at_once(monkeypatch):
    monkeypatch.setattr(native, "_cache", {})
    tapes = [_sines(k) for k in range(6)]
    refs = [copy.deepcopy(t) for t in tapes]
    threads = [threading.Thread(target=t.compile) for t in tapes]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    X = np.random.default_rng(9).standard_normal((100_001, 6))
    w = X[:, 0].copy()
    w[::7], w[::11] = 0.0, np.inf
    old = set_threads(2)
    try:
        for t, r in zip(tapes, refs):
            assert t.stats()["native"]
            same_bits(t.vjp(X[:999], w[:999], batch=True)[1],
                      r.vjp(X[:999], w[:999], batch=True)[1])
        same_bits(tapes[2].vjp(X, w, batch=True)[1], refs[2].vjp(X, w, batch=True)[1])
    finally:
        set_threads(old)


def test_many_outputs_on_a_small_thread_stack():
    """400 outputs: 51 KB of tiles of outputs and weights, which the kernel kept on the stack (a
    segfault on a thread of a 40 KB stack, where the interpreter works): a subprocess"""
    code = textwrap.dedent("""
        import threading, numpy as np, tapead as ad
        with ad.Tape() as t:
            x = t.variables(np.arange(4.0))
            t.outputs([x[i % 4] for i in range(400)])
        t.compile()
        X = np.arange(12.0).reshape(3, 4)
        threading.stack_size(40 * 1024)
        r = []
        th = threading.Thread(target=lambda: r.append(t.vjp(X, np.ones((3, 400)), batch=True)))
        th.start(); th.join()
        assert (r[0][0] == np.tile(X, 100)).all() and (r[0][1] == 100).all()
        print("ok")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ))
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stderr[-2000:])
