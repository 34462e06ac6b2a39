"""The drawings laid beside the printed pages (issue 13, part 6): fig. 10.7's arcs above the row, fig. 10.8's
y^(...) -> h^(...), fig. 10.9's dashed R arcs to both ends, italic step symbols in superscripts, and a loop
of delay k drawn as one loop through a chain of k squares."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest

import graphrnn as gr
from graphrnn.recurrence import Recurrence
from graphrnn.render import draw_folded, draw_graphical_models, draw_unfolded
from graphrnn.render.figures import graphical_models_scene
from graphrnn.render.output import render_bytes
from graphrnn.render.scene import arc_points, bezier, loop_layout, to_digraph
from _deps import require_program



@pytest.fixture
def neato_program() -> str:
    """graphviz's ``neato`` (figs 10.7/10.8 and multi-square loops are laid out with ``neato -n2``): skips the
    test without it, fails it under ``CI=true``."""
    return require_program("neato")


needs_dot = pytest.mark.usefixtures("neato_program")

M = "\u2212"
SKIP = """\
size H = 4, I = 3
input x: I
state h: H = zero
h[t] = tanh(W @ h[t-1] + S @ h[t-3] + U @ x[t])
"""


# ------------------------------------------------------------------ italic step symbols


def test_superscripts_set_the_step_symbol_in_italics():
    src = draw_unfolded(gr.load("fig10_3")).source
    assert f"<SUP>(<I>t</I>{M}1)</SUP>" in src and "<SUP>(<I>t</I>)</SUP>" in src
    assert "<SUP>(<I>t</I>+1)</SUP>" in src and "<SUP>(...)</SUP>" in src
    tau = draw_unfolded(gr.load("fig10_5")).source
    assert "<SUP>(<I>τ</I>)</SUP>" in tau
    concrete = draw_unfolded(gr.load("fig10_3"), steps=3).source
    assert "<SUP>(2)</SUP>" in concrete  # digits stay upright


@pytest.mark.parametrize("draw", [
    lambda: draw_unfolded(gr.load("fig10_3")), lambda: draw_unfolded(gr.load("fig10_5")),
    lambda: draw_unfolded(gr.load("fig10_11")), lambda: draw_graphical_models(),
    lambda: gr.render.draw_teacher_forcing(gr.load("fig10_6"))])
def test_no_drawing_writes_an_upright_step_letter(draw):
    src = draw().source
    assert not re.search(r"<SUP>\(?[tτ]", src), "a step symbol set upright"


# ------------------------------------------------------------------ fig. 10.7: arcs above the row


def _arcs(scene):
    return [e for e in scene.edges if e.arc]


def test_fig10_7_joins_neighbours_straight_and_all_others_by_arcs():
    s = graphical_models_scene(tau=5)
    row = [n for n in s.nodes.values() if n.panel == 0 and n.role in ("variable", "continuation")]
    assert len({n.row for n in row}) == 1  # one row, as printed
    for e in s.edges:
        a, b = s.nodes[e.src], s.nodes[e.dst]
        if a.panel == 0:
            assert (e.arc > 0) == (abs(b.col - a.col) > 1), (a.title, b.title)
    assert len(_arcs(s)) == 15 - 5  # 15 pairs among y^(1..5), y^(...); 5 neighbours


def test_fig10_7s_arcs_are_written_above_the_row_in_the_dot():
    d = draw_graphical_models(tau=5)
    assert d.engine == "neato" and d.neato_no_op == 2
    # every arc's Bezier points (and its arrow's tip) lie above the row's centres
    row_y = {float(m.group(1)) for m in re.finditer(r'pos="[-\d.]+,([-\d.]+)"', d.source)}
    curves = re.findall(r'pos="e,([-\d.]+),([-\d.]+) ([^"]+)"', d.source)
    assert len(curves) == 10
    centre = min(y for y in row_y if y > 150)  # the row of fig. 10.7 (fig. 10.8 is below it)
    for tx, ty, pts in curves:
        ys = [float(p.split(",")[1]) for p in pts.split()] + [float(ty)]
        assert min(ys) > centre, "an arc dips below its row"
        assert max(ys) > centre + 36, "an arc too flat to clear the circles"


def test_arc_points_bow_up_by_their_height():
    pts = arc_points((0.0, 0.0), (4.0, 0.0), 0.4, 0.3, 0.7)
    peak = bezier(pts[:4], 0.5)
    assert peak[0] == pytest.approx(2.0, abs=0.05)  # symmetric
    assert peak[1] - pts[0][1] == pytest.approx(0.4 * 4, rel=0.1)  # as high as asked, above where it leaves
    assert all(y > 0 for _, y in pts)  # the ends on the circles' upper halves
    assert math.hypot(pts[-1][0] - 4, pts[-1][1]) == pytest.approx(0.3)  # the tip on the destination's circle


@needs_dot
def test_fig10_7_laid_out_keeps_every_arc_above_the_circles():
    svg = render_bytes(draw_graphical_models(tau=4), "svg").decode("utf-8")
    root = ET.fromstring(svg)
    ns = {"s": "http://www.w3.org/2000/svg"}
    circles = {}
    for g in root.iterfind(".//s:g[@class='node']", ns):
        title = g.find("s:title", ns).text
        ell = g.find(".//s:ellipse", ns)
        if ell is not None:
            circles[title] = (float(ell.get("cx")), float(ell.get("cy")), float(ell.get("ry")))
    s = graphical_models_scene(tau=4)
    for e in _arcs(s):
        a = circles[e.src]
        path = next(g for g in root.iterfind(".//s:g[@class='edge']", ns)
                    if g.find("s:title", ns).text == f"{e.src}->{e.dst}").find(".//s:path", ns).get("d")
        ys = [float(v) for v in re.findall(r"[-\d.]+,([-\d.]+)", path)]
        assert max(ys) < a[1] - a[2] * 0.5, "the arc leaves below the top of its circle (SVG y grows down)"


# ------------------------------------------------------------------ fig. 10.8 and fig. 10.9


def test_fig10_8_ends_with_y_more_into_h_more():
    s = draw_graphical_models(tau=5).scene
    through = s.connections(panel=1)
    assert ("y^(...)", "h^(...)", None, 0) in through
    edge = next(e for e in s.edges if s.nodes[e.src].title == "y^(...)" and s.nodes[e.dst].title == "h^(...)")
    assert edge.dashed


def test_fig10_9_draws_dashed_R_arcs_from_x_to_both_continuations():
    s = draw_unfolded(gr.load("fig10_9")).scene
    x = s.find("x")
    to_more = [e for e in s.edges if e.src == x.id and s.nodes[e.dst].role == "continuation"]
    assert len(to_more) == 2 and all(e.param == "R" and e.dashed for e in to_more)
    cols = sorted(s.nodes[e.dst].col for e in to_more)
    steps = [n.col for n in s.nodes.values() if n.name == "h" and n.role == "variable"]
    assert cols[0] < min(steps) and cols[1] > max(steps)  # one at each end
    assert all(s.nodes[e.dst].name == "h" for e in to_more)
    # and the steps themselves, as before
    assert {(f"x", f"h^({t})", "R", 0) for t in (f"t{M}1", "t", "t+1")} <= s.connections()


def test_a_concrete_full_unroll_gets_no_continuation_arcs():
    # the explorer's drawing (steps=T, window=T) has no continuations, so nothing new
    s = draw_unfolded(gr.load("fig10_9"), steps=3, window=3).scene
    assert not s.of_role("continuation")


# ------------------------------------------------------------------ a loop of delay k


def _skip_scene():
    return draw_folded(Recurrence(SKIP, name="skip")).scene


def test_a_delay_k_loop_is_one_loop_through_k_squares():
    s = _skip_scene()
    loops = {e.param: e for e in s.edges if e.src == e.dst}
    assert set(loops) == {"W", "S"}
    assert len(loops["W"].squares) == 1 and len(loops["S"].squares) == 3
    assert ("h", "h", "S", 3) in s.connections() and s.layout == "pinned"
    spots, corners, letters = loop_layout(s)
    for e in loops.values():
        xs = {round(spots[q][0], 6) for q in e.squares}
        assert len(xs) == 1  # the chain runs along one side
        ys = [spots[q][1] for q in e.squares]
        assert ys == sorted(ys) and len(set(ys)) == len(ys)  # in order, one after the other
    # nested, the shorter delay inside; neither crosses the other
    xw, xs_ = spots[loops["W"].squares[0]][0], spots[loops["S"].squares[0]][0]
    h = s.find("h")
    assert abs(xw - h.col * 1.6) < abs(xs_ - h.col * 1.6)
    assert corners[id(loops["S"])][1] < corners[id(loops["W"])][1]
    assert spots[loops["S"].via[-1]][1] > spots[loops["W"].via[-1]][1]


def test_each_loops_letter_sits_beside_its_own_squares():
    s = _skip_scene()
    spots, _, letters = loop_layout(s)
    loops = [e for e in s.edges if e.src == e.dst]
    squares = {q: e for e in loops for q in e.squares}
    for e in loops:
        lx, ly = letters[id(e)]
        nearest = min(squares, key=lambda q: math.hypot(spots[q][0] - lx, spots[q][1] - ly))
        assert squares[nearest] is e, f"{e.param}'s letter is nearer another loop's squares"
        other = [q for q in squares if squares[q] is not e]
        mine = min(math.hypot(spots[q][0] - lx, spots[q][1] - ly) for q in e.squares)
        assert all(math.hypot(spots[q][0] - lx, spots[q][1] - ly) > 1.5 * mine for q in other)


def test_the_books_single_loops_keep_dots_layout():
    for arch in ("fig10_2", "fig10_3", "fig10_4"):
        assert draw_folded(gr.load(arch)).scene.layout == "ranked"


@needs_dot
def test_the_skip_drawings_are_valid_svg():
    rec = Recurrence(SKIP, name="skip")
    for d in (draw_folded(rec), gr.render.draw_fold_unfold(rec)):
        ET.fromstring(render_bytes(d, "svg"))
    un = gr.render.draw_fold_unfold(rec).scene
    # in a pinned drawing the unrolled skip h^(t−3) -> h^(t) bows over the circles between
    assert any(e.arc for e in un.edges if e.param == "S")
    assert to_digraph(un).neato_no_op == 2
