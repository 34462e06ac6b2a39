"""Fig. 10.14 drawn: a tree bottom to top, the same U, V, W at every node; and `graphrnn render` on a tree."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from _deps import needs_dot

import graphrnn as gr
from graphrnn import cli
from graphrnn.errors import RenderError
from graphrnn.render.tree import MAX_DRAWN_LEAVES, draw_tree, tree_scene


@pytest.fixture(scope="module")
def rec():
    return gr.zoo.load_tree("fig10_14")


def test_the_books_tree_has_the_books_circles_and_letters(rec):
    s = tree_scene(rec)
    assert s.titles() == {"x^(1)", "x^(2)", "x^(3)", "x^(4)", "h^(1)", "h^(2)", "h^(3)", "h^(4)",
                          "h^(1..2)", "h^(3..4)", "h^(1..4)", "o", "L", "y"}
    c = s.connections()
    assert {(f"x^({i})", f"h^({i})", "V", 0) for i in range(1, 5)} <= c
    assert {("h^(1)", "h^(1..2)", "U", 0), ("h^(2)", "h^(1..2)", "W", 0), ("h^(3)", "h^(3..4)", "U", 0),
            ("h^(4)", "h^(3..4)", "W", 0), ("h^(1..2)", "h^(1..4)", "U", 0), ("h^(3..4)", "h^(1..4)", "W", 0)} <= c
    assert ("o", "L", None, 0) in c and ("y", "L", None, 0) in c and ("h^(1..4)", "o", "R", 0) in c


def test_bottom_to_top_each_parent_above_and_between_its_children(rec):
    s = tree_scene(rec, (((1, 2), 3), (4, (5, 6))))
    for parent, kids in (("1..2", ("1", "2")), ("1..3", ("1..2", "3")), ("1..6", ("1..3", "4..6"))):
        p = s.find("h", parent)
        a, b = (s.find("h", k) for k in kids)
        assert p.row > max(a.row, b.row)
        assert a.col < p.col < b.col
    assert all(s.find("x", str(i)).row == 0 for i in range(1, 7))
    assert len({s.find("h", str(i)).row for i in range(1, 7)}) == 1  # every leaf circle in one row
    o, L, y = s.find("o"), s.find("L"), s.find("y")
    assert o.col == s.find("h", "1..6").col and o.row < L.row and y.row == o.row and o.col < L.col < y.col


def test_unnamed_circles_as_printed(rec):
    s = tree_scene(rec, names=False)
    h = [n for n in s.nodes.values() if n.name == "h"]
    assert len(h) == 7 and all(n.html == "<>" for n in h)
    assert s.find("x", "1").html is None


def test_letters_sit_outside_as_printed(rec):
    s = tree_scene(rec)
    sides = {(s.nodes[e.src].title, e.param): e.data["label_side"] for e in s.edges}
    assert sides[("h^(1..2)", "U")] == -1 and sides[("h^(3..4)", "W")] == 1


def test_a_wide_tree_is_refused_with_the_limit(rec):
    t = 1
    for i in range(2, MAX_DRAWN_LEAVES + 2):
        t = (t, i)
    with pytest.raises(RenderError, match=f"at most {MAX_DRAWN_LEAVES}"):
        draw_tree(rec, t)


def test_a_recurrence_is_not_a_tree(rec):
    with pytest.raises(RenderError, match="recursive network"):
        draw_tree(gr.load("fig10_3"))


@needs_dot
@pytest.mark.parametrize("args", [
    ["fig10_14", "--unrolled"],
    ["fig10_14", "--unrolled", "--tree", "(((1, 2), 3), (4, 5))", "--unnamed"],
    ["fig10_14", "--unrolled", "--size", "H=7"],
])
def test_render_draws_a_tree(tmp_path, capsys, args):
    path = tmp_path / "t.svg"
    assert cli.main(["render", *args, "-o", str(path)]) == 0, capsys.readouterr().err
    ET.parse(path)


@pytest.mark.parametrize("args,match", [
    (["fig10_14", "--folded"], "no folded drawing"),
    (["fig10_14", "--unrolled", "--steps", "3"], "over a tree"),
    (["fig10_14", "--unrolled", "--tree", "((1, 2), (3"], "nested pairs"),
    (["fig10_14", "--unrolled", "--tree", "(1, 2, 3)"], "two children"),
    (["fig10_3", "--unrolled", "--tree", "(1, 2)"], "unrolls in time"),
])
def test_render_errors_on_trees(tmp_path, capsys, args, match):
    assert cli.main(["render", *args, "-o", str(tmp_path / "t.svg")]) != 0
    assert match in capsys.readouterr().err
