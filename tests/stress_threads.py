"""Thread stress for the recorder and the sweeps: a script, not a pytest module.

tests/run_sanitizers.sh runs it against the ASan + UBSan build, where a race that corrupts memory
becomes a report and an abort instead of a silently wrong number; tests/test_thread_stress.py
runs short rounds of it in a subprocess in the normal suite.

    python tests/stress_threads.py [--seconds S] [--threads N] [--pairs P] [PHASE ...]

Phases (default: all, in this order, each for S seconds):
  own      N threads, each recording its own tapes (`with ad.Tape()` and ad.record: arithmetic,
           comparisons, ad.sum, ad.where, ad.dot, user primitives), checked bit for bit against
           a single-threaded reference
  shared   N threads replaying closed tapes shared by all of them (forward, gradient, jvp, vjp,
           jacobian both modes, hvp, hessian; primitives' rules called back from the sweeps),
           checked bit for bit against a single-threaded reference
  mixed    N/2 threads of each of the above at once
  hostile  P recorders, each with two hostile threads that, while the recorder is inside its
           `with t:` block, try `with t:`, t.__exit__(), t.variables, t.outputs, arithmetic,
           ad.sum, ad.dot, ad.where, a primitive, comparisons, .value and backward() on the
           recorder's Vars, and comparisons / operations mixing them with Vars of a tape the
           hostile thread records itself. Required: every attempt raises ad.TapeError, the
           recorder's tape stays open and records what the recorder did, bit for bit (values,
           operation counts, gradients), and the hostile thread's own tape is unharmed.

Exit status 0: every check held. 1: some check failed (a summary is printed). A crash (a signal,
or an ASan/UBSan abort) is the process's own exit status; a hang is ended by faulthandler after
the phases' time plus a margin (exit 1, with every thread's traceback).
"""
import argparse
import collections
import faulthandler
import os
import random
import re
import sys
import threading
import time
import traceback

import numpy as np

import tapead as ad

# ---- failures ---------------------------------------------------------------------------------
_lock = threading.Lock()
_failures = collections.OrderedDict()       # key -> [count, first detail]


def fail(key, detail=""):
    with _lock:
        entry = _failures.setdefault(key, [0, detail])
        entry[0] += 1


def same(a, b):
    """Bit-identical arrays (NaNs in the same places count as equal)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and np.array_equal(a.view(np.int64), b.view(np.int64))


def check_same(key, got, want):
    if not same(got, want):
        fail(key, f"got {np.asarray(got)!r}\nwant {np.asarray(want)!r}")
        return False
    return True


def guarded(key, body, *args):
    """Run body(*args) in a worker thread; any exception is a failure under key."""
    try:
        body(*args)
    except BaseException as e:                  # noqa: BLE001 - reported in the summary
        fail(f"{key}: {type(e).__name__}: {str(e)[:120]}", traceback.format_exc())


def run_threads(targets):
    threads = [threading.Thread(target=f, args=a, daemon=True) for f, a in targets]
    for th in threads:
        th.start()
    for th in threads:
        th.join()


# ---- the programs -----------------------------------------------------------------------------
cube = ad.primitive(lambda x: x ** 3, jvp=lambda x, v: 3.0 * x[0] ** 2 * v[0],
                    vjp=lambda x, w: (3.0 * x[0] ** 2 * w,), name="cube")
pair = ad.primitive(lambda x, y: np.array([x * y, x + y]),
                    jvp=lambda x, v: np.array([x[1] * v[0] + x[0] * v[1], v[0] + v[1]]),
                    vjp=lambda x, w: (x[1] * w[0] + w[1], x[0] * w[0] + w[1]), name="pair")
ident = ad.primitive(lambda x: x, jvp=lambda x, v: v[0], vjp=lambda x, w: (w,), name="ident")

M = 12                                           # inputs of program()
BASE = np.array([0.7, -0.4, 1.1, -1.3, 0.2, 0.9, -0.6, 1.4, -0.8, 0.5, -1.1, 0.3])


def program(x, prims=True):
    """R^12 -> R^3: arithmetic, a Python branch (a guard that never flips at POINTS), ad.where
    (which takes its comparison over), ad.sum, ad.dot and, with prims, user primitives."""
    s = 0.0
    for i in range(len(x) - 1):
        s = s + 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
    r = [ad.where(e > 0.0, e * e, -0.5 * e) for e in x]
    u = ad.sum([ad.sin(e) * ad.exp(0.1 * e) for e in r])
    v = ad.dot(x, [ad.tanh(e) for e in x])
    if s > -1.0:                                 # always true: a guard, never flipped
        v = v + ad.sqrt(1.0 + x[0] * x[0]) / (2.0 + ad.cos(x[1]))
    if prims:
        p = pair(x[1], x[2])
        u = u + cube(x[0]) * p[0] - ident(p[1]) * x[3]
    return [s, u, v]


def scalar_program(x, prims=True):
    return ad.sum(program(x, prims))


# points with the signs of BASE (so no guard flips between them), different in every digit
_rng = np.random.default_rng(12345)
POINTS = [BASE * _rng.uniform(0.8, 1.25, M) for _ in range(6)]


def record_own(p, kind):
    """Record program at p in the current thread; the results a test compares."""
    if kind == "record":                             # ad.record, replayed in every first mode
        t = ad.record(program, p)
        y, ydot = t.jvp(p, np.eye(M)[:, :3])
        return {"y": np.asarray(t(p)), "jvp_y": np.asarray(y), "jvp": ydot,
                "jac_rev": t.jacobian(p, mode="reverse"), "ops": len(t)}
    with ad.Tape() as t:                              # imperative, with backward()
        x = t.variables(p)
        ys = program(x)
        total = ad.sum(ys)
        t.outputs(total)
    total.backward()
    return {"values": np.array([e.value for e in ys] + [total.value]),
            "backward": np.array([e.grad for e in x]), "gradient": t.gradient(p),
            "ops": len(t)}


# ---- phase: threads recording their own tapes --------------------------------------------------
def own_reference():
    return {(i, kind): record_own(p, kind) for i, p in enumerate(POINTS)
            for kind in ("record", "with")}


def own_worker(k, deadline, ref):
    rounds = 0
    while time.monotonic() < deadline or rounds == 0:
        i, kind = (k + rounds) % len(POINTS), ("record", "with")[(k + rounds // 3) % 2]
        got = record_own(POINTS[i], kind)
        for key, want in ref[(i, kind)].items():
            check_same(f"own/{kind}/{key} differs from the single-threaded recording",
                       got[key], want)
        rounds += 1


# ---- phase: threads replaying shared closed tapes ----------------------------------------------
def shared_tapes():
    p0 = POINTS[0]
    return {
        "prims": ad.record(program, p0),                          # R^12 -> R^3, primitives
        "prims_scalar": ad.record(scalar_program, p0),
        "smooth": ad.record(lambda x: program(x, prims=False), p0),
        "smooth_scalar": ad.record(lambda x: scalar_program(x, prims=False), p0),
    }


V = np.linspace(-1.0, 1.0, M * 4).reshape(M, 4)
W = np.array([[1.0, -2.0, 0.75], [0.5, 0.25, -1.0]])        # k = 2 weight vectors


def replays(tapes, p):
    t, ts, u, us = tapes["prims"], tapes["prims_scalar"], tapes["smooth"], tapes["smooth_scalar"]
    y, ydot = t.jvp(p, V)
    y2, xbar = t.vjp(p, W)
    return {
        "forward": np.asarray(t(p)), "jvp_y": np.asarray(y), "jvp": ydot,
        "vjp_y": np.asarray(y2), "vjp": xbar,
        "jac_fwd": t.jacobian(p, mode="forward"), "jac_rev": t.jacobian(p, mode="reverse"),
        "gradient": ts.gradient(p), "smooth_gradient": us.gradient(p),
        "smooth_jvp": u.jvp(p, V[:, 0])[1],
        "hvp": us.hvp(p, V), "hessian": us.hessian(p),
        "hessian_w": u.hessian(p, w=[1.0, -0.5, 2.0]),
    }


def shared_reference(tapes):
    for p in POINTS:                 # the Hessians' colourings settle on their second call
        replays(tapes, p)
    ref = [replays(tapes, p) for p in POINTS]
    again = [replays(tapes, p) for p in POINTS]
    for r, a in zip(ref, again):
        for key in r:
            check_same(f"shared/{key}: single-threaded replays disagree", a[key], r[key])
    return ref


def shared_worker(k, deadline, tapes, ref):
    rounds = 0
    while time.monotonic() < deadline or rounds == 0:
        i = (k + rounds) % len(POINTS)
        got = replays(tapes, POINTS[i])
        for key, want in ref[i].items():
            check_same(f"shared/{key} differs from the single-threaded replay", got[key], want)
        rounds += 1


# ---- phase: hostile threads against a tape being recorded ---------------------------------------
STEPS = 1000
SUM_WIDTH = 300


def hostile_program(x, publish=None):
    """y = a**1000 by repeated products (1.5**1000 = 1.2e176 at a = 1.5), with an n-ary ad.sum of
    zeros every 16 steps (a cffi call, the GIL released), and ad.dot, ad.where and a primitive
    every 64; dy/db = 0. publish(a, b, y) is called once, early, with Vars to attack."""
    a, b = x[0], x[1]
    zero = b - b
    zeros = [zero] * SUM_WIDTH
    y = a
    for i in range(1, STEPS):
        y = y * a
        if i % 16 == 0:
            y = ad.sum([y] + zeros)
        if i % 64 == 0:
            y = ad.dot([y, b], [1.0, 0.0])
            y = ad.where(a > 0.0, y, -y)
            y = ident(y)
        if i == 2 and publish is not None:
            publish(a, b, y)
    return y


HOSTILE_X = np.array([1.5, 0.5])
HOSTILE_X2 = np.array([1.25, -2.0])


def hostile_record(t, publish=None):
    x = t.variables(HOSTILE_X)
    return x, hostile_program(x, publish)


def hostile_reference():
    with ad.Tape() as t:
        x, y = hostile_record(t)
        t.outputs(y)
    y.backward()
    ref = {"value": y.value, "ops": len(t), "by_opcode": t.stats()["by_opcode"],
           "backward": [e.grad for e in x], "gradient": t.gradient(HOSTILE_X),
           "gradient2": t.gradient(HOSTILE_X2)}
    truth = 1.5 ** STEPS, STEPS * 1.5 ** (STEPS - 1)
    assert abs(ref["value"] / truth[0] - 1) < 1e-10, (ref["value"], truth[0])
    assert abs(ref["gradient"][0] / truth[1] - 1) < 1e-10 and ref["gradient"][1] == 0.0
    return ref


class Round:
    """One recorder and its hostile threads; the recorder stays inside `with t:` until every
    hostile thread has stopped, so each attempt meets an open tape recorded by another thread."""

    def __init__(self, n_hostile):
        self.t = ad.Tape()
        self.published = threading.Event()
        self.stop = threading.Event()
        self.stopped = threading.Semaphore(0)
        self.n_hostile = n_hostile
        self.vars = None
        self.attempts = 0


def recorder(rnd, ref):
    t = rnd.t
    ok = False
    try:
        with t:
            try:
                x, y = hostile_record(t, lambda a, b, y: (setattr(rnd, "vars", (a, b, y)),
                                                          rnd.published.set()))
                t.outputs(y)
                ok = True
            except BaseException as e:          # noqa: BLE001
                why = re.sub(r"^[\w.]+: (?=this tape)", "", str(e))[:100]   # "ad.sum: ..."
                fail(f"hostile: the recorder's own recording failed: {type(e).__name__}: {why}",
                     traceback.format_exc())
            finally:
                rnd.published.set()             # even if it failed before publishing
                rnd.stop.set()
                for _ in range(rnd.n_hostile):  # leave `with t:` only after they all stopped
                    if not rnd.stopped.acquire(timeout=60):
                        fail("hostile: a hostile thread did not stop within 60 s")
                        break
    except BaseException as e:                  # noqa: BLE001 - t.__exit__ itself
        fail(f"hostile: the recorder's `with t:` exit raised {type(e).__name__}: {e}",
             traceback.format_exc())
        return
    if not ok:
        return
    if t.recording:
        fail("hostile: the recorder's tape is still open after its `with` block")
        return
    # the recorder's tape holds exactly what the recorder recorded
    if len(t) != ref["ops"]:
        fail("hostile: the recorder's tape has the wrong number of operations",
             f"{len(t)} instead of {ref['ops']}")
    if t.stats()["by_opcode"] != ref["by_opcode"]:
        fail("hostile: the recorder's tape has the wrong operations",
             f"{t.stats()['by_opcode']}\ninstead of {ref['by_opcode']}")
    if y.value != ref["value"]:
        fail("hostile: the recorder's output value is wrong",
             f"{y.value!r} instead of {ref['value']!r}")
    y.backward()
    check_same("hostile: the recorder's backward() is wrong", [e.grad for e in x],
               ref["backward"])
    check_same("hostile: the recorder's gradient is wrong", t.gradient(HOSTILE_X),
               ref["gradient"])
    check_same("hostile: the recorder's gradient at another point is wrong",
               t.gradient(HOSTILE_X2), ref["gradient2"])


def _with_t(t, a, b, y):
    with t:
        # entered a tape another thread records: do what that makes possible (and harmful):
        # record on it, through the Var fast path (GIL held) and n-ary sums (GIL released)
        z = a * 2.0
        for _ in range(4):
            z = ad.sum([z] + [a] * SUM_WIDTH)


def _exit_t(t, a, b, y):
    """t.__exit__() from a thread that did not enter t: TapeError, or a no-op; it must not
    close the tape (attempt() checks)."""
    t.__exit__(None, None, None)
    raise ad.TapeError("t.__exit__() from another thread returned quietly: allowed")


# attempts on the recorder's tape from a thread that records nothing
OUTSIDE = {
    "with t:": _with_t,
    "t.__exit__()": _exit_t,
    "t.variables": lambda t, a, b, y: t.variables([1.0, 2.0]),
    "t.outputs": lambda t, a, b, y: t.outputs(y),
    "a * 2.0": lambda t, a, b, y: a * 2.0,
    "2.0 - a": lambda t, a, b, y: 2.0 - a,
    "a + y": lambda t, a, b, y: a + y,
    "-a": lambda t, a, b, y: -a,
    "a ** 3": lambda t, a, b, y: a ** 3,
    "abs(a)": lambda t, a, b, y: abs(a),
    "ad.sin(a)": lambda t, a, b, y: ad.sin(a),
    "ad.sum": lambda t, a, b, y: ad.sum([a, y, 1.0] + [b] * SUM_WIDTH),
    "ad.dot": lambda t, a, b, y: ad.dot([a, y], [y, 2.0]),
    "ad.where": lambda t, a, b, y: ad.where(a, y, 1.0),
    "primitive": lambda t, a, b, y: cube(a),
    "a < 1.0": lambda t, a, b, y: a < 1.0,
    "bool(y)": lambda t, a, b, y: bool(y),
    "a.value": lambda t, a, b, y: a.value,
    "y.backward()": lambda t, a, b, y: y.backward(),
}

# attempts mixing the recorder's Vars with xb, a Var of the tape the hostile thread records
MIXED = {
    "xb < a": lambda xb, a, y: xb < a,
    "a < xb": lambda xb, a, y: a < xb,
    "xb == y": lambda xb, a, y: xb == y,
    "xb + a": lambda xb, a, y: xb + a,
    "a * xb": lambda xb, a, y: a * xb,
    "ad.sum([xb, a])": lambda xb, a, y: ad.sum([xb, a]),
    "ad.dot": lambda xb, a, y: ad.dot([xb, xb], [a, y]),
    "ad.where(xb, a, xb)": lambda xb, a, y: ad.where(xb, a, xb),
    "ad.hypot(xb, a)": lambda xb, a, y: ad.hypot(xb, a),
}


def attempt(rnd, name, fn, *args):
    """One hostile attempt: it must raise TapeError and leave the recorder's tape open. Once
    the tape is closed (the recorder's recording is ruined) the round ends: what would follow
    is a cascade of the same failure."""
    if not rnd.t.recording:
        rnd.stop.set()
        return
    rnd.attempts += 1
    wrong = None
    try:
        fn(*args)
        wrong = (f"hostile: {name} on a tape another thread records did not raise TapeError",
                 "")
    except ad.TapeError:
        pass          # what is required (_exit_t turns a quiet t.__exit__() into one too)
    except BaseException as e:                  # noqa: BLE001
        wrong = (f"hostile: {name} raised {type(e).__name__} instead of TapeError: "
                 f"{str(e)[:100]}", traceback.format_exc())
    if not rnd.t.recording:
        # this attempt, or the other hostile thread's at the same time, closed the tape (and a
        # closed tape's Vars behave differently: `wrong` is no news then)
        fail(f"hostile: the recorder's tape was closed by another thread (during its {name})")
        rnd.stop.set()
    elif wrong:
        fail(*wrong)


def hostile(rnd, seed):
    rng = random.Random(seed)
    try:
        rnd.published.wait(60)
        if rnd.vars is None:
            return
        a, b, y = rnd.vars
        t = rnd.t
        outside, mixed = list(OUTSIDE.items()), list(MIXED.items())
        while not rnd.stop.is_set():
            rng.shuffle(outside)
            for name, fn in outside:
                if rnd.stop.is_set():
                    break
                attempt(rnd, name, fn, t, a, b, y)
            if rnd.stop.is_set():
                break
            # the same thread records a tape of its own meanwhile; it must come out unharmed
            with ad.Tape() as tb:
                xb = tb.variables(3.0)
                rng.shuffle(mixed)
                for name, fn in mixed:
                    attempt(rnd, name, fn, xb, a, y)
                yb = xb * xb
                tb.outputs(yb)
            if len(tb) != 1 or yb.value != 9.0 or tb.gradient(3.0) != 6.0:
                fail("hostile: the hostile thread's own tape was harmed",
                     f"{len(tb)} ops, value {yb.value}, gradient {tb.gradient(3.0)}")
    finally:
        rnd.stopped.release()


def hostile_phase(deadline, pairs, ref):
    rounds = attempts = 0
    seed = 0
    while time.monotonic() < deadline or rounds == 0:
        rnds = [Round(2) for _ in range(pairs)]
        targets = []
        for rnd in rnds:
            targets.append((guarded, ("hostile: recorder", recorder, rnd, ref)))
            for _ in range(rnd.n_hostile):
                seed += 1
                targets.append((guarded, ("hostile: hostile thread", hostile, rnd, seed)))
        run_threads(targets)
        rounds += 1
        attempts += sum(r.attempts for r in rnds)
    return f"{rounds} rounds x {pairs} recorders, {attempts} hostile attempts"


# ---- main ---------------------------------------------------------------------------------------
PHASES = ("own", "shared", "mixed", "hostile")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("phases", nargs="*", metavar="PHASE",
                    help=f"any of {', '.join(PHASES)} (default: all)")
    ap.add_argument("--seconds", type=float, default=3.0, help="per phase (default 3)")
    ap.add_argument("--threads", type=int, default=4, help="own/shared/mixed (default 4)")
    ap.add_argument("--pairs", type=int, default=2,
                    help="hostile: recorders, each with 2 hostile threads (default 2)")
    ap.add_argument("--switch-interval", type=float, default=1e-4,
                    help="sys.setswitchinterval: small means more interleaving (default 1e-4)")
    args = ap.parse_args(argv)
    phases = args.phases or list(PHASES)
    for p in phases:
        if p not in PHASES:
            ap.error(f"unknown phase {p!r}: choose from {', '.join(PHASES)}")

    faulthandler.enable()
    faulthandler.dump_traceback_later(len(phases) * args.seconds + 240, exit=True)
    sys.setswitchinterval(args.switch_interval)
    start = time.monotonic()

    own_ref = own_reference() if {"own", "mixed"} & set(phases) else None
    if {"shared", "mixed"} & set(phases):
        tapes = shared_tapes()
        shared_ref = shared_reference(tapes)
    hostile_ref = hostile_reference() if "hostile" in phases else None
    n = args.threads
    for phase in phases:
        t0 = time.monotonic()
        deadline = t0 + args.seconds
        note = f"{n} threads"
        if phase == "own":
            run_threads([(guarded, ("own", own_worker, k, deadline, own_ref)) for k in range(n)])
        elif phase == "shared":
            run_threads([(guarded, ("shared", shared_worker, k, deadline, tapes, shared_ref))
                         for k in range(n)])
        elif phase == "mixed":
            run_threads([(guarded, ("mixed/own", own_worker, k, deadline, own_ref))
                         for k in range((n + 1) // 2)] +
                        [(guarded, ("mixed/shared", shared_worker, k, deadline, tapes,
                                    shared_ref)) for k in range(n // 2)])
        else:
            note = hostile_phase(deadline, args.pairs, hostile_ref)
        print(f"stress_threads: {phase}: {time.monotonic() - t0:.1f} s, {note}", flush=True)

    faulthandler.cancel_dump_traceback_later()
    took = time.monotonic() - start
    if _failures:
        print(f"stress_threads: FAILED ({len(_failures)} kinds of failure, {took:.1f} s):")
        for key, (count, detail) in _failures.items():
            print(f"\n  {count} x {key}")
            if detail:
                print("    " + detail.strip().replace("\n", "\n    ")[-1500:])
        sys.stdout.flush()
        return 1
    print(f"stress_threads: OK ({', '.join(phases)}; {took:.1f} s, pid {os.getpid()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
