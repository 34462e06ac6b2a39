"""The unfolded drawings: columns by time, the same labels at every step, dashed continuations,
and the window (with its ellipsis) for long unrolls."""

from __future__ import annotations

import pytest

import graphrnn as gr
from graphrnn import zoo
from graphrnn.render import draw_unfolded
from graphrnn.render.unfolded import plan_window, unfolded_scene

M = "\u2212"  # the minus sign of t−1
STEPS = (f"t{M}1", "t", "t+1")


def conn(arch, **kw):
    return unfolded_scene(gr.load(arch), **kw).connections()


def test_fig10_3_has_three_identical_columns():
    c = conn("fig10_3")
    for s in STEPS:
        assert {(f"x^({s})", f"h^({s})", "U", 0), (f"h^({s})", f"o^({s})", "V", 0),
                (f"o^({s})", f"L^({s})", None, 0), (f"y^({s})", f"L^({s})", None, 0)} <= c
    assert (f"h^(t{M}1)", "h^(t)", "W", 0) in c and ("h^(t)", "h^(t+1)", "W", 0) in c


def test_fig10_3_continues_dashed_at_both_ends():
    s = unfolded_scene(gr.load("fig10_3"))
    more = s.of_role("continuation")
    assert [n.title for n in more] == ["h^(...)", "h^(...)"]
    dashed = {(s.nodes[e.src].title, s.nodes[e.dst].title, e.param) for e in s.edges if e.dashed}
    assert dashed == {("h^(...)", f"h^(t{M}1)", "W"), ("h^(t+1)", "h^(...)", "W")}
    assert 'style=dashed' in draw_unfolded(gr.load("fig10_3")).source


def test_unfolded_edges_carry_no_delay_squares():
    s = unfolded_scene(gr.load("fig10_3"))
    assert not s.of_role("delay") and all(not e.squares for e in s.edges)


def test_columns_are_aligned_by_time():
    s = unfolded_scene(gr.load("fig10_3"))
    for sup in STEPS:
        cols = {s.find(v, sup).col for v in "xhoLy"}
        assert len(cols) == 1
    assert s.find("h", f"t{M}1").col < s.find("h", "t").col < s.find("h", "t+1").col


def test_fig10_4_o_feeds_the_next_h_on_a_diagonal():
    c = conn("fig10_4")
    assert (f"o^(t{M}1)", "h^(t)", "W", 0) in c and ("o^(t)", "h^(t+1)", "W", 0) in c
    assert ("o^(...)", f"h^(t{M}1)", "W", 0) in c and ("o^(t+1)", "h^(...)", "W", 0) in c
    assert not any(a.startswith("h") and b.startswith("h") for a, b, _, _ in c)


def test_fig10_5_has_one_output_at_tau_after_a_gap():
    s = unfolded_scene(gr.load("fig10_5"))
    assert s.titles() >= {"o^(τ)", "L^(τ)", "y^(τ)", "h^(τ)", "x^(τ)", "x^(...)"}
    assert not any(t.startswith(("o^(t", "L^(t", "y^(t")) for t in s.titles())
    c = s.connections()
    assert ("h^(t)", "h^(...)", "W", 0) in c and ("h^(...)", "h^(τ)", "W", 0) in c
    assert ("x^(...)", "h^(...)", "U", 0) in c and ("h^(τ)", "o^(τ)", "V", 0) in c


def test_fig10_9_one_x_feeds_every_step_and_y_is_input_and_previous_target():
    s = unfolded_scene(gr.load("fig10_9"))
    xs = [n for n in s.nodes.values() if n.name == "x"]
    assert len(xs) == 1 and xs[0].sup is None
    c = s.connections()
    for sup in STEPS:
        assert ("x", f"h^({sup})", "R", 0) in c and (f"y^({sup})", f"h^({sup})", "U", 0) in c
    assert ("y^(t)", f"L^(t{M}1)", None, 0) in c and ("y^(t+1)", "L^(t)", None, 0) in c


def test_fig10_10_y_feeds_the_next_h_through_r():
    c = conn("fig10_10")
    assert (f"y^(t{M}1)", "h^(t)", "R", 0) in c and ("y^(t)", "h^(t+1)", "R", 0) in c


def test_fig10_11_h_runs_forward_and_g_backward():
    c = conn("fig10_11")
    assert (f"h^(t{M}1)", "h^(t)", "W", 0) in c and ("g^(t+1)", "g^(t)", "W2", 0) in c
    for sup in STEPS:
        assert {(f"x^({sup})", f"h^({sup})", "U", 0), (f"x^({sup})", f"g^({sup})", "U2", 0),
                (f"h^({sup})", f"o^({sup})", "V", 0), (f"g^({sup})", f"o^({sup})", "V2", 0)} <= c
    assert ("g^(...)", "g^(t+1)", "W2", 0) in c and (f"g^(t{M}1)", "g^(...)", "W2", 0) in c


def _key(node):
    return f"{node.name}[{node.step}]" if node.step is not None else node.name


@pytest.mark.parametrize("arch", zoo.names())
def test_a_small_concrete_unroll_has_exactly_the_edges_of_rec_unroll(arch):
    rec = gr.load(arch)
    un = rec.unroll(3)
    want = {(u, v) for u, v, d in un.edges(data=True) if d.get("kind") != "parameter"}
    s = unfolded_scene(rec, steps=3)
    got = {(_key(s.nodes[e.src]), _key(s.nodes[e.dst])) for e in s.edges}
    assert got == want
    assert not s.of_role("continuation")


def test_initial_values_are_drawn_as_step_0():
    s = unfolded_scene(gr.load("fig10_3"), steps=3)
    h0 = s.find("h", "0")
    assert h0 is not None and h0.kind == "initial"


def test_a_long_unroll_is_a_small_window_with_an_ellipsis():
    d = draw_unfolded(gr.load("fig10_3"), steps=10_000)
    s = d.scene
    steps = {n.step for n in s.nodes.values() if n.step is not None}
    assert steps == {0, 1, 2, 3, 9998, 9999, 10000}
    assert len(s.nodes) < 60 and len(d.source) < 20_000
    (ellipsis,) = s.of_role("ellipsis")
    assert "9,994 steps" in ellipsis.name and "9,994 steps" in d.source
    c = s.connections()
    assert ("h^(3)", "h^(...)", "W", 0) in c and ("h^(...)", "h^(9998)", "W", 0) in c


def test_the_window_size_is_respected():
    s = unfolded_scene(gr.load("fig10_3"), steps=100, window=4)
    assert {n.step for n in s.nodes.values() if n.name == "x" and n.role == "variable"} == {1, 2, 99, 100}


def test_a_window_from_a_start_step_has_continuations_at_both_cut_ends():
    s = unfolded_scene(gr.load("fig10_3"), steps=20, window=4, start=8)
    assert {n.step for n in s.nodes.values() if n.name == "h" and n.role == "variable"} == {8, 9, 10, 11}
    c = s.connections()
    assert ("h^(...)", "h^(8)", "W", 0) in c and ("h^(11)", "h^(...)", "W", 0) in c


def test_plan_window_labels():
    assert [plan_window(None).label(s) for s in plan_window(None).shown] == [f"t{M}1", "t", "t+1"]
    w = plan_window(None, has_tau=True)
    assert [w.label(s) for s in w.shown] == [f"t{M}1", "t", "τ"]
    assert plan_window(5).segments == [[1, 2, 3, 4, 5]]


@pytest.mark.parametrize("kw", [dict(steps=0), dict(steps=3.5), dict(steps=5, window=0), dict(start=2),
                                dict(steps=5, start=9), dict(steps=100, window=1)])
def test_bad_windows_are_render_errors(kw):
    with pytest.raises(gr.RenderError):
        draw_unfolded(gr.load("fig10_3"), **kw)


def test_free_running_feeds_the_output_and_starts_from_the_start_symbol():
    c = unfolded_scene(gr.load("fig10_6"), steps=3, mode="free").connections()
    assert ("o^(1)", "h^(2)", "W", 0) in c and ("o^(2)", "h^(3)", "W", 0) in c
    assert ("y^(0)", "h^(1)", "W", 0) in c  # before any output, y's start value is fed
    assert not any(a.startswith("y^(1)") and b.startswith("h") for a, b, _, _ in c)


def test_unfolded_scene_takes_at_most_eight_parameters_and_a_placement():
    import inspect

    from graphrnn.render.unfolded import Placement
    assert len(inspect.signature(unfolded_scene).parameters) <= 8
    s = unfolded_scene(gr.load("fig10_3"), place=Placement(col0=5, panel=1, continuations=False,
                                                            drop=("loss", "target")))
    assert {n.panel for n in s.nodes.values()} == {1}
    assert min(n.col for n in s.nodes.values()) >= 5
    assert not s.of_role("continuation")
    assert not any(n.name in ("L", "y") for n in s.nodes.values())
