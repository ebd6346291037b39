"""A micrograd-style scalar reverse-mode engine: the pure-Python baseline of the peers table.

As in Karpathy's micrograd, each operation makes a Python object holding its value, its
parents and a closure that pushes its adjoint to them; ``backward()`` sorts the graph
topologically and runs the closures in reverse. Written here (iterative sort, so deep chains do
not hit the recursion limit) with the few functions the benchmark problems use.
"""
import math


class Value:
    __slots__ = ("data", "grad", "_prev", "_back")

    def __init__(self, data, prev=(), back=None):
        self.data, self.grad, self._prev, self._back = data, 0.0, prev, back

    def _unary(self, z, dz):                       # z = g(x), dz = g'(x)
        out = Value(z, (self,))
        def back(): self.grad += dz * out.grad
        out._back = back
        return out

    def __add__(self, o):
        o = o if isinstance(o, Value) else Value(o)
        out = Value(self.data + o.data, (self, o))
        def back(): self.grad += out.grad; o.grad += out.grad
        out._back = back
        return out

    def __mul__(self, o):
        o = o if isinstance(o, Value) else Value(o)
        out = Value(self.data * o.data, (self, o))
        def back(): self.grad += o.data * out.grad; o.grad += self.data * out.grad
        out._back = back
        return out

    def __pow__(self, k):                          # constant exponent only, as micrograd
        return self._unary(self.data ** k, k * self.data ** (k - 1))

    def __neg__(self): return self * -1.0
    def __sub__(self, o): return self + (-o)
    def __truediv__(self, o): return self * (o ** -1 if isinstance(o, Value) else 1.0 / o)
    def __radd__(self, o): return self + o
    def __rsub__(self, o): return (-self) + o
    def __rmul__(self, o): return self * o
    def __rtruediv__(self, o): return Value(o) * self ** -1
    def __abs__(self): return self._unary(abs(self.data), math.copysign(1.0, self.data))
    def __lt__(self, o): return self.data < getattr(o, "data", o)
    def __gt__(self, o): return self.data > getattr(o, "data", o)
    def __le__(self, o): return self.data <= getattr(o, "data", o)
    def __ge__(self, o): return self.data >= getattr(o, "data", o)

    def exp(self):
        z = math.exp(self.data)
        return self._unary(z, z)

    def backward(self, zero_grad=False):
        """Adjoints of every node of the graph of self (zero_grad: reset them first, so that
        one graph can be swept once per output)."""
        topo, seen, stack = [], set(), [(self, False)]
        while stack:                               # iterative post-order DFS
            v, done = stack.pop()
            if done:
                topo.append(v)
            elif id(v) not in seen:
                seen.add(id(v))
                stack.append((v, True))
                stack.extend((p, False) for p in v._prev if id(p) not in seen)
        if zero_grad:
            for v in topo:
                v.grad = 0.0
        self.grad = 1.0
        for v in reversed(topo):
            if v._back is not None:
                v._back()
