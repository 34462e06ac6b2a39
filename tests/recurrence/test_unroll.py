"""Unrolling in time (§10.1): evaluation order, boundary values, data checks.

The order must be topological for forward recurrences, backward-in-time ones (fig. 10.11's g)
and longer delays; a reference outside 1..T reads the zero or learned initial value; fig. 10.5
has its output only at tau; fig. 10.9 reads one label beyond T; T < 1 and bad data are errors
that name the variable, the step and the expected shape.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from _rec_testlib import assert_grad_close, numerical_gradient, scaled_params, zoo_specs

import graphrnn as gr
from graphrnn.recurrence import evaluation_order

SPECS = zoo_specs()

DELAY2 = """
size H = 3, I = 2
input x: I
target y: class 2
state h: H = zero
loss L
h[t] = tanh(b + W @ h[t-2] + U @ x[t])
L[t] = cross_entropy(V @ h[t], y[t])
"""

LEARNED = """
size H = 3, I = 2
input x: I
target y: class 2
state h: H = learned
loss L
h[t] = tanh(b + W @ h[t-1] + U @ x[t])
L[t] = cross_entropy(V @ h[t], y[t])
"""

MIXED = """
size H = 3, I = 2
input x: I
target y: class 2
state h: H
state g: H
loss L
h[t] = tanh(W @ g[t+1] + U @ x[t])
g[t] = tanh(W2 @ h[t-2] + U2 @ x[t])
L[t] = cross_entropy(V @ (h[t] + g[t]), y[t])
"""


def _check_topological(un):
    """Every computed node comes after every computed node it reads, and appears once."""
    order = un.order
    assert len(order) == len(set(order))
    position = {node: i for i, node in enumerate(order)}
    assert nx.is_directed_acyclic_graph(un)
    for u, v in un.edges:
        if u in position and v in position:
            assert position[u] < position[v], f"{v} is computed before {u}, which it reads"
    # each computed variable appears at each of its steps
    rec, T = un.rec, un.T
    eqs = rec.mode_equations(un.mode)
    expected = {f"{n}[{t}]" for n, eq in eqs.items() for t in ([T] if eq.anchor == "tau" else range(1, T + 1))}
    assert set(order) == expected


@pytest.mark.parametrize("T", [1, 2, 5])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_order_is_topological_for_the_zoo(name, T):
    rec = gr.Recurrence(SPECS[name])
    modes = ["teacher", "free", "scheduled"] if rec.spec.feedbacks else ["teacher"]
    for mode in modes:
        un = rec.unroll(T, mode)
        assert un.T == T and un.mode == mode
        _check_topological(un)
        assert [f"{v}[{t}]" for v, t in evaluation_order(rec, T, mode)] == un.order


@pytest.mark.parametrize("text", [DELAY2, LEARNED, MIXED], ids=["delay2", "learned", "mixed"])
def test_order_is_topological_for_longer_and_mixed_delays(text):
    rec = gr.Recurrence(text)
    for T in (1, 3, 6):
        _check_topological(rec.unroll(T))


def test_backward_in_time_runs_backwards():
    un = gr.load("fig10_11").unroll(5)
    pos = {n: i for i, n in enumerate(un.order)}
    for t in range(1, 5):
        assert pos[f"h[{t}]"] < pos[f"h[{t + 1}]"]
        assert pos[f"g[{t + 1}]"] < pos[f"g[{t}]"]
    assert un.has_edge("g[3]", "g[2]") and un.edges["g[3]", "g[2]"]["delay"] == -1
    assert un.has_edge("h[2]", "h[3]") and un.edges["h[2]", "h[3]"]["delay"] == 1
    assert un.nodes["g[6]"]["kind"] == "initial" and un.nodes["h[0]"]["kind"] == "initial"


def test_out_of_range_references_read_zero():
    """h[0] = 0 forwards and g[tau+1] = 0 backwards: the first and last steps are plain formulas."""
    rec = gr.load("fig10_11")
    T = 4
    data = rec.random_inputs(T, batch=2, seed=3)
    p = scaled_params(rec)
    run = rec.run(data, params=p, T=T)
    np.testing.assert_allclose(run.values["h[1]"], np.tanh(p["b"] + p["U"] @ data["x"][0]), atol=1e-14)
    np.testing.assert_allclose(run.values[f"g[{T}]"], np.tanh(p["b2"] + p["U2"] @ data["x"][T - 1]), atol=1e-14)
    np.testing.assert_array_equal(run.values["h[0]"], 0)
    np.testing.assert_array_equal(run.values[f"g[{T + 1}]"], 0)
    np.testing.assert_allclose(run.values["g[2]"], np.tanh(p["b2"] + p["W2"] @ run.values["g[3]"]
                                                           + p["U2"] @ data["x"][1]), atol=1e-14)


def test_delay_two_reads_two_initial_values():
    rec = gr.Recurrence(DELAY2)
    un = rec.unroll(4)
    assert un.nodes["h[-1]"]["kind"] == "initial" and un.nodes["h[0]"]["kind"] == "initial"
    assert un.has_edge("h[-1]", "h[1]") and un.has_edge("h[0]", "h[2]") and un.has_edge("h[1]", "h[3]")
    assert not un.has_edge("h[1]", "h[2]")
    assert un.edges["h[1]", "h[3]"]["delay"] == 2
    data = rec.random_inputs(4, batch=2, seed=1)
    p = scaled_params(rec)
    run = rec.run(data, params=p, T=4)
    for t in (1, 2):
        np.testing.assert_allclose(run.values[f"h[{t}]"], np.tanh(p["b"] + p["U"] @ data["x"][t - 1]), atol=1e-14)
    for t in (3, 4):
        np.testing.assert_allclose(run.values[f"h[{t}]"],
                                   np.tanh(p["b"] + p["W"] @ run.values[f"h[{t - 2}]"] + p["U"] @ data["x"][t - 1]),
                                   atol=1e-14)


def test_mixed_delays_in_one_group_unroll_and_check_gradients():
    """h reads g one step ahead and g reads h two steps back: the group runs neither forwards
    nor backwards, but every value still has a place in the order."""
    rec = gr.Recurrence(MIXED)
    T = 5
    data = rec.random_inputs(T, batch=2, seed=2)
    p = scaled_params(rec)
    run = rec.run(data, params=p, T=T)

    def loss():
        return rec.run(data, params=p, T=T, backward=False).loss

    for name in p:
        assert_grad_close(run.grads[name], numerical_gradient(loss, p[name]), f"dL/d{name}")


def test_learned_initial_state_is_a_parameter_with_a_gradient():
    rec = gr.Recurrence(LEARNED)
    assert rec.learned_inits() == {"h": "h0"}
    assert rec.all_param_shapes()["h0"] == (3, 1)
    assert rec.parameter_count == sum(r * c for r, c in rec.all_param_shapes().values())
    T = 4
    data = rec.random_inputs(T, batch=2, seed=5)
    p = scaled_params(rec)
    p["h0"] = np.array([[0.5], [-0.4], [0.3]])
    run = rec.run(data, params=p, T=T)
    np.testing.assert_allclose(run.values["h[1]"], np.tanh(p["b"] + p["W"] @ p["h0"] + p["U"] @ data["x"][0]),
                               atol=1e-14)
    assert rec.unroll(T).nodes["h[0]"]["learned"] == "h0"

    def loss():
        return rec.run(data, params=p, T=T, backward=False).loss

    numeric = numerical_gradient(loss, p["h0"])
    assert np.abs(numeric).max() > 1e-6
    assert_grad_close(run.grads["h0"], numeric, "dL/dh0")
    # chain rule: dL/dh0 = Wᵀ (diag(1 - h1²) dL/dh1), summed over the batch
    h1 = run.values["h[1]"]
    expected = (p["W"].T @ ((1 - h1 ** 2) * run.grads["h[1]"])).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(run.grads["h0"], expected, atol=1e-12)


def test_learned_initial_value_is_shared_by_every_out_of_range_step():
    text = LEARNED.replace("h[t-1]", "h[t-2]")
    rec = gr.Recurrence(text)
    data = rec.random_inputs(3, batch=1, seed=5)
    p = scaled_params(rec)
    run = rec.run(data, params=p, T=3)
    for t in (1, 2):
        np.testing.assert_allclose(run.values[f"h[{t}]"],
                                   np.tanh(p["b"] + p["W"] @ p["h0"] + p["U"] @ data["x"][t - 1]), atol=1e-14)

    def loss():
        return rec.run(data, params=p, T=3, backward=False).loss

    assert_grad_close(run.grads["h0"], numerical_gradient(loss, p["h0"]), "dL/dh0 (two uses)")


def test_fast_path_with_a_learned_initial_value_and_a_batch():
    rec = gr.Recurrence("input x: 2\ntarget z: 1\nstate g: 2 = learned\ng[t] = tanh(U @ x[t])\n"
                        "h[t] = V @ g[t-1]\nL[t] = mse(h[t], z[t])\n")
    data = rec.random_inputs(3, batch=2, seed=1)
    slow = rec.run(data, T=3)
    fast = rec.run(data, T=3, copies=False)
    assert fast.loss == pytest.approx(slow.loss, rel=1e-12)


def test_fig10_5_has_its_output_only_at_tau():
    rec = gr.load("fig10_5")
    T = 5
    un = rec.unroll(T)
    assert [n for n in un.order if n.startswith(("o[", "L["))] == [f"o[{T}]", f"L[{T}]"]
    assert rec.variables["o"].anchor == "tau" and rec.variables["h"].anchor == "t"
    assert rec.steps_needed("y", T) == (T, T)
    data = rec.random_inputs(T, batch=2, seed=1)
    run = rec.run(data, T=T)
    assert list(run.step_losses) == [T] and run.loss == pytest.approx(run.step_losses[T])
    assert f"o[{T - 1}]" not in run.values
    # every hidden state feeds the single output, so every one has a gradient
    for t in range(1, T + 1):
        assert np.abs(run.grads[f"h[{t}]"]).max() > 0
    # only y[tau] is read: the other labels do not change anything
    other = dict(data, y=(data["y"] + 1) % rec.variables["y"].classes)
    other["y"][T - 1] = data["y"][T - 1]
    assert rec.run(other, T=T).loss == run.loss


def test_fig10_9_target_needs_one_label_beyond_T():
    rec = gr.load("fig10_9")
    T = 4
    assert rec.steps_needed("y", T) == (1, T + 1)
    data = rec.random_inputs(T, batch=2, seed=2)
    assert data["y"].shape == (T + 1, 2) and data["x"].shape == (3, 2)
    run = rec.run(data, T=T)
    # L[t] compares o[t] with y[t+1]
    o = run.values[f"o[{T}]"]
    logp = o - o.max(axis=0) - np.log(np.exp(o - o.max(axis=0)).sum(axis=0))
    assert run.step_losses[T] == pytest.approx(-logp[data["y"][T], np.arange(2)].sum(), rel=1e-12)
    # without T, the number of steps is what the labels cover
    assert rec.run(data).T == T
    # with only T labels, step T's target is missing: the error names y and the step
    short = dict(data, y=data["y"][:T])
    with pytest.raises(gr.DataError) as info:
        rec.run(short, T=T)
    message = str(info.value)
    assert f"y[{T + 1}]" in message and "'y'" in message and f"1..{T}" in message
    assert f"L[{T}]" in message  # who needed it


def test_data_needed_before_step_one_requires_an_init():
    text = """
input x: 2
target y: class 2
state h: 3
h[t] = tanh(W @ h[t-1] + U @ x[t-1])
L[t] = cross_entropy(V @ h[t], y[t])
"""
    rec = gr.Recurrence(text)
    data = rec.random_inputs(3, batch=1)
    with pytest.raises(gr.DataError) as info:
        rec.run(data, T=3)
    assert "x[0]" in str(info.value) and "init x = zero" in str(info.value)
    fixed = gr.Recurrence(text.replace("state h: 3", "state h: 3\ninit x = zero"))
    run = fixed.run(data, T=3)
    np.testing.assert_array_equal(run.values["h[1]"], 0.0)  # tanh(W @ 0 + U @ 0)


def test_short_data_is_an_error_even_with_an_initial_value():
    rec = gr.load("fig10_10")  # `init y = zero`: y[0] is the start symbol
    data = rec.random_inputs(4, batch=2, seed=1)
    short = dict(data, y=data["y"][:3])
    with pytest.raises(gr.DataError, match=r"y\[4\]"):
        rec.run(short, T=4)


@pytest.mark.parametrize("T", [0, -1, 2.5, True, "3", None])
def test_T_must_be_a_whole_number_of_at_least_one(T):
    rec = gr.load("fig10_3")
    if T is not None:
        with pytest.raises(gr.GraphrnnError, match="at least 1") as info:
            rec.unroll(T)
        assert isinstance(info.value, ValueError)
    data = rec.random_inputs(3)
    if T is None:  # T from the data
        assert rec.run(data).T == 3
        with pytest.raises(gr.DataError, match="too short|covers"):
            rec.run({k: v[:0] for k, v in data.items()})
        return
    with pytest.raises(gr.GraphrnnError, match="at least 1"):
        rec.run(data, T=T)


FIG3 = gr.load("fig10_3")
GOOD = FIG3.random_inputs(4, batch=2, seed=0)

#: (id, inputs, run options, substrings the DataError must contain)
DATA_ERRORS = [
    ("missing x", {"y": GOOD["y"]}, {}, ["missing", "'x'", "(T, 3, B)"]),
    ("missing y", {"x": GOOD["x"]}, {}, ["missing", "'y'", "(T, B)", "class labels"]),
    ("x has 2 rows", dict(GOOD, x=GOOD["x"][:, :2]), {}, ["'x'", "(T, 3, B)", "(4, 2, 2)"]),
    ("x is flat", dict(GOOD, x=np.zeros(12)), {}, ["'x'", "(T, 3, B)", "(12,)"]),
    ("y is 3-d", dict(GOOD, y=np.zeros((4, 3, 2))), {}, ["'y'", "class labels", "(4, 3, 2)"]),
    ("y out of range", dict(GOOD, y=GOOD["y"] + 4), {}, ["y[1]", "outside 0..3"]),
    ("y not whole", dict(GOOD, y=GOOD["y"] + 0.5), {}, ["'y'", "whole numbers"]),
    ("y is text", dict(GOOD, y=np.array([["a", "b"]] * 4)), {}, ["'y'", "numbers"]),
    ("x has a NaN", dict(GOOD, x=np.where(np.arange(24).reshape(4, 3, 2) == 13, np.nan, GOOD["x"])), {},
     ["x[3]", "finite"]),
    ("unknown input", dict(GOOD, z=GOOD["x"]), {}, ["'z'", "not an input", "x, y"]),
    ("batch sizes disagree", dict(GOOD, y=GOOD["y"][:, :1]), {}, ["batch", "x: 2", "y: 1"]),
    ("x too short for T", GOOD, {"T": 6}, ["x[5]", "'x'", "1..4", "h[5]"]),
    ("not a dict", [GOOD["x"], GOOD["y"]], {}, ["dict"]),
    ("missing parameter", GOOD, {"params": {"W": np.zeros((5, 5))}}, ["missing parameter", "init_params"]),
    ("parameter shape", GOOD, {"params": dict(FIG3.init_params(), W=np.zeros((5, 4)))},
     ["'W'", "(5, 4)", "(5, 5)"]),
    ("unknown parameter", GOOD, {"params": dict(FIG3.init_params(), Q=np.zeros(2))}, ["'Q'", "not a parameter"]),
]


@pytest.mark.parametrize("inputs, options, needles", [c[1:] for c in DATA_ERRORS], ids=[c[0] for c in DATA_ERRORS])
def test_bad_data_names_the_variable_and_the_expected_shape(inputs, options, needles):
    with pytest.raises(gr.DataError) as info:
        FIG3.run(inputs, **options)
    assert type(info.value) is gr.DataError
    for needle in needles:
        assert needle in str(info.value), f"{needle!r} not in: {info.value}"


def test_context_shape_errors_name_the_context():
    rec = gr.load("fig10_9")
    data = rec.random_inputs(3, batch=2)
    with pytest.raises(gr.DataError) as info:
        rec.run(dict(data, x=data["x"][:2]))
    assert "'x'" in str(info.value) and "(3, B)" in str(info.value)
    with pytest.raises(gr.DataError, match="missing the array for context 'x'"):
        rec.run({"y": data["y"]})


def test_a_run_without_a_loss_runs_forward_and_cannot_back_propagate():
    rec = gr.load("fig10_2")
    assert rec.losses == []
    data = rec.random_inputs(3, batch=2)
    with pytest.raises(gr.SpecError, match="no loss"):
        rec.run(data, T=3, backward=True)
    for run in (rec.run(data, T=3), rec.run(data, T=3, backward=False)):
        assert run.grads == {} and run.values["h[3]"].shape == (3, 2)
