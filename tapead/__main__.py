"""python -m tapead: the seed's example, f(x1, x2) = x1 * sqrt(log(x1 / sin(x2**2))).

Records f once, prints its value and gradient by forward mode (one tangent sweep per input) and
reverse mode (one adjoint sweep), next to the hand-coded closed form, then replays the same tape
at a new point.
"""
import math

import numpy as np

import tapead as ad


def f(x1, x2):
    return x1 * ad.sqrt(ad.log(x1 / ad.sin(x2 ** 2)))


def by_hand(x1, x2):
    """The seed's hand-coded gradient."""
    L = math.log(x1 / math.sin(x2 ** 2))
    return np.array([math.sqrt(L) + 1 / (2 * math.sqrt(L)),
                     -x1 * x2 / math.tan(x2 ** 2) / math.sqrt(L)])


def main():
    with ad.Tape() as t:
        x1, x2 = t.variables([2.0, 1.0])
        y = f(x1, x2)
        t.outputs(y)
    print("f(x1, x2) = x1 * sqrt(log(x1 / sin(x2**2)))")
    print(f"recorded {len(t)} operations: "
          f"{', '.join(f'{k} x{v}' for k, v in t.stats()['by_opcode'].items())}")
    for point in ([2.0, 1.0], [3.0, 0.5]):
        value = t(point)
        fwd = t.jacobian(point, mode="forward")
        rev = t.gradient(point)
        hand = by_hand(*point)
        print(f"\nat (x1, x2) = ({point[0]}, {point[1]}):  f = {value:.15g}")
        print(f"  forward mode (2 tangent sweeps): {fwd[0]:.15g}  {fwd[1]:.15g}")
        print(f"  reverse mode (1 adjoint sweep):  {rev[0]:.15g}  {rev[1]:.15g}")
        print(f"  by hand (closed form):           {hand[0]:.15g}  {hand[1]:.15g}")
        print(f"  largest difference: {np.max(np.abs(rev - hand)):.1e}")
    swept = t.stats()["swept"]
    print(f"\noperation visits so far: primal {swept['primal']}, tangent {swept['tangent']}, "
          f"adjoint {swept['adjoint']}")


if __name__ == "__main__":
    main()
