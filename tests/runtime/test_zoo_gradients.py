"""Every zoo architecture against finite differences, in float64.

* every parameter: central differences of ``run(..., backward=False).loss``;
* every per-step vector variable at every step: the spec is rewritten with a probe input,
  ``h[t] = (rhs) + probe_h[t]``, whose data is zero; dL/dprobe_h[t], by finite differences,
  is dL/dh[t], which ``run.grads["h[t]"]`` must match;
* the dummy copies W^(t) (§10.2.2): per-step gradients that add up to ∇W and equal the
  book's per-step terms (eqs. 10.22-10.28) for fig. 10.3.
"""

from __future__ import annotations

import numpy as np
import pytest
from _rec_testlib import (
    assert_grad_close, load, numerical_gradient, scaled_params, vector_variables, with_probe, zoo_specs,
)

import graphrnn as gr

T = 4
BATCH = 2
SPECS = zoo_specs()
FEEDBACK = [n for n in SPECS if load(n).spec.feedbacks]


def test_the_zoo_is_all_here():
    """The book's figures are all covered (a zoo file silently dropped would shrink the suite)."""
    assert {"fig10_2+mse", "fig10_3", "fig10_4", "fig10_5", "fig10_6", "fig10_9", "fig10_10", "fig10_11",
            "gru", "lstm", "halt"} <= set(SPECS)
    assert {"fig10_6", "fig10_10"} <= set(FEEDBACK)


def _setup(name, seed=0):
    rec = load(name)
    data = rec.random_inputs(T, batch=BATCH, seed=seed)
    params = scaled_params(rec, seed=seed + 1)
    return rec, data, params


@pytest.mark.parametrize("name", sorted(SPECS))
def test_parameter_gradients_match_finite_differences(name):
    rec, data, params = _setup(name)
    run = rec.run(data, params=params, T=T)
    assert np.isfinite(run.loss)
    assert set(run.grads) >= set(rec.all_param_shapes())

    def loss():
        return rec.run(data, params=params, T=T, backward=False).loss

    assert loss() == pytest.approx(run.loss, rel=1e-12, abs=1e-12)
    for pname, value in params.items():
        numeric = numerical_gradient(loss, value)
        assert_grad_close(run.grads[pname], numeric, f"{name}: dL/d{pname}")
    # the check is not vacuous: every parameter reaches the loss
    for pname in params:
        assert np.abs(run.grads[pname]).max() > 1e-8, f"{name}: dL/d{pname} is zero"


@pytest.mark.parametrize("mode", ["free", "scheduled"])
@pytest.mark.parametrize("name", FEEDBACK)
def test_parameter_gradients_in_free_running_modes(name, mode):
    """With the model's own (argmax) outputs fed back, the loss is piecewise smooth in the
    parameters and the fed value has no gradient: finite differences agree with the engine."""
    rec, data, params = _setup(name, seed=3)
    run = rec.run(data, params=params, T=T, mode=mode, p=0.5, seed=7)

    def loss():
        return rec.run(data, params=params, T=T, mode=mode, p=0.5, seed=7, backward=False).loss

    for pname, value in params.items():
        assert_grad_close(run.grads[pname], numerical_gradient(loss, value), f"{name} ({mode}): dL/d{pname}")


@pytest.mark.parametrize("name", sorted(SPECS))
def test_per_step_variable_gradients_match_finite_differences(name):
    rec, data, params = _setup(name, seed=5)
    run = rec.run(data, params=params, T=T)
    checked = 0
    for var in vector_variables(rec):
        text, probe = with_probe(SPECS[name], rec, var)
        probed = gr.Recurrence(text, name=f"{name}_probe_{var}")
        assert probed.param_shapes == rec.param_shapes
        pdata = dict(data)
        pdata[probe] = np.zeros((T, rec.variables[var].rows, BATCH))

        def loss():
            return probed.run(pdata, params=params, T=T, backward=False).loss

        assert loss() == pytest.approx(run.loss, rel=1e-12, abs=1e-12)  # a zero probe changes nothing
        numeric = numerical_gradient(loss, pdata[probe])
        steps = [T] if rec.variables[var].anchor == "tau" else range(1, T + 1)
        for t in range(1, T + 1):
            if t in steps:
                assert_grad_close(run.grads[f"{var}[{t}]"], numeric[t - 1], f"{name}: dL/d{var}[{t}]")
                checked += 1
            else:  # a probe at a step where var is not computed is never read
                assert np.all(numeric[t - 1] == 0)
    assert checked >= T


@pytest.mark.parametrize("name", sorted(SPECS))
def test_loss_terms_have_unit_gradient(name):
    """∂L/∂L^(t) = 1 (eq. 10.17), and the total is the sum of the step losses (eq. 10.13)."""
    rec, data, params = _setup(name)
    run = rec.run(data, params=params, T=T)
    steps = [T] if rec.variables[rec.losses[0]].anchor == "tau" else list(range(1, T + 1))
    assert sorted(run.step_losses) == steps
    assert run.loss == pytest.approx(sum(run.step_losses.values()), rel=1e-12)
    for loss in rec.losses:
        for t in steps:
            assert np.all(run.grads[f"{loss}[{t}]"] == 1.0)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_dummy_copies_add_up_to_the_totals(name):
    rec, data, params = _setup(name, seed=11)
    run = rec.run(data, params=params, T=T)
    assert set(run.copy_grads) == set(rec.param_shapes)
    for pname, per_step in run.copy_grads.items():
        assert set(per_step) <= set(range(1, T + 1))
        total = sum(per_step.values())
        np.testing.assert_allclose(total, run.grads[pname], rtol=1e-12, atol=1e-12, err_msg=pname)
        np.testing.assert_allclose(run.stacked_copy_grads(pname).sum(axis=0), run.grads[pname], rtol=1e-12,
                                   atol=1e-12)
    # the copies change nothing but the bookkeeping (and copies=False takes the batched fast path)
    plain = rec.run(data, params=params, T=T, copies=False)
    assert plain.copy_grads == {}
    assert plain.loss == pytest.approx(run.loss, rel=1e-12)
    assert set(plain.grads) == set(run.grads)
    for key in run.grads:
        np.testing.assert_allclose(plain.grads[key], run.grads[key], rtol=1e-10, atol=1e-13, err_msg=key)


def test_dummy_copies_are_the_books_per_step_terms():
    """For fig. 10.3 each copy's gradient is the step-t term of eqs. 10.24-10.28."""
    rec = load("fig10_3")
    data = rec.random_inputs(T, batch=3, seed=2)
    run = rec.run(data, params=scaled_params(rec), T=T)
    v, g, cg = run.values, run.grads, run.copy_grads
    for t in range(1, T + 1):
        h, h_prev = v[f"h[{t}]"], v.get(f"h[{t - 1}]", np.zeros_like(v[f"h[{t}]"]))
        x = data["x"][t - 1]
        d_o = g[f"o[{t}]"]
        d_a = (1 - h ** 2) * g[f"h[{t}]"]  # diag(1 - h²) ∇h
        np.testing.assert_allclose(cg["c"][t], d_o.sum(axis=1, keepdims=True), atol=1e-12)
        np.testing.assert_allclose(cg["V"][t], d_o @ h.T, atol=1e-12)
        np.testing.assert_allclose(cg["b"][t], d_a.sum(axis=1, keepdims=True), atol=1e-12)
        np.testing.assert_allclose(cg["W"][t], d_a @ h_prev.T, atol=1e-12)
        np.testing.assert_allclose(cg["U"][t], d_a @ x.T, atol=1e-12)
        # eq. 10.18 and 10.21: ∇o = softmax(o) - onehot(y); ∇h = Wᵀ diag(1-h'²) ∇h' + Vᵀ ∇o
        o = v[f"o[{t}]"]
        p = np.exp(o - o.max(axis=0)) / np.exp(o - o.max(axis=0)).sum(axis=0)
        p[data["y"][t - 1], np.arange(3)] -= 1
        np.testing.assert_allclose(d_o, p, atol=1e-12)
        back = run.values["V"].T @ d_o
        if t < T:
            h_next = v[f"h[{t + 1}]"]
            back = back + run.values["W"].T @ ((1 - h_next ** 2) * g[f"h[{t + 1}]"])
        np.testing.assert_allclose(g[f"h[{t}]"], back, atol=1e-12)
