"""Perturbed: the unrolled graph evaluated with one node's value nudged, all downstream recomputed."""

from __future__ import annotations

import numpy as np
import pytest

import graphrnn as gr
from graphrnn import zoo
from graphrnn.verify.perturb import Perturbed, forward_graph, parse_key

T = 5


def _setup(arch="fig10_3", mode="teacher", batch=2, seed=0):
    rec = zoo.load(arch)
    inputs, params = rec.random_inputs(T, batch=batch, seed=seed), rec.init_params(seed=seed)
    run = rec.run(inputs, params=params, T=T, mode=mode, seed=seed)
    return rec, run, Perturbed(rec, inputs, params, T, mode=mode, seed=seed)


def test_keys_are_read_back():
    assert parse_key("h[3]") == ("h", 3)
    assert parse_key("h[-1]") == ("h", -1)
    assert parse_key("W") == ("W", None)
    assert parse_key("W^(3)") == ("W", 3)


def test_differences_through_a_node_match_the_engines_gradient():
    rec, run, ev = _setup()
    for node in ("h[1]", "h[3]", "o[5]", "L[2]"):
        np.testing.assert_allclose(ev.gradient(node), run.grads[node], rtol=0, atol=1e-8)
    np.testing.assert_allclose(ev.gradient("W"), run.grads["W"], rtol=0, atol=1e-8)
    for t in range(1, T + 1):
        np.testing.assert_allclose(ev.gradient(f"W^({t})"), run.copy_grads["W"][t], rtol=0, atol=1e-8)


def test_only_what_is_downstream_is_recomputed():
    rec, run, ev = _setup()
    down = {f"{n}[{t}]" for n, t in ev.downstream("h[3]")}
    assert down == {"h[4]", "h[5]", "o[3]", "o[4]", "o[5]", "L[3]", "L[4]", "L[5]"}
    copy = {f"{n}[{t}]" for n, t in ev.downstream("W^(2)")}
    assert "h[2]" in copy and "h[1]" not in copy and "o[1]" not in copy
    assert {f"{n}[{t}]" for n, t in ev.downstream("c")} == {f"{v}[{t}]" for v in "oL" for t in range(1, 6)}


def test_a_bidirectional_state_reaches_backwards_in_time():
    rec, run, ev = _setup("fig10_11")
    down = {f"{n}[{t}]" for n, t in ev.downstream("g[3]")}
    assert {"g[2]", "g[1]", "o[3]", "o[1]"} <= down and "g[4]" not in down
    np.testing.assert_allclose(ev.gradient("g[3]"), run.grads["g[3]"], atol=1e-8)


def test_the_base_values_are_restored_after_each_perturbation():
    rec, run, ev = _setup()
    before = {k: v.data.copy() for k, v in ev.ctx.values.items()}
    ev.gradient("h[2]")
    ev.gradient("W^(3)")
    ev.gradient("b")
    assert all(np.array_equal(ev.ctx.values[k].data, v) for k, v in before.items())
    assert ev.loss_change("h[2]", np.zeros((5, 2))) == 0.0
    assert ev.loss_change("L[4]", np.array(0.25)) == pytest.approx(0.25)


def test_learned_initial_states_are_perturbed_where_they_are_read():
    rec = gr.Recurrence("""
input x: 2
target y: class 3
state h: 3 = learned
h[t] = tanh(W @ h[t-1] + U @ x[t])
o[t] = V @ h[t]
L[t] = cross_entropy(o[t], y[t])
""")
    inputs, params = rec.random_inputs(T, batch=2), rec.init_params(seed=3)
    run = rec.run(inputs, params=params, T=T)
    ev = Perturbed(rec, inputs, params, T)
    np.testing.assert_allclose(ev.gradient("h0"), run.grads["h0"], atol=1e-8)
    consumer = ev.local_vjp("h0", "h[1]", run.grads["h[1]"])
    np.testing.assert_allclose(consumer, run.grads["h0"], atol=1e-8)


def test_scheduled_sampling_is_re_evaluated_with_the_same_draws():
    rec, run, ev = _setup("fig10_10", mode="scheduled")
    assert not ev.partial
    np.testing.assert_allclose(ev.gradient("h[2]"), run.grads["h[2]"], atol=1e-8)


def test_local_jacobians_come_from_one_equation_alone():
    rec, run, ev = _setup()
    # h[3] feeds h[4] and o[3]; the engine's ∇h[3] is the sum of the two local products
    total = ev.local_vjp("h[3]", "h[4]", run.grads["h[4]"]) + ev.local_vjp("h[3]", "o[3]", run.grads["o[3]"])
    np.testing.assert_allclose(total, run.grads["h[3]"], atol=1e-9)
    before = ev.evaluations
    ev.local_vjp("W^(2)", "h[2]", run.grads["h[2]"])
    assert ev.evaluations == before  # no end-to-end evaluation was needed


def test_the_recorded_graph_can_be_differentiated_more_than_once():
    rec = zoo.load("fig10_3")
    inputs, params = rec.random_inputs(T, batch=1), rec.init_params()
    tensors = forward_graph(rec, inputs, params, T)
    first = gr.grad(tensors["L[5]"], [tensors["h[2]"]], retain_graph=True)[0]
    again = gr.grad(tensors["L[5]"], [tensors["h[2]"], tensors["h[5]"]], retain_graph=True)
    np.testing.assert_array_equal(first, again[0])
    assert again[1].shape == (5, 1)
