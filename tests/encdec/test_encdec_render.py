"""Drawings of an encoder-decoder: fig. 10.12 as printed, and the unrolled graph on two time axes."""

import pytest

from graphrnn.recurrence.encdec import load, names
from graphrnn.render.encdec import draw_encdec, draw_encdec_unrolled, encdec_scene, encdec_unrolled_scene


def _edges(scene):
    return {(scene.nodes[e.src].title, scene.nodes[e.dst].title, e.dashed) for e in scene.edges}


def test_fig10_12_has_the_book_s_boxes_rows_and_arrows():
    s = encdec_scene(load("fig10_12"))
    assert {n.name for n in s.of_role("caption")} == {"Encoder", "Decoder"}
    assert {"x^(1)", "x^(2)", "x^(...)", "x^(nx)", "y^(1)", "y^(2)", "y^(...)", "y^(ny)", "C"} <= s.titles()
    edges = _edges(s)
    assert ("h^(4)", "C", False) in edges  # the last state leaves the box for C
    assert ("y^(1)", "s^(2)", False) in edges and ("y^(...)", "s^(4)", True) in edges  # y feeds the next step
    assert ("C", "s^(...)", True) in edges and ("C", "s^(1)", False) in edges
    from_c = [e for e in s.edges if s.nodes[e.src].name == "C"]
    assert len(from_c) == 5  # four from above (an input at every step) and one down the left (the initial state)
    encoder_box = next(n for n in s.of_role("caption") if n.name == "Encoder")
    assert encoder_box.row > s.find("C").row > next(n for n in s.of_role("caption") if n.name == "Decoder").row


@pytest.mark.parametrize("name,count", [("fig10_12_init", 1), ("fig10_12_input", 4)])
def test_the_arrows_from_C_follow_the_conditioning(name, count):
    s = encdec_scene(load(name))
    assert len([e for e in s.edges if s.nodes[e.src].name == "C"]) == count


def test_the_unrolled_graph_has_both_time_axes_and_the_link():
    s = encdec_unrolled_scene(load("fig10_12"), (4, 2))
    assert {"h^(1)", "h^(4)", "x^(4)", "s^(1)", "s^(2)", "y^(2)", "C"} <= s.titles()
    assert "s^(3)" not in s.titles() and "h^(5)" not in s.titles()
    edges = {(s.nodes[e.src].title, s.nodes[e.dst].title) for e in s.edges}
    assert ("h^(4)", "C") in edges and ("C", "s^(0)") in edges and ("C", "s^(2)") in edges
    mean = encdec_unrolled_scene(load("fig10_12_input"), (3, 2))
    assert {(mean.nodes[e.src].title, mean.nodes[e.dst].title) for e in mean.edges} >= {
        ("h^(1)", "C"), ("h^(2)", "C"), ("h^(3)", "C")}


@pytest.mark.parametrize("name", names())
def test_the_drawings_render(name, dot_program, tmp_path):
    for drawing, stem in ((draw_encdec(load(name)), "book"), (draw_encdec_unrolled(load(name)), "unrolled")):
        path = drawing.save(tmp_path / f"{name}_{stem}.png")
        assert path.stat().st_size > 5000


def test_the_gallery_entries_draw(dot_program, tmp_path):
    from graphrnn.render.encdec import gallery_pictures

    pictures = gallery_pictures()
    assert [p.name for p in pictures] == ["fig10_12", "fig10_12_unrolled"]
    for p in pictures:
        assert p.draw().save(tmp_path / f"{p.name}.svg").read_text().count("<svg") == 1


def test_a_link_other_than_the_last_state_is_written_beside_its_line():
    into_c = lambda s: next(e for e in s.edges if s.nodes[e.dst].name == "C")  # noqa: E731
    assert into_c(encdec_scene(load("fig10_12"))).label is None
    assert "mean(h)" in into_c(encdec_scene(load("fig10_12_input"))).label
