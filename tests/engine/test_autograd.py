"""Reverse mode: accumulation, long chains, freed graphs, no_grad, retain_grad,
grad(), backward_steps, detect_anomaly, float32 and the networkx export."""

from __future__ import annotations

import sys

import networkx as nx
import numpy as np
import pytest

import graphrnn as gr
from graphrnn.engine.autograd import topological_order


def leaf(values, name=None, dtype=None):
    return gr.Tensor(np.asarray(values, dtype=dtype or np.float64), requires_grad=True, name=name)


# ----------------------------------------------------------------------------- accumulation


def test_reused_node_x_times_x():
    x = leaf([1.0, -2.0, 3.0])
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, -4.0, 6.0])


def test_same_tensor_in_many_slots():
    x = leaf(2.0)
    y = x + x + x * x * x  # 2x + x^3  ->  2 + 3x^2 = 14
    y.backward()
    assert x.grad == pytest.approx(14.0)


def test_diamond():
    """x feeds a and b, both feed c: the gradients of the two paths add up."""
    x = leaf([0.3, -0.7])
    a = x * 2.0
    b = gr.tanh(x)
    c = (a * b + a).sum()
    c.backward()
    xv = x.data
    expected = 2 * np.tanh(xv) + 2 * xv * (1 - np.tanh(xv) ** 2) + 2
    np.testing.assert_allclose(x.grad, expected, rtol=1e-14)


def test_intermediate_reused_is_differentiated_once_with_its_full_gradient():
    x = leaf(1.5)
    h = gr.exp(x)
    y = h * h + 3 * h  # h used three times
    y.backward()
    e = np.exp(1.5)
    assert x.grad == pytest.approx((2 * e + 3) * e, rel=1e-14)


def test_grads_accumulate_over_backward_calls_and_broadcasting_is_undone():
    w = leaf(np.ones((3, 1)))
    x = gr.Tensor(np.arange(12.0).reshape(3, 4))
    (w * x).sum().backward()
    (w * x).sum().backward()  # a new graph: adds to .grad
    assert w.grad.shape == (3, 1)
    np.testing.assert_array_equal(w.grad, 2 * np.arange(12.0).reshape(3, 4).sum(axis=1, keepdims=True))
    assert x.grad is None  # constants get no gradient


def test_gradients_of_0d_tensors_are_arrays():
    """numpy turns 0-d results into scalars; .grad, grad() and backward_steps still give arrays."""
    x = leaf(3.0)
    y = x * x
    gx, gy = gr.grad(y * 2, [x, y], retain_graph=True)
    assert type(gx) is np.ndarray and gx.shape == () and gx == 12.0
    assert type(gy) is np.ndarray and gy == 2.0
    assert all(type(g) is np.ndarray for _, g in gr.backward_steps(y * 2, retain_graph=True, accumulate=False))
    (y * 2).backward(retain_graph=True)
    (y * 2).backward()  # accumulating 0-d + 0-d keeps an array too
    assert type(x.grad) is np.ndarray and x.grad.shape == () and x.grad == 24.0


def test_leaf_grad_is_not_aliased_with_the_graphs_arrays():
    x = leaf([1.0, 2.0])
    y = x + 0.0
    y.backward(np.array([1.0, 1.0]), retain_graph=True)
    x.grad[0] = 100.0
    x.grad = None
    y.backward(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])


def test_long_chain_at_the_default_recursion_limit():
    assert sys.getrecursionlimit() <= 10_000  # nobody raised it for us
    n = 100_000
    c = 1.0 + 1e-5
    x = leaf(1.0)
    y = x
    for _ in range(n):
        y = y * c
    y.backward()
    assert x.grad == pytest.approx(c**n, rel=1e-9)
    assert len(topological_order(y)) == n + 1
    del y  # tearing the chain down must not overflow the C stack either


def test_tensors_are_keys_by_identity():
    """backward and topological_order key their bookkeeping on the tensors themselves: two
    tensors with equal values must stay two keys (a value-based ``__eq__``/``__hash__`` would
    merge them), and a tensor must stay hashable (an ``__eq__`` without ``__hash__`` would not)."""
    a, b = gr.Tensor([1.0], name="same"), gr.Tensor([1.0], name="same")
    assert hash(a) == object.__hash__(a) and hash(b) == object.__hash__(b)
    assert len({a, b}) == 2 and b not in {a} and {a: 1, b: 2}[a] == 1


def test_equal_valued_leaves_keep_their_own_gradients():
    """The same check through backward: equal-valued leaves must not share a gradient slot."""
    a = gr.Tensor([1.5, -0.5], requires_grad=True, name="x")
    b = gr.Tensor([1.5, -0.5], requires_grad=True, name="x")
    ((a * 2.0 + b * 3.0) * gr.Tensor([1.0, 1.0])).sum().backward()
    np.testing.assert_array_equal(a.grad, [2.0, 2.0])
    np.testing.assert_array_equal(b.grad, [3.0, 3.0])


# ----------------------------------------------------------------------------- freed graphs


def test_second_backward_over_a_freed_graph_raises():
    x = leaf([1.0, 2.0])
    loss = (gr.tanh(x) * x).sum()
    loss.backward()
    first = x.grad.copy()
    with pytest.raises(gr.BackwardError, match="retain_graph=True") as info:
        loss.backward()
    assert "second time" in str(info.value)
    assert isinstance(info.value, RuntimeError)
    np.testing.assert_array_equal(x.grad, first)  # nothing was half-accumulated


def test_freed_interior_node_reached_from_a_new_root_raises():
    x = leaf([1.0, 2.0])
    h = gr.tanh(x * x)
    h.sum().backward()
    with pytest.raises(gr.BackwardError, match="'tanh'"):
        (h * 2).sum().backward()


def test_retain_graph_allows_a_second_backward_and_accumulates():
    x = leaf([1.0, 2.0])
    loss = (x * x * x).sum()
    loss.backward(retain_graph=True)
    np.testing.assert_array_equal(x.grad, 3 * x.data**2)
    loss.backward(retain_graph=True)
    np.testing.assert_array_equal(x.grad, 6 * x.data**2)  # like PyTorch: adds up
    loss.backward()  # the last one may free
    np.testing.assert_array_equal(x.grad, 9 * x.data**2)
    with pytest.raises(gr.BackwardError):
        loss.backward()


def test_non_scalar_root_needs_a_seed():
    x = leaf([1.0, 2.0, 3.0])
    y = x * 2
    with pytest.raises(gr.BackwardError) as info:
        y.backward()
    msg = str(info.value)
    assert "(3,)" in msg and "grad=" in msg and "seed" in msg
    y.backward(np.array([1.0, 0.0, -1.0]))
    np.testing.assert_array_equal(x.grad, [2.0, 0.0, -2.0])


def test_single_entry_root_of_any_shape_is_seeded_with_one():
    x = leaf([[3.0]])
    (x * x).backward()
    np.testing.assert_array_equal(x.grad, [[6.0]])


def test_seed_of_the_wrong_shape_raises_shape_error():
    x = leaf([1.0, 2.0])
    with pytest.raises(gr.ShapeError, match=r"\(3,\).*\(2,\)"):
        (x * 2).backward(np.ones(3))


def test_backward_from_a_tensor_without_grad_raises():
    x = gr.Tensor([1.0, 2.0])
    with pytest.raises(gr.BackwardError, match="requires_grad"):
        (x * 2).sum().backward()


# ----------------------------------------------------------------------------- no_grad


def test_no_grad_records_no_graph():
    w = leaf([1.0, 2.0])
    with gr.no_grad():
        assert not gr.is_grad_enabled()
        y = gr.tanh(w * 3 + 1)
    assert gr.is_grad_enabled()
    assert not y.requires_grad and y.op is None and y.parents == () and y.is_leaf
    np.testing.assert_allclose(y.data, np.tanh(w.data * 3 + 1))
    z = w * 3  # recording is back on
    assert z.requires_grad and z.op.name == "mul"
    with pytest.raises(gr.BackwardError):
        y.sum().backward()


def test_no_grad_as_decorator_nested_and_reentrant():
    @gr.no_grad()
    def step(w, depth):
        assert not gr.is_grad_enabled()
        if depth:
            step(w, depth - 1)  # the same decorator instance entered again
        with gr.enable_grad():
            assert gr.is_grad_enabled()
            assert (w * 2).requires_grad
        assert not gr.is_grad_enabled()
        return w * 2

    w = leaf([1.0])
    out = step(w, 3)
    assert not out.requires_grad
    assert gr.is_grad_enabled()
    assert (w * 2).requires_grad


def test_no_grad_restores_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with gr.no_grad():
            1 / 0
    assert gr.is_grad_enabled()


# ----------------------------------------------------------------------------- retain_grad, grad


def test_retain_grad_on_a_non_leaf():
    x = leaf([1.0, 2.0])
    h = (x * 3).retain_grad()
    k = h + 1  # not retained
    loss = (k * h).sum()
    loss.backward()
    np.testing.assert_array_equal(h.grad, 2 * h.data + 1)  # d/dh (h+1)h
    assert k.grad is None
    np.testing.assert_array_equal(x.grad, 3 * (2 * h.data + 1))


def test_grad_function_leaves_dot_grad_alone():
    x = leaf(3.0)
    y = x * x
    z = gr.Tensor(5.0, requires_grad=True)  # unrelated
    gx, gy, gz = gr.grad(y * 2, [x, y, z])
    assert gx == pytest.approx(12.0) and gy == pytest.approx(2.0) and gz is None
    assert x.grad is None and y.grad is None
    # the graph was freed: a second call needs retain_graph on the first
    u = leaf([1.0, 2.0])
    v = (u**3).sum()
    (g1,) = gr.grad(v, [u], retain_graph=True)
    (g2,) = gr.grad(v, [u])
    np.testing.assert_array_equal(g1, g2)
    np.testing.assert_array_equal(g1, 3 * u.data**2)


def test_grad_with_an_output_seed():
    x = leaf([1.0, 2.0])
    y = x * x
    (g,) = gr.grad(y, [x], grad_output=np.array([1.0, 10.0]))
    np.testing.assert_array_equal(g, [2.0, 40.0])


# ----------------------------------------------------------------------------- backward_steps


def test_backward_steps_yields_each_node_once_in_reverse_topological_order():
    x = leaf([0.5, -1.0], name="x")
    w = leaf([[1.0, 2.0], [3.0, 4.0]], name="w")
    h = gr.tanh(w @ x)
    y = (h * h + h * x).sum()  # diamonds and reuse
    expected = dict(zip(map(id, [x, w, h]), gr.grad(y, [x, w, h], retain_graph=True)))
    steps = list(gr.backward_steps(y))
    nodes = [n for n, _ in steps]
    assert nodes[0] is y
    assert len({id(n) for n in nodes}) == len(nodes)  # each once
    reachable = topological_order(y)
    assert {id(n) for n in nodes} == {id(n) for n in reachable}
    position = {id(n): i for i, n in enumerate(nodes)}
    for n in nodes:  # every node comes after all the nodes that consume it
        for p in n.parents:
            if p.requires_grad:
                assert position[id(p)] > position[id(n)]
    for n, g in steps:  # and comes with its complete gradient
        if id(n) in expected:
            np.testing.assert_allclose(g, expected[id(n)], rtol=1e-14)
    np.testing.assert_allclose(x.grad, expected[id(x)])  # leaves were filled too


def test_backward_steps_doc_order():
    x = gr.Tensor(2.0, requires_grad=True, name="x")
    y = gr.tanh(x * x)
    assert [(n.op.name if n.op else n.name) for n, _ in gr.backward_steps(y)] == ["tanh", "mul", "x"]


def test_topological_order_survives_a_hand_rewired_graph():
    """Nodes normally come after their parents in creation order (the fast path sorts
    by that); if someone rewires ``parents`` by hand the order must still be topological."""
    x = leaf(2.0)
    early = x * 1.0
    w = x * 5.0  # created after `early`...
    early.parents = (w, early.parents[1])  # ...but now `early` consumes it
    root = early + x
    order = topological_order(root)
    position = {id(n): i for i, n in enumerate(order)}
    for n in order:
        for p in n.parents:
            if p.requires_grad:
                assert position[id(p)] < position[id(n)]
    assert position[id(w)] < position[id(early)]
    root.backward()
    assert x.grad == pytest.approx(5.0 + 1.0)


# ----------------------------------------------------------------------------- detect_anomaly


def test_detect_anomaly_in_forward_names_op_and_inputs():
    x = gr.Tensor([0.0, 1.0], requires_grad=True, name="x")
    with gr.detect_anomaly(), np.errstate(divide="ignore"):
        with pytest.raises(gr.AnomalyError) as info:
            gr.log(x)
    msg = str(info.value)
    assert "forward" in msg and "'log'" in msg and "x: shape (2,)" in msg and "-inf" in msg
    assert isinstance(info.value, FloatingPointError)
    with np.errstate(divide="ignore"):
        assert np.isneginf(gr.log(x).data[0])  # off again outside the block


def test_detect_anomaly_names_every_input():
    a = gr.Tensor([1.0, 2.0], requires_grad=True, name="numerator")
    b = gr.Tensor([1.0, 0.0], requires_grad=True, name="denominator")
    with gr.detect_anomaly(), np.errstate(divide="ignore"):
        with pytest.raises(gr.AnomalyError, match=r"'div'.*numerator: shape \(2,\).*denominator: shape \(2,\)"):
            a / b


def test_detect_anomaly_in_backward():
    x = gr.Tensor([0.0, 4.0], requires_grad=True, name="x")
    with gr.detect_anomaly(), np.errstate(divide="ignore"):
        y = (x**0.5).sum()  # forward is finite: sqrt(0) = 0
        with pytest.raises(gr.AnomalyError) as info:
            y.backward()  # d sqrt(x)/dx at 0 is inf
    msg = str(info.value)
    assert "backward" in msg and "'pow'" in msg and "x: shape (2,)" in msg and "inf" in msg
    # without the detector the inf just lands in .grad
    x.grad = None
    with np.errstate(divide="ignore"):
        (x**0.5).sum().backward()
    assert np.isinf(x.grad[0]) and x.grad[1] == pytest.approx(0.25)


def test_detect_anomaly_mentions_an_already_bad_input():
    x = gr.Tensor([np.nan, 1.0], requires_grad=True, name="bad")
    with gr.detect_anomaly(), pytest.raises(gr.AnomalyError, match="input 'bad' already held non-finite"):
        gr.exp(x)


# ----------------------------------------------------------------------------- float32


def test_float32_is_kept_through_ops_and_gradients():
    x = leaf([[0.5, -1.0], [2.0, 0.25]], dtype=np.float32)
    w = leaf([[1.0, 0.5], [-0.5, 2.0]], dtype=np.float32)
    outs = [
        x * 2, 2 * x, x / 3, 3 / x, x + 1.5, 1.5 - x, -x, x**2, x**3, 2.0**x,
        x @ w, gr.tanh(x), gr.sigmoid(x), gr.relu(x), gr.exp(x), gr.softmax(x, axis=1),
        gr.log_softmax(x), x.mean(axis=0), x.sum(), x[[0, 0]], x.T, gr.concat([x, w]),
    ]
    for out in outs:
        assert out.dtype == np.float32, out
    loss = outs[0].sum()
    for out in outs[1:]:
        loss = loss + out.sum()
    assert loss.dtype == np.float32
    loss.backward()
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float32


def test_float32_losses_and_mixed_float64_constants_give_float32_gradients():
    x = leaf(np.zeros((3, 2)), dtype=np.float32)
    for loss in [
        gr.cross_entropy(x, [0, 2]),
        gr.bce_with_logits(x, np.ones((3, 2))),  # float64 targets
        gr.mse(x, np.ones((3, 2))),  # float64 targets
        (x * np.ones((3, 2))).sum(),  # float64 constant array
    ]:
        x.grad = None
        loss.backward()
        assert x.grad.dtype == np.float32, loss
    assert gr.cross_entropy(x, [0, 2]).dtype == np.float32


def test_python_and_numpy_scalars_do_not_promote_float32():
    x = gr.Tensor(np.ones(2, dtype=np.float32))
    for y in [x * 2, x * 2.5, x * np.float64(2.5), np.float64(2.5) * x, x - 1, x / 7]:
        assert y.dtype == np.float32


# ----------------------------------------------------------------------------- graph_of


def test_graph_of_is_a_multidigraph_with_ordered_slots():
    x = gr.Tensor([1.0, 2.0], requires_grad=True, name="x")
    c = gr.Tensor([[1.0], [1.0]], name="c")
    sq = x * x
    d = c - sq  # slot 0: c, slot 1: sq
    g = gr.graph_of(d)
    assert isinstance(g, nx.MultiDiGraph) and isinstance(g, nx.DiGraph)
    assert g.number_of_nodes() == 4
    xs = g.nodes[x.uid]
    assert xs["op"] == "leaf" and xs["kind"] == "parameter" and xs["name"] == "x" and xs["shape"] == (2,)
    assert xs["tensor"] is x and xs["dtype"] == "float64" and xs["requires_grad"]
    assert g.nodes[c.uid]["kind"] == "constant"
    assert g.nodes[sq.uid]["op"] == "mul" and g.nodes[sq.uid]["kind"] == "op"
    assert g.nodes[d.uid]["op"] == "sub" and g.nodes[d.uid]["shape"] == (2, 2)
    # x * x: two edges from x, slots 0 and 1
    assert sorted(k for _, _, k in g.edges(x.uid, keys=True)) == [0, 1]
    assert sorted(s for _, _, s in g.in_edges(sq.uid, data="slot")) == [0, 1]
    slots = {u: s for u, _, s in g.in_edges(d.uid, data="slot")}
    assert slots == {c.uid: 0, sq.uid: 1}
    assert nx.is_directed_acyclic_graph(g)
    assert list(nx.topological_sort(g))[-1] == d.uid


def test_graph_of_several_roots_shares_nodes():
    x = gr.Tensor(1.0, requires_grad=True, name="x")
    h = gr.tanh(x)
    a, b = h * 2, h + 1
    g = gr.graph_of(a, b)
    assert g.number_of_nodes() == 6  # x, h, a, b and the constants 2 and 1
    assert g.out_degree(h.uid) == 2
    assert {g.nodes[n]["name"] for n in g} >= {"x"}
    assert gr.node_kind(h) == "op" and gr.node_kind(x) == "parameter"
