"""Automatic-differentiation systems side by side: one adapter per system, the same problem code.

Each system runs a ``problems.Problem`` (``f(x, ops)`` on a list of its own scalars) through its
usual derivative API:

| system | scalars | cold (from scratch, one call) | warm (``prepare(problem)(x)``) |
| --- | --- | --- | --- |
| tapead | Var | ``ad.record(f, x)`` + gradient / jacobian / hessian | tape replay at a new point |
| torch | 0-d float64 tensors (``x.unbind()``) | forward + ``torch.autograd.grad`` | – (eager) |
| jax | float64 0-d arrays (``jnp.unstack``) | ``jax.grad`` / ``jacfwd``/``jacrev`` / ``hessian``, eager | – (eager) |
| jax-jit | tracers | ``jax.jit(...).lower(x).compile()`` + call | compiled call |
| autograd | ArrayBox | ``autograd.grad`` / ``jacobian`` / ``hessian`` | – (eager) |
| casadi | SX | SX graph + ``gradient``/``jacobian``/``hessian`` + ``Function`` + call | ``Function`` call |
| micrograd | ``peers.micrograd.Value`` | forward + ``backward()`` (one per output) | – (eager) |

``get(name)`` is the adapter, with ``ops``, ``cold(problem, x)`` and ``prepare(problem)``; it is
None when the system's package is not installed (``why_unavailable(name)`` says so, and the
benchmarks skip cleanly: ``pip install -e ".[peers]"``). ``supports(problem)`` says why a
system cannot run a problem (value-dependent branches under tracing, no second order in
micrograd). For systems without reuse ``prepare`` returns None and only the cold time is
reported.
"""
import importlib.util
import math

import numpy as np

import tapead as ad

from .micrograd import Value


class System:
    name = "?"
    label = "?"
    module = None                 # the package that must be importable
    warm_label = None             # what the warm time measures, None: no reuse
    branches = True               # can it run value-dependent branches (det_lu)?
    second_order = True
    build_label = None            # what prepare() builds, timed apart (jax-jit, casadi)

    def available(self):
        if self.module is None or importlib.util.find_spec(self.module) is not None:
            return True, ""
        return False, f"{self.module} not installed (pip install -e \".[peers]\")"

    def supports(self, problem):
        if problem.branches and not self.branches:
            return False, "value-dependent branches (pivoting) cannot be traced to a graph"
        if problem.kind == "hessian" and not self.second_order:
            return False, "no second derivatives"
        return True, ""

    def cold(self, problem, x):
        """The derivative at x from scratch (recording/tracing/building included)."""
        raise NotImplementedError

    def prepare(self, problem):
        """A callable x -> derivative that reuses what was built at problem.x0 (a tape, a
        compiled function), or None for systems without reuse."""
        return None


# ---- tapead ----------------------------------------------------------------------------------
class Tapead(System):
    name, label, warm_label = "tapead", "tapead", "tape replay"
    ops = None

    def _setup(self):
        from types import SimpleNamespace
        self.ops = SimpleNamespace(name="tapead", exp=ad.exp, abs=ad.abs, sin=ad.sin,
                                   cos=ad.cos)

    def record(self, problem, x):
        ops, f = self.ops, problem.f
        return ad.record(lambda xv: f(list(xv), ops), x)

    @staticmethod
    def derivative(problem, tape, x):
        if problem.kind == "gradient":
            return tape.gradient(x)
        if problem.kind == "jacobian":
            return tape.jacobian(x)
        return tape.hessian(x)

    def cold(self, problem, x):
        return self.derivative(problem, self.record(problem, x), x)

    def prepare(self, problem):
        tape = self.record(problem, problem.x0)

        def replay(x):
            return self.derivative(problem, tape, x)
        replay.tape = tape
        return replay


# ---- PyTorch eager on 0-d tensors --------------------------------------------------------------
class Torch(System):
    name, label, module = "torch", "PyTorch eager (0-d tensors)", "torch"

    def _setup(self):
        import torch
        from types import SimpleNamespace
        self.torch = torch
        self.ops = SimpleNamespace(name="torch", exp=torch.exp, abs=torch.abs, sin=torch.sin,
                                   cos=torch.cos)

    def cold(self, problem, x):
        torch = self.torch
        xt = torch.tensor(np.asarray(x, dtype=float), dtype=torch.float64, requires_grad=True)
        y = problem.f(list(xt.unbind()), self.ops)
        grad = torch.autograd.grad
        if problem.kind == "gradient":
            return grad(y, xt)[0].numpy()
        if problem.kind == "jacobian":
            return np.stack([grad(yi, xt, retain_graph=True)[0].numpy() for yi in y])
        g = grad(y, xt, create_graph=True)[0]
        return np.stack([grad(gi, xt, retain_graph=True, allow_unused=True)[0].numpy()
                         if gi.requires_grad else np.zeros(len(x)) for gi in g.unbind()])


# ---- JAX ---------------------------------------------------------------------------------------
class Jax(System):
    name, label, module = "jax", "JAX eager", "jax"

    def _setup(self):
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        from types import SimpleNamespace
        self.jax, self.jnp = jax, jnp
        self.ops = SimpleNamespace(name="jax", exp=jnp.exp, abs=jnp.abs, sin=jnp.sin,
                                   cos=jnp.cos)

    def transform(self, problem):
        jax, jnp, ops, f = self.jax, self.jnp, self.ops, problem.f
        if problem.kind == "gradient":
            return jax.grad(lambda xa: f(list(jnp.unstack(xa)), ops))
        if problem.kind == "jacobian":
            F = lambda xa: jnp.stack(f(list(jnp.unstack(xa)), ops))   # noqa: E731
            n_out = problem.extra.get("outputs", len(problem.x0))
            return jax.jacfwd(F) if len(problem.x0) <= n_out else jax.jacrev(F)
        return jax.hessian(lambda xa: f(list(jnp.unstack(xa)), ops))

    def cold(self, problem, x):
        return np.asarray(self.transform(problem)(self.jnp.asarray(x)))


class JaxJit(Jax):
    name, label, warm_label, branches = "jax-jit", "JAX jit", "compiled call", False
    build_label = "trace + XLA compile"

    def prepare(self, problem):
        jnp = self.jnp
        compiled = self.jax.jit(self.transform(problem)).lower(jnp.asarray(problem.x0)).compile()
        return lambda x: np.asarray(compiled(jnp.asarray(x)))

    def cold(self, problem, x):
        return self.prepare(problem)(x)


# ---- HIPS autograd -----------------------------------------------------------------------------
class Autograd(System):
    name, label, module = "autograd", "HIPS autograd", "autograd"

    def _setup(self):
        import autograd
        import autograd.numpy as anp
        from types import SimpleNamespace
        self.autograd, self.anp = autograd, anp
        self.ops = SimpleNamespace(name="autograd", exp=anp.exp, abs=anp.abs, sin=anp.sin,
                                   cos=anp.cos)

    def cold(self, problem, x):
        ag, anp, ops, f = self.autograd, self.anp, self.ops, problem.f
        if problem.kind == "gradient":
            d = ag.grad(lambda xa: f(list(xa), ops))
        elif problem.kind == "jacobian":
            d = ag.jacobian(lambda xa: anp.array(f(list(xa), ops)))
        else:
            d = ag.hessian(lambda xa: f(list(xa), ops))
        return np.asarray(d(np.asarray(x, dtype=float)))


# ---- CasADi SX ---------------------------------------------------------------------------------
class Casadi(System):
    name, label, module = "casadi", "CasADi SX Function", "casadi"
    warm_label, branches = "Function call", False
    build_label = "SX graph + derivative + Function"

    def _setup(self):
        import casadi
        from types import SimpleNamespace
        self.casadi = casadi
        self.ops = SimpleNamespace(name="casadi", exp=casadi.exp, abs=casadi.fabs,
                                   sin=casadi.sin, cos=casadi.cos)

    def prepare(self, problem):
        ca = self.casadi
        x = ca.SX.sym("x", len(problem.x0))
        y = problem.f(ca.vertsplit(x), self.ops)
        if problem.kind == "gradient":
            d = ca.gradient(y, x)
        elif problem.kind == "jacobian":
            d = ca.jacobian(ca.vertcat(*y), x)
        else:
            d = ca.hessian(y, x)[0]
        fn = ca.Function("d", [x], [d])
        return lambda x: fn(np.asarray(x, dtype=float)).full()

    def cold(self, problem, x):
        return self.prepare(problem)(x)


# ---- micrograd-style -------------------------------------------------------------------------
def _mg_exp(v):
    return v.exp() if isinstance(v, Value) else math.exp(v)


class Micrograd(System):
    name, label, second_order = "micrograd", "micrograd-style (pure Python)", False

    def _setup(self):
        from types import SimpleNamespace
        self.ops = SimpleNamespace(name="micrograd", exp=_mg_exp, abs=abs,
                                   sin=None, cos=None)

    def cold(self, problem, x):
        xs = [Value(float(v)) for v in x]
        y = problem.f(xs, self.ops)
        if problem.kind == "gradient":
            y.backward()
            return np.array([v.grad for v in xs])
        rows = []
        for yi in y:
            for v in xs:
                v.grad = 0.0
            yi.backward(zero_grad=True)
            rows.append([v.grad for v in xs])
        return np.array(rows)


_CLASSES = (Tapead, Torch, Jax, JaxJit, Autograd, Casadi, Micrograd)
SYSTEMS = {c.name: c for c in _CLASSES}
PEERS = tuple(c.name for c in _CLASSES if c is not Tapead)
_instances = {}


def get(name):
    """The adapter of system `name`, set up once (imports its package); None if the package is
    not installed."""
    if name not in _instances:
        s = SYSTEMS[name]()
        ok, _ = s.available()
        if ok and hasattr(s, "_setup"):
            s._setup()
        _instances[name] = s if ok else None
    return _instances[name]


def why_unavailable(name):
    return SYSTEMS[name]().available()[1]
