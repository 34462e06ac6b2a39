"""The VJPs that switch on array size, on both sides of the switch.

The tanh, sigmoid, softmax and log_softmax VJPs take a second code path for arrays of at
least ``ops.LARGE`` entries (fewer temporaries, see ``ops._times``).  Every other test uses
small arrays, so here, at >= LARGE entries:

* the large branch equals the small one (``ops.LARGE`` raised so that the same call takes the
  small branch) - they compute the same products, so bit for bit;
* both equal the closed-form derivative written out in numpy and PyTorch's autograd;
* the central-difference check in its fast form (a random projection vᵀJu) passes.

Multiplying any one large branch by 1.01 fails each of these tests.
"""

from __future__ import annotations

import numpy as np
import pytest
from _deps import require

import graphrnn as gr
from graphrnn.engine import ops

#: (op, axis) pairs; softmax and log_softmax along both axes of a matrix
CASES = [("tanh", None), ("sigmoid", None), ("softmax", 0), ("softmax", 1), ("log_softmax", 0),
         ("log_softmax", 1)]
SHAPE = (96, 192)  # 18,432 entries: at least LARGE (16,384)


def _apply(name, axis, x):
    f = getattr(gr, name)
    return f(x) if axis is None else f(x, axis=axis)


def _closed_form(name, axis, x, g):
    """The VJP written out from the derivative, in plain numpy (no engine code)."""
    if name == "tanh":
        y = np.tanh(x)
        return g * (1 - y ** 2)
    if name == "sigmoid":
        y = 1 / (1 + np.exp(-x))
        return g * y * (1 - y)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    p = e / e.sum(axis=axis, keepdims=True)
    if name == "softmax":
        return p * (g - (g * p).sum(axis=axis, keepdims=True))  # J = diag(p) - p pᵀ
    return g - p * g.sum(axis=axis, keepdims=True)  # J = I - 1 pᵀ


def _vjp(name, axis, x, g):
    t = gr.Tensor(x, requires_grad=True)
    (out,) = gr.grad(_apply(name, axis, t), [t], grad_output=g)
    return out


def _data(seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(SHAPE) * 2).astype(dtype)
    g = rng.standard_normal(SHAPE).astype(dtype)
    return x, g


def test_the_arrays_here_are_large():
    assert np.prod(SHAPE) >= ops.LARGE, "raise SHAPE: the tests below must reach the large branch"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, axis", CASES)
def test_the_large_branch_equals_the_small_branch(monkeypatch, name, axis, dtype):
    x, g = _data(1, dtype)
    large = _vjp(name, axis, x, g)
    monkeypatch.setattr(ops, "LARGE", 10 ** 12)  # every array is small now
    small = _vjp(name, axis, x, g)
    assert large.dtype == small.dtype == dtype
    np.testing.assert_array_equal(large, small, err_msg=f"{name}: the branches differ")


@pytest.mark.parametrize("name, axis", CASES)
def test_both_branches_equal_the_closed_form(monkeypatch, name, axis):
    x, g = _data(2)
    expected = _closed_form(name, axis, x, g)
    np.testing.assert_allclose(_vjp(name, axis, x, g), expected, rtol=1e-12, atol=1e-15, err_msg="large")
    monkeypatch.setattr(ops, "LARGE", 10 ** 12)
    np.testing.assert_allclose(_vjp(name, axis, x, g), expected, rtol=1e-12, atol=1e-15, err_msg="small")


@pytest.mark.parametrize("name, axis", CASES)
def test_the_large_branch_against_pytorch(name, axis):
    torch = require("torch")
    x, g = _data(3)
    tx = torch.tensor(x, requires_grad=True)
    f = getattr(torch, name)
    (f(tx) if axis is None else f(tx, dim=axis)).backward(torch.tensor(g))
    np.testing.assert_allclose(_vjp(name, axis, x, g), tx.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name, axis", CASES)
def test_gradcheck_at_the_large_size(name, axis):
    x, _ = _data(4)
    # the fast form: one random projection vᵀJu against a central difference along u
    assert gr.gradcheck(lambda a: _apply(name, axis, a), [x], fast=True, seed=5, rtol=1e-6, atol=1e-8)
