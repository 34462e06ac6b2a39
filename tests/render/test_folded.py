"""The folded drawings (figs. 10.2–10.4, left halves): which circles, which edges, which labels,
which edges carry a black square."""

from __future__ import annotations

import networkx as nx
import pytest

import graphrnn as gr
from graphrnn.render import draw_folded
from graphrnn.render.folded import folded_scene, rows, variable_graph


def connections(arch, mode="teacher"):
    return folded_scene(gr.load(arch), mode).connections()


def test_fig10_2_is_x_into_h_and_a_loop_on_h_through_one_square():
    assert connections("fig10_2") == {("x", "h", "U", 0), ("h", "h", "W", 1)}


def test_fig10_3_has_the_books_edges_and_one_delay_square_on_the_loop():
    assert connections("fig10_3") == {
        ("x", "h", "U", 0), ("h", "h", "W", 1), ("h", "o", "V", 0), ("o", "L", None, 0), ("y", "L", None, 0)}


def test_fig10_4_recurs_through_the_output_not_the_hidden_units():
    c = connections("fig10_4")
    assert ("o", "h", "W", 1) in c
    assert not any(a == b for a, b, _, _ in c)


def test_fig10_6_feeds_the_true_y_at_train_time_and_o_at_test_time():
    train = connections("fig10_6", "teacher")
    test = connections("fig10_6", "free")
    assert ("y", "h", "W", 1) in train
    assert ("o", "h", "W", 1) in test  # y_fed contracted, as the book draws it
    assert not any("fed" in a or "fed" in b for a, b, _, _ in test)


def test_fig10_9_context_x_enters_through_r_and_y_is_the_target_of_the_step_before():
    c = connections("fig10_9")
    assert ("x", "h", "R", 0) in c and ("y", "h", "U", 0) in c
    assert ("y", "L", None, 1) in c  # y[t+1]: a delay of -1 is still one square


def test_fig10_10_feeds_the_previous_y_through_r():
    assert ("y", "h", "R", 1) in connections("fig10_10")


def test_fig10_11_has_a_forward_and_a_backward_loop_in_separate_rows():
    g = variable_graph(gr.load("fig10_11"))
    c = folded_scene(g).connections()
    assert ("h", "h", "W", 1) in c and ("g", "g", "W2", 1) in c
    r = rows(g)
    assert r["x"] < r["h"] < r["g"] < r["o"] < r["L"] < r["y"]


@pytest.mark.parametrize("arch", ["fig10_3", "fig10_4", "fig10_5", "fig10_6", "fig10_10", "fig10_11", "halt"])
def test_rows_put_inputs_at_the_bottom_and_targets_at_the_top(arch):
    g = variable_graph(gr.load(arch))
    r = rows(g)
    kinds = {n: d["kind"] for n, d in g.nodes(data=True)}
    top = max(r.values())
    for n, k in kinds.items():
        if k == "input":
            assert r[n] == 0
        if k == "target":
            assert r[n] == top
        if k == "loss":
            assert all(r[u] < r[n] for u, _, d in g.in_edges(n, data=True) if not d["target"])


def test_every_delay_square_sits_on_exactly_one_edge_and_their_number_is_the_total_delay():
    for arch in ("fig10_3", "fig10_4", "fig10_9", "fig10_10", "fig10_11", "lstm"):
        s = folded_scene(gr.load(arch))
        squares = [n.id for n in s.of_role("delay")]
        on_edges = [q for e in s.edges for q in e.squares]
        assert sorted(squares) == sorted(on_edges)
        assert len(squares) == sum(abs(e.delay) for e in s.edges)


def test_a_delay_of_two_steps_draws_two_squares():
    rec = gr.Recurrence("input x: 2\nstate h: 3\nh[t] = tanh(W @ h[t-2] + U @ x[t])")
    assert ("h", "h", "W", 2) in folded_scene(rec).connections()
    assert draw_folded(rec).source.count("shape=square") == 2


def test_the_dot_source_draws_black_squares_and_italic_weight_letters():
    src = draw_folded(gr.load("fig10_3")).source
    assert src.count("shape=square") == 1 and "fillcolor=black" in src
    assert "<I>W</I>" in src and "<I>U</I>" in src and "<I>V</I>" in src
    assert "<B><I>h</I></B>" in src
    assert "rankdir=BT" in src  # inputs at the bottom


def test_a_loss_edge_has_no_label():
    s = folded_scene(gr.load("fig10_3"))
    loss_edges = [e for e in s.edges if e.dst_name == "L"]
    assert loss_edges and all(e.param is None for e in loss_edges)


def test_a_plain_networkx_graph_can_be_drawn():
    g = nx.MultiDiGraph()
    g.add_node("x", kind="input")
    g.add_node("s", kind="computed")
    g.add_edge("x", "s", delay=0, param="U")
    g.add_edge("s", "s", delay=1, param="W")
    assert folded_scene(g).connections() == {("x", "s", "U", 0), ("s", "s", "W", 1)}


def test_something_that_is_not_a_graph_is_refused():
    with pytest.raises(gr.RenderError):
        draw_folded(42)
