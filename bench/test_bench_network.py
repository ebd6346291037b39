"""The seed's two-layer network on tapead against the seed's PyTorch program (group "network").

bench/seednet.py has the network (N=64, D_in=1000, H=100, D_out=10, sum of squares, SGD
lr=1e-4) in three forms: tapead (NumPy code recorded: ``replay`` records once with the weights as
inputs and replays the gradient each step, ``record`` records every step), PyTorch eager float64
(nn.Sequential, MSELoss(reduction="sum"), optim.SGD) and hand-written NumPy backpropagation.
Variants: ``linear`` (Linear -> Linear with biases, the seed's code) and ``relu`` (its comment).
One benchmark per (variant, way) times one SGD step; the step of every system is then timed
round-robin in the same test (benchlib.interleaved_best), so the ratios (extra_info
``ratio_to_torch``, ``ratio_to_numpy``; targets: replay <= 1.0x, record <= 1.3x PyTorch) see
the same machine load. 500 steps cost 500x a step. BLAS on one thread for every system. The loss
curves agree with the NumPy oracle to 1e-10 (tests/test_seed_network.py; here a few steps).
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np                                     # noqa: E402
import pytest                                          # noqa: E402

import seednet                                         # noqa: E402
from benchlib import interleaved_best                  # noqa: E402

TARGET = {"replay": 1.0, "record": 1.3}


@pytest.mark.parametrize("way", ["replay", "record"])
@pytest.mark.parametrize("variant", ["linear", "relu"])
def test_network_sgd(benchmark, variant, way):
    relu = variant == "relu"
    x, y, w0 = seednet.data()
    ws = {k: [a.copy() for a in w0] for k in ("tapead", "numpy", "torch")}
    steps = {"tapead": seednet.tapead_step(x, y, ws["tapead"], relu, way),
             "numpy": seednet.numpy_step(x, y, ws["numpy"], relu)}
    try:
        import torch
        torch.set_num_threads(1)
        steps["torch"] = seednet.torch_step(x, y, ws["torch"], relu)
    except ImportError:
        torch = None
    curves = {k: np.array([s() for _ in range(3)]) for k, s in steps.items()}
    for k in curves:
        np.testing.assert_allclose(curves[k], curves["numpy"], rtol=1e-10)
    benchmark.group = "network"
    benchmark.extra_info.update(kind=f"network_{way}", variant=variant, way=way,
                                target_ratio_to_torch=TARGET[way])
    benchmark.pedantic(steps["tapead"], rounds=30, warmup_rounds=2)
    best = interleaved_best(steps, rounds=15)
    info = benchmark.extra_info
    info.update({f"{k}_s": v for k, v in best.items()})
    info["ratio_to_numpy"] = best["tapead"] / best["numpy"]
    if torch is None:
        info["torch"] = "not installed"
        return
    info["ratio_to_torch"] = best["tapead"] / best["torch"]
    info["meets_target"] = info["ratio_to_torch"] <= TARGET[way]
