"""A context (``context x: I``, fig. 10.9) gets a gradient on the taped strategy, checked by central
differences of the loss and against PyTorch running the same equations (an encoder that computes the
context needs it: fig. 10.12)."""

import numpy as np

import graphrnn as gr
from tests._deps import require


def _fd_context_grad(rec, data, params, name, eps=1e-6):
    out = np.zeros_like(data[name])
    for i in np.ndindex(out.shape):
        plus = {k: v.copy() for k, v in data.items()}
        minus = {k: v.copy() for k, v in data.items()}
        plus[name][i] += eps
        minus[name][i] -= eps
        out[i] = (rec.run(plus, params, backward=False).loss - rec.run(minus, params, backward=False).loss) / (2 * eps)
    return out


def test_context_gradient_matches_central_differences():
    rec = gr.load("fig10_9", sizes={"H": 3, "I": 2})
    data = rec.random_inputs(4, batch=2, seed=0)
    params = rec.init_params(seed=1)
    got = rec.run(data, params).context_grads["x"]
    assert got.shape == data["x"].shape
    np.testing.assert_allclose(got, _fd_context_grad(rec, data, params, "x"), rtol=1e-6, atol=1e-8)


def test_context_gradient_matches_torch():
    torch = require("torch")
    rec = gr.load("fig10_9", sizes={"H": 3, "I": 2})
    data = rec.random_inputs(5, batch=3, seed=2)
    p = rec.init_params(seed=3)
    got = rec.run(data, p).context_grads["x"]
    # fig10_9: h[t] = tanh(b + W h[t-1] + U one_hot(y[t]) + R x), o = c + V h, L[t] = cross_entropy(o[t], y[t+1])
    P = {k: torch.tensor(v) for k, v in p.items()}
    x = torch.tensor(data["x"], requires_grad=True)
    y = torch.tensor(data["y"])
    K = rec.variables["y"].classes
    h = torch.zeros(3, 3, dtype=torch.float64)
    loss = 0
    for t in range(5):
        h = torch.tanh(P["b"] + P["W"] @ h + P["U"] @ torch.nn.functional.one_hot(y[t], K).T.double() + P["R"] @ x)
        o = P["c"] + P["V"] @ h
        loss = loss + torch.nn.functional.cross_entropy(o.T, y[t + 1], reduction="sum")
    assert abs(loss.item() - rec.run(data, p).loss) < 1e-10 * abs(loss.item())
    loss.backward()
    np.testing.assert_allclose(got, x.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_context_gradients_are_kept_apart_from_grads_and_only_when_going_backward():
    rec = gr.load("fig10_9", sizes={"H": 3, "I": 2})
    data = rec.random_inputs(3, batch=2, seed=0)
    run = rec.run(data)
    assert set(run.context_grads) == {"x"} and "x" not in run.grads
    assert rec.run(data, backward=False).context_grads == {}
