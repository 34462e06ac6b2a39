"""The gallery: one command redraws every picture; the committed folder holds them all."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from _deps import needs_dot

from graphrnn.render import gallery

REPO = Path(__file__).resolve().parents[2]
BOOK = {"fig10_2", "fig10_3", "fig10_4", "fig10_5", "fig10_6", "fig10_7_8", "fig10_9", "fig10_10", "fig10_11",
        "fig10_13", "fig10_13a", "fig10_13b", "fig10_13c", "fig10_14"}


def test_the_gallery_covers_every_book_figure_and_gradient_paths():
    names = {p.name for p in gallery.PICTURES}
    assert BOOK <= names
    assert any(n.startswith("grad_") for n in names)


def test_the_committed_gallery_is_complete():
    folder = REPO / "visualizations"
    index = (folder / "index.html").read_text(encoding="utf-8")
    readme = (folder / "README.md").read_text(encoding="utf-8")
    for p in gallery.PICTURES:
        for suffix in (".svg", ".png"):
            assert (folder / f"{p.name}{suffix}").is_file(), f"run python visualizations/make_gallery.py ({p.name})"
        assert f'src="{p.name}.svg"' in index and f"({p.name}.svg)" in readme


@needs_dot
def test_make_writes_the_pictures_and_the_index(tmp_path):
    written = gallery.make(tmp_path, only=["fig10_3", "grad_vanishing"], formats=("svg",))
    assert {p.name for p in written} == {"fig10_3.svg", "grad_vanishing.svg", "index.html", "README.md"}
    ET.parse(tmp_path / "fig10_3.svg")
    assert "fig10_11.svg" in (tmp_path / "index.html").read_text(encoding="utf-8")


def test_fig10_13_is_three_titled_folded_panels_as_printed():
    s = {p.name: p for p in gallery.PICTURES}["fig10_13"].draw().scene
    assert s.panels == {0: "(a)", 1: "(b)", 2: "(c)"}
    loops = {(e.src_name, e.param, e.panel if hasattr(e, "panel") else s.nodes[e.src].panel)
             for e in s.edges if e.squares}
    assert loops == {("h", "W", 0), ("z", "Wz", 0), ("m", "W", 1), ("m", "W", 2), ("h", "S", 2)}


def test_fig10_14_is_drawn_unnamed_as_printed():
    s = {p.name: p for p in gallery.PICTURES}["fig10_14"].draw().scene
    assert sum(1 for n in s.nodes.values() if n.html == "<>") == 7
    assert {("x^(1)", "h^(1)", "V", 0), ("h^(1..2)", "h^(1..4)", "U", 0)} <= s.connections()
