"""The notation's constructs one by one (tau, delays k, data read ahead and behind, contexts, a number per
step, one_hot(argmax(...)), transposes), names that would clash with the exported file's own, what cannot be
exported (a clear ExportError naming the construct), and mutations of the printers that the comparison
must catch."""

from __future__ import annotations

import numpy as np
import pytest
from _export_testlib import compare, jax_x64, require

import graphrnn as gr
from graphrnn.errors import SpecError
from graphrnn.export import ExportError, jax_target, lower, torch_target

#: tau-anchored equations (fig. 10.5) reading h[tau-1] (h0, learned, when T = 1) and o[tau-1] (outside: zero)
TAU = """
size H = 3, I = 2, K = 3
input  x: I
target y: class K
target z: H
state  h: H = learned
hidden o: K
loss   L
h[t] = tanh(b + W @ h[t-1] + U @ x[t])
o[tau] = c + V @ h[tau] + V2 @ h[tau-1] + 0.5 * o[tau-1]
m[tau] = o[tau] * 2
L[tau] = cross_entropy(m[tau], y[tau]) + mse(h[tau-1], z[tau])
"""

#: delay 2, data read behind (init zero) and ahead (T is one less than the data), a context, one_hot of an
#: argmax, transposes, a number per step used by another equation, powers, division, softmax, relu
MIXED = """
size H = 3, I = 2, K = 3
input   x: I
init    x = zero
context c0: I
target  y: class K
state   h: H = zero
param   Q: K x H
param   M: H x H
h[t] = tanh(W @ h[t-2] + U @ x[t-1] + R @ c0 + P @ one_hot(argmax(Q @ h[t-1])))
h2[t] = (h[t].T @ M).T + sigmoid(h[t]) ** 2
s[t] = mse(h2[t], softmax(A @ x[t+1]))
o[t] = V @ relu(h[t]) / 2.0 + s[t] * (C @ h[t]) - -h2[t-1].T.T
L[t] = cross_entropy(o[t], y[t+1]) + s[t] ** 2 + mse(log_softmax(o[t]), exp(h2[t]) / 3.0)
"""

#: spec names that are also names the exported files use (torch, sum, B, Steps, T is reserved by the notation)
CLASHES = """
input  x: 2
target z: 2
state  h: 2 = learned
h[t] = tanh(torch @ h[t-1] + sum @ x[t] + B + Steps * jnp)
L[t] = mse(h[t], z[t])
"""


def _params(rec, seed=2):
    return {k: 1.5 * v for k, v in rec.init_params(seed=seed).items()}


@pytest.mark.parametrize("spec, T", [(TAU, 1), (TAU, 3), (MIXED, 1), (MIXED, 4), (CLASHES, 3)])
def test_construct_matches_graphrnn(spec, T):
    rec = gr.Recurrence(spec, name="construct")
    data = rec.random_inputs(T, batch=2, seed=T)
    params = _params(rec)
    compare(rec, data, params, T=T)
    compare(rec, data, params)  # T from the data, as graphrnn takes it


def test_names_that_clash_are_renamed_locally_but_kept_as_parameter_names():
    torch = require("torch")
    rec = gr.Recurrence(CLASHES)
    from _export_testlib import load_source

    model = load_source(gr.export.to_torch(rec)).make_model(rec.init_params())
    assert {n for n, _ in model.named_parameters()} == {"torch", "sum", "B", "Steps", "jnp", "h0"}
    assert isinstance(model, torch.nn.Module)


def test_a_reference_before_the_data_without_init_is_an_error_as_in_graphrnn():
    require("torch")
    jax_x64()
    from _export_testlib import jax_loss_and_grads, torch_loss_and_grads

    rec = gr.Recurrence("input x: 2\ntarget z: 2\nh[t] = tanh(W @ x[t-1])\nL[t] = mse(h[t], z[t])\n")
    data, params = rec.random_inputs(3), rec.init_params()
    with pytest.raises(gr.DataError, match="x"):
        rec.run(data, params=params, T=3)
    with pytest.raises(LookupError, match=r"x\[0\] is needed"):
        torch_loss_and_grads(gr.export.to_torch(rec), params, data, T=3)
    with pytest.raises(LookupError, match=r"x\[0\] is needed"):
        jax_loss_and_grads(gr.export.to_jax(rec), params, data, T=3)


# ------------------------------------------------------------------------------------ what is refused


def test_sample_is_refused_naming_the_construct():
    text = gr.zoo.text("fig10_6").replace("argmax(o[t])", "sample(o[t])")
    rec = gr.Recurrence(text)
    with pytest.raises(ExportError, match=r"`sample\(o\[t\]\)` in the feedback line of y: sample\(\) draws from "
                                          r"graphrnn's own random number generator") as info:
        gr.export.to_torch(rec, mode="free")
    assert isinstance(info.value, SpecError) and info.value.line == 7  # the feedback line
    assert "def make_model" in gr.export.to_torch(rec)  # teacher forcing does not use the feedback line


def test_scheduled_sampling_is_refused():
    with pytest.raises(ExportError, match="scheduled sampling.*random number generator"):
        gr.export.to_jax(gr.load("fig10_6"), mode="scheduled")


def test_free_running_without_feedback_is_refused():
    with pytest.raises(ExportError, match="no `feedback` line"):
        gr.export.to_torch(gr.load("fig10_3"), mode="free")


def test_a_mixed_order_block_is_refused_naming_its_variables():
    text = """
input x: 2
target z: 2
hidden h: 2
hidden g: 2
loss L
h[t] = tanh(W @ g[t+1] + U @ x[t])
g[t] = tanh(V @ h[t-2])
L[t] = mse(h[t], z[t])
"""
    rec = gr.Recurrence(text)
    assert np.isfinite(rec.run(rec.random_inputs(4), T=4).loss)  # graphrnn runs it, by a general order
    with pytest.raises(ExportError, match=r"h, g read each other both from the past \(h\[t-2\]\) and from the "
                                          r"future \(g\[t\+1\]\).*mixed-order") as info:
        gr.export.to_jax(rec)
    assert info.value.variable == "h" and info.value.line == 7


def test_a_constant_equation_is_refused():
    rec = gr.Recurrence("input x: 2\ntarget z: 2\nk[t] = 2\nh[t] = tanh(W @ x[t]) * k[t]\nL[t] = mse(h[t], z[t])\n")
    with pytest.raises(ExportError, match=r"k\[t\] = 2 is a constant"):
        gr.export.to_torch(rec)


def test_a_parameter_named_like_a_module_attribute_is_refused_for_torch():
    require("torch")
    rec = gr.Recurrence("input x: 2\ntarget z: 2\nh[t] = tanh(cuda @ x[t])\nL[t] = mse(h[t], z[t])\n")
    with pytest.raises(ExportError, match="'cuda'.*torch.nn.Module"):
        gr.export.to_torch(rec)
    assert "cuda = jnp.reshape(params['cuda']" in gr.export.to_jax(rec)  # JAX has no such restriction


def test_export_takes_a_recurrence():
    with pytest.raises(ExportError, match="takes a graphrnn Recurrence"):
        gr.export.to_torch("h[t] = tanh(W @ h[t-1])")
    with pytest.raises(ExportError, match="mode must be one of"):
        lower(gr.load("fig10_3"), mode="sideways")


# ------------------------------------------------------------------------------------ mutations


@pytest.mark.parametrize("target, table, fn, wrong", [
    ("torch", torch_target._CALLS, "tanh", "1.01 * torch.tanh({0})"),
    ("jax", jax_target._CALLS, "tanh", "1.01 * jnp.tanh({0})"),
    ("torch", torch_target._CALLS, "sigmoid", "torch.sigmoid(1.01 * {0})"),
    ("jax", jax_target._CALLS, "log_softmax", "jax.nn.log_softmax({0}, axis=0) * 1.01"),
])
def test_one_op_wrong_by_one_percent_fails_the_comparison(monkeypatch, target, table, fn, wrong):
    monkeypatch.setitem(table, fn, wrong)
    rec = gr.load("gru") if fn != "log_softmax" else gr.Recurrence(
        gr.zoo.text("fig10_3").replace("cross_entropy(o[t], y[t])", "cross_entropy(log_softmax(o[t]), y[t])"))
    data, params = rec.random_inputs(3, batch=2), _params(rec)
    with pytest.raises(AssertionError, match="differs from graphrnn's"):
        compare(rec, data, params, T=3, targets=(target,))


@pytest.mark.parametrize("target, module", [("torch", torch_target), ("jax", jax_target)])
def test_a_wrong_loss_helper_fails_the_comparison(monkeypatch, target, module):
    wrong = module._HELPERS["mse"].replace("/ (a.shape[0]", "/ (1.01 * a.shape[0]")
    assert wrong != module._HELPERS["mse"]
    monkeypatch.setitem(module._HELPERS, "mse", wrong)
    rec = gr.Recurrence(gr.zoo.text("fig10_2") + "\ntarget z: H\nL[t] = mse(h[t], z[t])\nloss L\n")
    with pytest.raises(AssertionError, match="differs from graphrnn's"):
        compare(rec, rec.random_inputs(3, batch=2), _params(rec), T=3, targets=(target,))


def test_a_wrong_delay_fails_the_comparison(monkeypatch):
    """The printers' reads: h[t-1] printed as h[t-2] must be caught."""
    real = torch_target._TorchPrinter._read

    def off_by_one(self, ref):
        return real(self, ref).replace("t - 1]", "t - 2]")

    monkeypatch.setattr(torch_target._TorchPrinter, "_read", off_by_one)
    rec = gr.load("fig10_3")
    with pytest.raises(AssertionError, match="differs from graphrnn's"):
        compare(rec, rec.random_inputs(4, batch=2), _params(rec), T=4, targets=("torch",))
