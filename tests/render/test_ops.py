"""The op-level drawing: every engine op, its data and gradient, colours that mean something."""

from __future__ import annotations

import numpy as np
import pytest

import graphrnn as gr
from graphrnn.render import draw_ops, style
from graphrnn.render.command import make_run


@pytest.fixture(scope="module")
def run():
    return make_run(gr.load("fig10_3"), 2)


def by_key(scene):
    return {n.data["key"]: n for n in scene.nodes.values() if n.role == "op" and n.data["key"]}


def test_every_engine_op_is_drawn(run):
    s = draw_ops(run).scene
    ops = [n for n in s.nodes.values() if n.role == "op"]
    assert len(ops) == gr.graph_of(run.loss_tensor).number_of_nodes()
    assert len(s.edges) == gr.graph_of(run.loss_tensor).number_of_edges()


def test_colours_mean_parameter_copy_input_state_computed_loss(run):
    s = draw_ops(run).scene
    k = by_key(s)
    assert k["W"].kind == "parameter" and k["W^(1)"].kind == "copy" and k["x[1]"].kind == "input"
    assert k["h[1]"].kind == "state" and k["o[1]"].kind == "computed" and k["L[2]"].kind == "loss"
    src = draw_ops(run).source
    for kind in ("parameter", "copy", "input", "state", "computed", "loss"):
        assert style.COLOURS[kind] in src


def test_each_node_shows_its_data_and_its_gradient(run):
    s = draw_ops(run).scene
    k = by_key(s)
    for key in ("h[1]", "o[2]", "W"):
        assert k[key].data["grad_norm"] == pytest.approx(float(np.linalg.norm(run.grads[key])), rel=1e-12)
    assert "grad 5×2, norm" in k["h[1]"].html and "data 5×2, norm" in k["h[1]"].html


def test_a_plain_tensor_can_be_drawn_even_after_its_graph_was_freed():
    x = gr.Tensor([1.0, -2.0], requires_grad=True, name="x")
    y = gr.sum(gr.tanh(x * x))
    live = draw_ops(y).scene
    assert sorted(n.data["op"] for n in live.of_role("op")) == ["leaf", "mul", "sum", "tanh"]
    y.backward()
    freed = draw_ops(y).scene  # no second walk: .grad where it is kept
    xnode = next(n for n in freed.of_role("op") if n.name == "x")
    assert xnode.data["grad_norm"] == pytest.approx(float(np.linalg.norm(x.grad)))


def test_too_many_ops_is_a_render_error_that_suggests_fewer_steps():
    with pytest.raises(gr.RenderError, match="fewer steps"):
        draw_ops(make_run(gr.load("fig10_3"), 40))


def test_a_run_without_a_loss_cannot_be_drawn_at_the_op_level():
    with pytest.raises(gr.GraphrnnError):
        draw_ops(make_run(gr.load("fig10_2"), 2))


def test_something_else_is_refused():
    with pytest.raises(gr.RenderError):
        draw_ops("h[1]")
