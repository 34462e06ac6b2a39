"""The optimizers against torch.optim, step by step; clipping against eqs. 10.48-10.49 and torch;
the schedules against their formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _deps import require


from graphrnn.train import (
    SGD, Adam, Constant, Exponential, InverseSigmoid, Linear, RMSProp, StepDecay, TrainError, WarmupCosine,
    clip_by_norm, clip_elementwise, global_norm, make_optimizer,
)

torch = require("torch")  # the independent reference (skips locally without it, fails under CI=true)


def _problem(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    params = {"W": rng.standard_normal((4, 3)).astype(dtype), "b": rng.standard_normal((4, 1)).astype(dtype)}
    grads = [{n: rng.standard_normal(p.shape).astype(dtype) for n, p in params.items()} for _ in range(6)]
    return params, grads


CASES = [
    (lambda: SGD(lr=0.1), lambda ps: torch.optim.SGD(ps, lr=0.1)),
    (lambda: SGD(lr=0.05, momentum=0.9), lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9)),
    (lambda: Adam(lr=0.01), lambda ps: torch.optim.Adam(ps, lr=0.01)),
    (lambda: Adam(lr=0.003, beta1=0.8, beta2=0.99, eps=1e-6),
     lambda ps: torch.optim.Adam(ps, lr=0.003, betas=(0.8, 0.99), eps=1e-6)),
    (lambda: RMSProp(lr=0.01), lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.99, eps=1e-8)),
    (lambda: RMSProp(lr=0.002, rho=0.9, eps=1e-5), lambda ps: torch.optim.RMSprop(ps, lr=0.002, alpha=0.9, eps=1e-5)),
]


@pytest.mark.parametrize("ours, theirs", CASES, ids=["sgd", "momentum", "adam", "adam2", "rmsprop", "rmsprop2"])
def test_optimizer_matches_torch_over_six_steps(ours, theirs):
    params, grads = _problem()
    tparams = {n: torch.tensor(p.copy(), requires_grad=True) for n, p in params.items()}
    opt, topt = ours(), theirs(list(tparams.values()))
    for g in grads:
        opt.step(params, {n: a.copy() for n, a in g.items()})
        for n, tp in tparams.items():
            tp.grad = torch.tensor(g[n])
        topt.step()
        for n in params:
            np.testing.assert_allclose(params[n], tparams[n].detach().numpy(), rtol=1e-12, atol=1e-14, err_msg=n)


@pytest.mark.parametrize("kind", ["sgd", "adam", "rmsprop"])
def test_optimizers_keep_float32(kind):
    params, grads = _problem(dtype=np.float32)
    opt = make_optimizer(kind, 0.01, **({"momentum": 0.9} if kind == "sgd" else {}))
    for g in grads:
        opt.step(params, g)
    assert all(p.dtype == np.float32 for p in params.values())
    assert all(a.dtype == np.float32 for a in opt.state().values() if a.ndim)


def test_optimizer_state_round_trip_continues_identically():
    params, grads = _problem()
    a = Adam(lr=0.01)
    for g in grads[:3]:
        a.step(params, g)
    b = Adam(lr=0.01)
    b.load_state({k: v.copy() for k, v in a.state().items()})
    left, right = {n: p.copy() for n, p in params.items()}, {n: p.copy() for n, p in params.items()}
    for g in grads[3:]:
        a.step(left, g)
        b.step(right, g)
    for n in left:
        np.testing.assert_array_equal(left[n], right[n])
    assert b.t == a.t == 6


def test_optimizer_errors_name_the_setting():
    with pytest.raises(TrainError, match="learning rate"):
        Adam(lr=-1)
    with pytest.raises(TrainError, match="momentum"):
        SGD(lr=0.1, momentum=1.5)
    with pytest.raises(TrainError, match="unknown optimizer 'adagrad'"):
        make_optimizer("adagrad", 0.1)
    params, _ = _problem()
    with pytest.raises(TrainError, match="no gradient for parameter 'b'"):
        SGD(lr=0.1).step(params, {"W": np.zeros((4, 3))})
    with pytest.raises(TrainError, match="shape"):
        SGD(lr=0.1).step(params, {"W": np.zeros((3, 4)), "b": np.zeros((4, 1))})


# ------------------------------------------------------------------ clipping


def test_clip_by_norm_is_eq_10_48():
    _, grads = _problem()
    g = grads[0]
    norm = math.sqrt(sum(float(np.sum(a * a)) for a in g.values()))
    v = norm / 3
    expected = {n: a * (v / norm) for n, a in g.items()}  # g <- g v / ||g||
    got_norm, clipped = clip_by_norm(g, v)
    assert clipped and got_norm == pytest.approx(norm, rel=1e-14)
    for n in g:
        np.testing.assert_allclose(g[n], expected[n], rtol=1e-14)
    assert global_norm(g) == pytest.approx(v, rel=1e-12)


def test_clip_by_norm_leaves_small_gradients_and_matches_torch():
    _, grads = _problem(seed=3)
    g = grads[0]
    norm = global_norm(g)
    before = {n: a.copy() for n, a in g.items()}
    assert clip_by_norm(g, norm * 1.01) == (pytest.approx(norm), False)
    for n in g:
        np.testing.assert_array_equal(g[n], before[n])
    tensors = [torch.tensor(a.copy()) for a in g.values()]
    for t in tensors:
        t.grad = t.clone()
    torch.nn.utils.clip_grad_norm_(tensors, max_norm=norm / 2)
    clip_by_norm(g, norm / 2)
    for a, t in zip(g.values(), tensors):  # torch divides by norm + 1e-6: equal to about 1e-6 relative
        np.testing.assert_allclose(a, t.grad.numpy(), rtol=1e-5)


def test_clip_elementwise_matches_torch():
    _, grads = _problem(seed=4)
    g = grads[0]
    tensors = [torch.tensor(a.copy()) for a in g.values()]
    for t in tensors:
        t.grad = t.clone()
    torch.nn.utils.clip_grad_value_(tensors, 0.5)
    expected_count = sum(int(np.sum(np.abs(a) > 0.5)) for a in g.values())
    assert clip_elementwise(g, 0.5) == expected_count > 0
    for a, t in zip(g.values(), tensors):
        np.testing.assert_array_equal(a, t.grad.numpy())


def test_clip_refuses_a_bad_threshold():
    with pytest.raises(TrainError, match="threshold"):
        clip_by_norm({}, 0)
    with pytest.raises(TrainError, match="threshold"):
        clip_elementwise({}, float("nan"))


# ------------------------------------------------------------------ schedules


def test_schedules_follow_their_formulas():
    assert [Constant(0.3)(s) for s in (0, 1000)] == [0.3, 0.3]
    assert StepDecay(1.0, every=10, factor=0.1)(25) == pytest.approx(0.01)
    assert Exponential(2.0, rate=0.5, every=4)(6) == pytest.approx(2.0 * 0.5 ** 1.5)
    w = WarmupCosine(1.0, warmup=4, total=14, floor=0.1)
    assert w(0) == pytest.approx(0.25) and w(3) == pytest.approx(1.0)
    assert w(9) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert w(100) == pytest.approx(0.1)
    assert Linear(0.0, 0.5, 10)(5) == pytest.approx(0.25) and Linear(0.0, 0.5, 10)(50) == 0.5
    k = 20.0
    assert InverseSigmoid(k)(30) == pytest.approx(1 - k / (k + math.exp(30 / k)))  # Bengio et al. 2015
    assert InverseSigmoid(k)(10 ** 6) == 1.0
