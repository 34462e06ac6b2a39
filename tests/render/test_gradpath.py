"""Gradient flow per edge (from the engine's VJPs) and the gradient-path drawings."""

from __future__ import annotations

import numpy as np
import pytest

import graphrnn as gr
from graphrnn.render import draw_grad_path, variable_flow
from graphrnn.render.command import make_run
from graphrnn.render.flow import live, normalize_key


@pytest.fixture(scope="module")
def run():
    rec = gr.load("fig10_3")
    return rec.run(rec.random_inputs(5, batch=2, seed=0), params=rec.init_params(seed=0))


def norm(a):
    return float(np.linalg.norm(a))


def test_the_replay_reproduces_the_run(run):
    lv = live(run)
    assert np.allclose(lv.root.data, run.loss)
    for key in ("h[1]", "o[3]", "L[5]"):
        assert np.array_equal(lv.tensors[key].data, run.values[key])


def test_node_gradients_match_the_runs_gradients(run):
    f = variable_flow(run, "L")
    for key, g in run.grads.items():
        if key in f.node_norm:
            assert f.node_norm[key] == pytest.approx(norm(g), rel=1e-12, abs=1e-15)
    for t in range(1, 6):
        assert f.edge_norm[("W", f"W^({t})")] == pytest.approx(norm(run.copy_grads["W"][t]), abs=1e-15)


def test_edge_flow_is_the_vjp_along_that_one_edge(run):
    # h[t] = tanh(b + W h[t-1] + U x[t]): what h[t] passes back to h[t-1] is Wᵀ (diag(1 − h[t]²) ∇h[t])
    f = variable_flow(run, "L")
    W = run.values["W"]
    for t in range(2, 6):
        h, g = run.values[f"h[{t}]"], run.grads[f"h[{t}]"]
        assert f.edge_norm[(f"h[{t - 1}]", f"h[{t}]")] == pytest.approx(norm(W.T @ ((1 - h ** 2) * g)), rel=1e-10)


def test_the_paths_from_one_loss_term_to_h1_are_the_chain(run):
    f = variable_flow(run, "L[3]")
    nodes, edges = f.path("h^(1)")
    assert edges == {("h[1]", "h[2]"), ("h[2]", "h[3]"), ("h[3]", "o[3]"), ("o[3]", "L[3]")}
    assert nodes == {"h[1]", "h[2]", "h[3]", "o[3]", "L[3]"}


def test_the_drawing_highlights_the_path_and_greys_the_rest(run):
    d = draw_grad_path(run, "L[5]", "h[1]")
    s = d.scene
    on = [e for e in s.edges if "flow" in e.data]
    assert {(s.nodes[e.src].title, s.nodes[e.dst].title) for e in on} == {
        ("h^(1)", "h^(2)"), ("h^(2)", "h^(3)"), ("h^(3)", "h^(4)"), ("h^(4)", "h^(5)"), ("h^(5)", "o^(5)"),
        ("o^(5)", "L^(5)")}
    off = [e for e in s.edges if "flow" not in e.data]
    assert off and all(e.attrs.get("color") == "#c4c4c4" for e in off)
    # width grows with the gradient it carries
    by_flow = sorted(on, key=lambda e: e.data["flow"])
    widths = [float(e.attrs["penwidth"]) for e in by_flow]
    assert widths == sorted(widths)
    assert "gradient flowing back" in d.source
    lv = live(run)  # the engine's own answer for ∂L^(5)/∂h^(1)
    (g,) = gr.grad(lv.tensors["L[5]"], [lv.tensors["h[1]"]])
    assert s.info["target_norm"] == pytest.approx(norm(g), rel=1e-12)


def test_vanishing_and_exploding_show_in_the_flows():
    rec = gr.load("fig10_3")
    small = variable_flow(make_run(rec, 8, scales={"W": 0.5}), "L[8]")
    big = variable_flow(make_run(rec, 8, batch=1, scales={"W": 5.0, "U": 0.1}), "L[8]")
    chain = [(f"h[{t}]", f"h[{t + 1}]") for t in range(1, 8)]
    assert small.edge_norm[chain[0]] < small.edge_norm[chain[-1]] / 100  # vanished
    assert big.edge_norm[chain[0]] > big.edge_norm[chain[-1]] * 10  # exploded


def test_a_dummy_copy_target_draws_the_copy_and_its_edge(run):
    s = draw_grad_path(run, "L", "W^(3)").scene
    copy = s.find("W", "3", role="parameter")
    assert copy is not None
    assert ("W^(3)", "h^(3)", None, 0) in s.connections()
    assert s.info["target_norm"] == pytest.approx(norm(run.copy_grads["W"][3]))


def test_a_parameter_target_draws_all_its_copies(run):
    s = draw_grad_path(run, "L", "W").scene
    assert s.find("W", role="parameter") is not None
    assert {f"W^({t})" for t in range(2, 6)} <= s.titles(role="parameter")
    assert s.info["target_norm"] == pytest.approx(norm(run.grads["W"]))


def test_op_level_paths(run):
    d = draw_grad_path(run, "L[2]", "h[1]", level="op")
    s = d.scene
    assert s.info["path_edges"]
    assert all(float(e.attrs["penwidth"]) > 0 for e in s.edges if "flow" in e.data)
    assert any(e.attrs.get("color") == "#c4c4c4" for e in s.edges)


@pytest.mark.parametrize("source,target,match", [
    ("L[2]", "h[4]", "does not depend"),
    ("L", "q[1]", "no node"),
    ("o[2]", "h[1]", "single number"),
])
def test_bad_paths_are_render_errors(run, source, target, match):
    with pytest.raises(gr.RenderError, match=match):
        draw_grad_path(run, source, target)


def test_the_books_spellings_are_accepted():
    known = {"h[1]", "W^(3)", "W"}
    assert normalize_key("h^(1)", known) == "h[1]"
    assert normalize_key("h(1)", known) == "h[1]"
    assert normalize_key("W[3]", known) == "W^(3)"
    assert normalize_key("W", known) == "W"


def test_a_long_run_is_drawn_as_a_window():
    rec = gr.load("fig10_3")
    run = make_run(rec, 30)
    s = draw_grad_path(run, "L[30]", "h[1]").scene
    assert len([n for n in s.nodes.values() if n.role == "variable"]) < 50
    assert ("h[29]", "h[30]") in s.info["path_edges"]


def test_a_level_that_does_not_exist_is_a_render_error(run):
    with pytest.raises(gr.RenderError):
        draw_grad_path(run, "L", "h[1]", level="ops")


@pytest.mark.parametrize("target,level,says", [
    ("x[1]", "variable", ["x[1] is data (`input x`)", "no gradient", "(U)", "h[1]", "'L[3]:h[1]'"]),
    ("x^(2)", "variable", ["x[2] is data", "h[2]"]),
    ("y[1]", "variable", ["y[1] is data (`target y`)", "no gradient", "a state (h[1])"]),
    ("y[1]", "op", ["y[1] is data (`target y`)"]),
    ("h[0]", "variable", ["initial value of h", "= learned"]),
])
def test_data_on_a_gradient_path_is_named_as_data(run, target, level, says):
    with pytest.raises(gr.RenderError) as err:
        draw_grad_path(run, "L[3]", target, level=level)
    msg = str(err.value)
    assert "does not depend" not in msg
    for part in says:
        assert part in msg, msg


def test_data_fed_one_step_later_suggests_the_state_it_feeds():
    rec = gr.load("fig10_10")  # y[t-1] feeds h[t] through R
    run = make_run(rec, 3)
    with pytest.raises(gr.RenderError, match=r"\(R\) or a state \(h\[2\]\)"):
        draw_grad_path(run, "L[3]", "y[1]")


def test_the_cli_gives_the_data_message(capsys, tmp_path):
    from graphrnn.cli import main
    assert main(["render", "fig10_3", "--unrolled", "--grad-path", "L[3]:x[1]", "-o", str(tmp_path / "a.svg")]) != 0
    err = capsys.readouterr().err
    assert "x[1] is data" in err and "does not depend" not in err
