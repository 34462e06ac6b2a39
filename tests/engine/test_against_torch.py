"""Values and gradients of composite expressions against PyTorch, in float64, to 1e-10."""

from __future__ import annotations

import numpy as np
import pytest
from _deps import require

import graphrnn as gr

torch = require("torch")
F = torch.nn.functional

RTOL, ATOL = 1e-10, 1e-13


def both(arrays):
    """The same float64 values as graphrnn leaves and as torch leaves."""
    ours = [gr.Tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    return ours, theirs


def compare(ours_out, theirs_out, ours, theirs):
    np.testing.assert_allclose(ours_out.data, theirs_out.detach().numpy(), rtol=RTOL, atol=ATOL)
    ours_out.backward()
    theirs_out.backward()
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a.grad is not None and a.grad.dtype == np.float64, i
        np.testing.assert_allclose(a.grad, b.grad.numpy(), rtol=RTOL, atol=ATOL, err_msg=f"input {i}")


@pytest.mark.parametrize("seed", range(3))
def test_tanh_rnn_unrolled(seed):
    """Eq. 10.8-10.11 for three steps: a = b + W h + U x, h = tanh(a), o = c + V h, summed loss."""
    rng = np.random.default_rng(seed)
    n, m, k, batch, steps = 4, 3, 5, 2, 3
    shapes = [(n, n), (n, m), (k, n), (n, 1), (k, 1), (n, batch)]
    arrays = [rng.standard_normal(s) * 0.7 for s in shapes]
    xs = rng.standard_normal((steps, m, batch))
    ys = rng.integers(0, k, (steps, batch))
    (W, U, V, b, c, h), (tW, tU, tV, tb, tc, th) = both(arrays)
    loss, tloss = 0.0, 0.0
    for t in range(steps):
        h = gr.tanh(b + W @ h + U @ xs[t])
        loss = loss + gr.cross_entropy(c + V @ h, ys[t], axis=0, reduction="sum")
        th = torch.tanh(tb + tW @ th + tU @ torch.from_numpy(xs[t]))
        to = tc + tV @ th
        tloss = tloss + F.cross_entropy(to.T, torch.from_numpy(ys[t]), reduction="sum")
    compare(loss, tloss, [W, U, V, b, c], [tW, tU, tV, tb, tc])


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_cross_entropy_class_axis_0(reduction):
    rng = np.random.default_rng(1)
    z = rng.standard_normal((6, 4)) * 3
    y = rng.integers(0, 6, 4)
    (o,), (to,) = both([z])
    compare(gr.cross_entropy(o, y, axis=0, reduction=reduction),
            F.cross_entropy(to.T, torch.from_numpy(y), reduction=reduction), [o], [to])


def test_cross_entropy_class_axis_1_sequence():
    """(batch, classes, time) with classes along axis 1, as torch lays it out."""
    rng = np.random.default_rng(2)
    z = rng.standard_normal((2, 4, 3))
    y = rng.integers(0, 4, (2, 3))
    w = rng.standard_normal((2, 3))
    (o,), (to,) = both([z])
    ours = (gr.cross_entropy(o, y, axis=1, reduction="none") * w).sum()
    theirs = (F.cross_entropy(to, torch.from_numpy(y), reduction="none") * torch.from_numpy(w)).sum()
    compare(ours, theirs, [o], [to])


@pytest.mark.parametrize("axis", [0, 1])
def test_softmax_and_log_softmax(axis):
    rng = np.random.default_rng(3)
    z = rng.standard_normal((4, 5)) * 2
    w = rng.standard_normal((4, 5))
    (a,), (ta,) = both([z])
    tw = torch.from_numpy(w)
    ours = (gr.softmax(a, axis=axis) * w).sum() + (gr.log_softmax(a, axis=axis) * w * w).sum()
    theirs = (torch.softmax(ta, dim=axis) * tw).sum() + (torch.log_softmax(ta, dim=axis) * tw * tw).sum()
    compare(ours, theirs, [a], [ta])


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse(reduction):
    rng = np.random.default_rng(4)
    p, q = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    (a, b), (ta, tb) = both([p, q])
    compare(gr.mse(gr.tanh(a), b, reduction=reduction),
            F.mse_loss(torch.tanh(ta), tb, reduction=reduction), [a, b], [ta, tb])


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_with_logits(reduction):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4)) * 4
    y = rng.uniform(0, 1, (3, 4))
    (a, b), (ta, tb) = both([x, y])
    compare(gr.bce_with_logits(a, b, reduction=reduction),
            F.binary_cross_entropy_with_logits(ta, tb, reduction=reduction), [a, b], [ta, tb])


def test_sigmoid_gate_and_broadcasting():
    """A GRU-like gate: elementwise products, broadcasts, sums over an axis, powers."""
    rng = np.random.default_rng(6)
    arrays = [rng.standard_normal((3, 4)), rng.standard_normal((3, 1)), rng.standard_normal(4),
              rng.uniform(0.5, 2, (3, 4))]
    (a, b, c, d), (ta, tb, tc, td) = both(arrays)
    u = gr.sigmoid(a + b)
    ours = ((u * gr.tanh(c) + (1 - u) * a) ** 2).mean(axis=0).sum() + (d**1.5 / (1 + gr.exp(-c))).sum()
    tu = torch.sigmoid(ta + tb)
    theirs = ((tu * torch.tanh(tc) + (1 - tu) * ta) ** 2).mean(dim=0).sum() + (td**1.5 / (1 + torch.exp(-tc))).sum()
    compare(ours, theirs, [a, b, c, d], [ta, tb, tc, td])
