"""A context (``context x: I``, fig. 10.9) gets a gradient on the taped strategy, checked by central
differences of the loss and against PyTorch running the same equations (an encoder that computes the
context needs it: fig. 10.12)."""

import numpy as np
import pytest

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


def _strategies():
    """Every way a run can go, as (name, options, compiled program allowed, lean threshold)."""
    return [("taped, dummy copies", {}, True, None),
            ("taped, no copies", {"copies": False}, False, None),
            ("compiled", {"copies": False}, True, None),
            ("compiled, lean", {"copies": False}, True, 0),
            ("checkpointed programs", {"checkpoint": 2}, True, None),
            ("checkpointed on the engine", {"checkpoint": 2}, False, None),
            ("truncated programs, whole window", {"truncate": (5, 5)}, True, None),
            ("truncated on the engine, whole window", {"truncate": (5, 5)}, False, None)]


@pytest.mark.parametrize("name,options,program,lean", _strategies(), ids=[s[0] for s in _strategies()])
@pytest.mark.parametrize("arch", ["fig10_9", "contexted"])
def test_every_strategy_gives_the_same_context_gradient(arch, name, options, program, lean, monkeypatch):
    from graphrnn.runtime import runner

    monkeypatch.setattr(runner, "PROGRAM", program)
    if lean is not None:
        monkeypatch.setattr(runner, "LEAN_BYTES", lean)
    if arch == "contexted":  # the context read inside the recurrence, by the outputs and at the first step only
        rec = gr.Recurrence(CONTEXTED, name="contexted")
    else:
        rec = gr.load(arch, sizes={"H": 3, "I": 2})
    data = rec.random_inputs(5, batch=3, seed=4)
    params = rec.init_params(seed=5)
    reference = _torch_free_reference(rec, data, params)
    got = rec.run(data, params, **options)
    assert set(got.context_grads) == set(reference) and not set(got.context_grads) & set(got.grads), name
    for c, g in reference.items():
        assert got.context_grads[c].shape == data[c].shape
        np.testing.assert_allclose(got.context_grads[c], g, rtol=1e-10, atol=1e-13, err_msg=f"{name}: d/d{c}")
    if lean is not None:
        assert got.program is not None and got.program.lean


CONTEXTED = """
size H = 3, I = 2, K = 3, C = 2
input   x: I
context c: C
target  y: class K
hidden  h: H
loss    L
h[t] = tanh(b + W @ h[t-1] + U @ x[t] + R @ (c * c))
o[t] = V @ h[t] + P @ c
L[t] = cross_entropy(o[t], y[t])
"""


def _torch_free_reference(rec, data, params):
    """The context gradients of a taped run with dummy copies, checked here by central differences."""
    got = rec.run(data, params).context_grads
    for c, g in got.items():
        np.testing.assert_allclose(g, _fd_context_grad(rec, data, params, c), rtol=1e-6, atol=1e-8)
    return got
