"""Softmax and the losses stay finite for huge logits, and cross-entropy's gradient is
the book's eq. 10.18: softmax minus one-hot."""

from __future__ import annotations

import numpy as np
import pytest

import graphrnn as gr

EXTREME = [
    np.array([[1e4, -1e4], [-1e4, 1e4], [0.0, 0.0]]),  # (classes=3, batch=2)
    np.array([[1e4, 1e4], [1e4, -1e4], [-1e4, 1e4]]),  # ties at the top
    np.full((3, 2), 1e4),
    np.full((3, 2), -1e4),
    np.array([[1e4, -3.0], [-1e4, 2.0], [5.0, 1e4]]),  # mixed extremes and ordinary values
]


def _finite_everywhere(fn, logits):
    """Value and gradient of fn(x) are finite; also under detect_anomaly."""
    x = gr.Tensor(logits, requires_grad=True)
    with gr.detect_anomaly():  # raises on the first non-finite forward value or gradient
        out = fn(x)
        assert np.all(np.isfinite(out.data))
        seed = np.linspace(-1, 1, out.data.size).reshape(out.shape) if out.data.size > 1 else None
        out.backward(seed)
    assert np.all(np.isfinite(x.grad))
    return out, x.grad


@pytest.mark.parametrize("logits", EXTREME)
@pytest.mark.parametrize("axis", [0, 1])
def test_softmax_extreme(logits, axis):
    out, g = _finite_everywhere(lambda x: gr.softmax(x, axis=axis), logits)
    np.testing.assert_allclose(out.data.sum(axis=axis), 1.0, rtol=1e-12)
    assert np.all(out.data >= 0)
    np.testing.assert_allclose(g.sum(axis=axis), 0.0, atol=1e-12)  # softmax is shift invariant


@pytest.mark.parametrize("logits", EXTREME)
@pytest.mark.parametrize("axis", [0, 1])
def test_log_softmax_extreme(logits, axis):
    out, _ = _finite_everywhere(lambda x: gr.log_softmax(x, axis=axis), logits)
    assert np.all(out.data <= 0)
    np.testing.assert_allclose(np.exp(out.data).sum(axis=axis), 1.0, rtol=1e-12)


def test_log_softmax_extreme_values():
    out = gr.log_softmax(gr.Tensor([1e4, -1e4, 0.0]))
    np.testing.assert_allclose(out.data, [0.0, -2e4, -1e4], rtol=1e-12)


@pytest.mark.parametrize("logits", EXTREME)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_extreme(logits, reduction):
    target = np.array([1, 0])
    _finite_everywhere(lambda x: gr.cross_entropy(x, target, axis=0, reduction=reduction), logits)
    _finite_everywhere(lambda x: gr.cross_entropy(x, target, axis=1, reduction=reduction), logits.T)


def test_cross_entropy_extreme_values():
    z = np.array([[1e4, -1e4], [-1e4, 1e4]])
    per = gr.cross_entropy(z, np.array([0, 0]), reduction="none").data
    np.testing.assert_allclose(per, [0.0, 2e4], rtol=1e-12)  # right with certainty, wrong by 2e4


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_extreme(reduction):
    x = np.array([1e4, -1e4, 1e4, -1e4, 0.0, 30.0, -800.0])
    y = np.array([0.0, 1.0, 1.0, 0.0, 0.5, 1.0, 0.0])
    out, g = _finite_everywhere(lambda t: gr.bce_with_logits(t, y, reduction=reduction), x)
    per = gr.bce_with_logits(x, y, reduction="none").data
    np.testing.assert_allclose(per[:4], [1e4, 1e4, 0.0, 0.0], rtol=1e-12, atol=1e-300)
    assert per[4] == pytest.approx(np.log(2))
    # the gradient is sigmoid(x) - y per entry: ±1 or 0 at the extremes
    xt = gr.Tensor(x, requires_grad=True)
    gr.bce_with_logits(xt, y, reduction="sum").backward()
    np.testing.assert_allclose(xt.grad[:5], [1.0, -1.0, 0.0, 0.0, 0.0], atol=1e-12)


def test_sigmoid_and_tanh_extreme():
    x = gr.Tensor([1e4, -1e4, 800.0, -800.0], requires_grad=True)
    with gr.detect_anomaly():
        s = gr.sigmoid(x)
        (s.sum() + gr.tanh(x).sum()).backward()
    np.testing.assert_array_equal(s.data, [1.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(x.grad, 0.0)


def test_float32_extremes_stay_finite():
    z = np.array([[3e4, -3e4], [-3e4, 3e4], [0.0, 1.0]], dtype=np.float32)
    x = gr.Tensor(z, requires_grad=True)
    with gr.detect_anomaly():
        loss = gr.cross_entropy(x, np.array([2, 2]), reduction="sum") + gr.bce_with_logits(x, np.ones_like(z))
        loss.backward()
    assert loss.dtype == np.float32 and x.grad.dtype == np.float32
    assert np.all(np.isfinite(x.grad))


# ----------------------------------------------------------------------------- eq. 10.18


def _softmax(z, axis):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_cross_entropy_gradient_is_softmax_minus_one_hot(seed, scale):
    """Eq. 10.18: (∇_o L)_i = ŷ_i - 1_{i = y} for L = sum over examples (reduction='sum')."""
    rng = np.random.default_rng(seed)
    k, batch = 5, 7
    z = rng.standard_normal((k, batch)) * scale
    y = rng.integers(0, k, batch)
    o = gr.Tensor(z, requires_grad=True)
    gr.cross_entropy(o, y, axis=0, reduction="sum").backward()
    expected = _softmax(z, 0) - gr.one_hot(y, k).data
    np.testing.assert_allclose(o.grad, expected, rtol=1e-12, atol=1e-15)
    assert np.all(np.isfinite(o.grad))
    # classes along axis 1: the same, transposed
    o1 = gr.Tensor(z.T, requires_grad=True)
    gr.cross_entropy(o1, y, axis=1, reduction="sum").backward()
    np.testing.assert_allclose(o1.grad, expected.T, rtol=1e-12, atol=1e-15)
    # 'mean' divides by the number of examples; 'none' with a seed weights each column
    om = gr.Tensor(z, requires_grad=True)
    gr.cross_entropy(om, y, reduction="mean").backward()
    np.testing.assert_allclose(om.grad, expected / batch, rtol=1e-12, atol=1e-15)
    w = rng.uniform(0.5, 2.0, batch)
    on = gr.Tensor(z, requires_grad=True)
    gr.cross_entropy(on, y, reduction="none").backward(w)
    np.testing.assert_allclose(on.grad, expected * w, rtol=1e-12, atol=1e-15)
