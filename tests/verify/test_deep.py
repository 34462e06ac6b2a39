"""Fig. 10.13's deep RNNs (a, b, c): the engine's loss and gradients against PyTorch.

The PyTorch side is written here from the book's description of each variant (§10.5),
not from graphrnn's code: the same equations, with autograd doing the backward pass.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphrnn as gr
from _deps import require

torch = require("torch")


def _ce(o, y):
    """-log softmax(o)[y], summed over the batch (o: K x B columns)."""
    return -torch.log_softmax(o, dim=0).gather(0, y.view(1, -1)).sum()


def _deep_a(P, x, y):
    """(a): two recurrent layers, h over x and z over h, each with its own loop."""
    T, _, B = x.shape
    h = torch.zeros(P["W"].shape[0], B, dtype=torch.float64)
    z = torch.zeros(P["Wz"].shape[0], B, dtype=torch.float64)
    loss = 0.0
    for t in range(T):
        h = torch.tanh(P["b"] + P["W"] @ h + P["U"] @ x[t])
        z = torch.tanh(P["bz"] + P["Wz"] @ z + P["Uz"] @ h)
        loss = loss + _ce(P["c"] + P["V"] @ z, y[t])
    return loss


def _deep_bc(P, x, y, skip: bool):
    """(b): an MLP layer between input and state, in the transition and before the output; (c) adds S."""
    T, _, B = x.shape
    h = torch.zeros(P["W"].shape[0], B, dtype=torch.float64)
    m = torch.zeros(P["Wm"].shape[0], B, dtype=torch.float64)  # the transition layer before step 1
    loss = 0.0
    for t in range(T):
        p = torch.tanh(P["bp"] + P["Up"] @ x[t])
        pre = P["b"] + P["W"] @ m + P["U"] @ p
        if skip:
            pre = pre + P["S"] @ h
        h = torch.tanh(pre)
        m = torch.tanh(P["bm"] + P["Wm"] @ h)
        q = torch.tanh(P["bq"] + P["Vq"] @ h)
        loss = loss + _ce(P["c"] + P["V"] @ q, y[t])
    return loss


REFERENCE = {
    "fig10_13a": _deep_a,
    "fig10_13b": lambda P, x, y: _deep_bc(P, x, y, skip=False),
    "fig10_13c": lambda P, x, y: _deep_bc(P, x, y, skip=True),
}


@pytest.mark.parametrize("arch", sorted(REFERENCE))
@pytest.mark.parametrize("T,B", [(1, 1), (5, 3)])
def test_deep_rnn_matches_pytorch(arch, T, B):
    rec = gr.load(arch)
    params = rec.init_params(seed=3)
    data = rec.random_inputs(T, batch=B, seed=4)
    run = rec.run(data, params=params)
    P = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    loss = REFERENCE[arch](P, torch.tensor(data["x"]), torch.tensor(data["y"]))
    loss.backward()
    assert run.loss == pytest.approx(loss.item(), rel=1e-12)
    assert set(P) <= set(run.grads)
    for k in P:
        # None: the loss does not read k (m's layer at T = 1: m^(1) would feed h^(2) only)
        expected = P[k].grad.numpy() if P[k].grad is not None else np.zeros(P[k].shape)
        np.testing.assert_allclose(run.grads[k], expected, rtol=1e-9, atol=1e-12, err_msg=k)
        if T > 1:
            assert np.abs(expected).max() > 1e-6, k  # every parameter matters beyond one step


def test_the_skip_of_c_shortens_the_path_from_a_step_to_the_next():
    """(c)'s point (§10.5): h^(t-1) reaches h^(t) in one step through S, not two through m."""
    import networkx as nx
    for arch, shortest in (("fig10_13b", 2), ("fig10_13c", 1)):
        g = gr.load(arch).unroll(3)
        assert nx.shortest_path_length(g, "h[1]", "h[2]") == shortest, arch


def test_the_derivation_of_c_has_both_paths_into_h():
    """∇h(t) L of (c) collects the deep path (through m) and the skip (through S); (b) has the deep one only."""
    c = gr.derive("fig10_13c").text()
    b = gr.derive("fig10_13b").text()
    line_c = next(ln for ln in c.splitlines() if "∇h(t) L =" in ln)
    assert "Wmᵀ diag(1 − (m(t))²) ∇m(t) L" in line_c and "Sᵀ diag(1 − (h(t+1))²) ∇h(t+1) L" in line_c
    assert "Sᵀ" not in b
    assert "∇m(t) L = Wᵀ diag(1 − (h(t+1))²) ∇h(t+1) L" in b


@pytest.mark.parametrize("arch", sorted(REFERENCE))
def test_deep_rnns_verify(arch):
    from graphrnn.verify import verify
    report = verify(arch, steps=4, batch=2)
    assert report.ok, report
