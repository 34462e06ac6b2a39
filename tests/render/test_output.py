"""Writing drawings: SVG that parses, PNG/PDF/DOT by suffix, a clear error without `dot`, Jupyter."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import graphviz
import pytest
from _deps import needs_dot

import graphrnn as gr
from graphrnn import zoo
from graphrnn.render import (
    Drawing, draw_fold_unfold, draw_folded, draw_graphical_models, draw_teacher_forcing, draw_unfolded, output, save,
)



def svg_of(drawing) -> ET.Element:
    return ET.fromstring(drawing.pipe(format="svg"))


@needs_dot
@pytest.mark.parametrize("arch", zoo.names())
def test_every_zoo_drawing_is_valid_svg(arch):
    rec = gr.load(arch)
    for d in (draw_folded(rec), draw_unfolded(rec), draw_unfolded(rec, steps=3), draw_fold_unfold(rec)):
        root = svg_of(d)
        assert root.tag.endswith("svg")


@needs_dot
def test_the_pair_and_the_graphical_models_are_valid_svg():
    svg_of(draw_teacher_forcing(gr.load("fig10_6")))
    svg_of(draw_graphical_models())


@needs_dot
def test_save_picks_the_format_from_the_suffix(tmp_path):
    d = draw_folded(gr.load("fig10_3"))
    assert save(d, tmp_path / "a.png").read_bytes().startswith(b"\x89PNG")
    assert save(d, tmp_path / "a.pdf").read_bytes().startswith(b"%PDF")
    ET.parse(save(d, tmp_path / "a.svg"))
    assert save(d, tmp_path / "a.dot").read_text(encoding="utf-8") == d.source
    assert save(d, tmp_path / "a.gv").read_text(encoding="utf-8") == d.source


def test_an_unknown_suffix_is_a_render_error(tmp_path):
    with pytest.raises(gr.RenderError, match=r"\.svg"):
        save(draw_folded(gr.load("fig10_3")), tmp_path / "a.txt")


def test_a_missing_folder_is_a_render_error(tmp_path):
    with pytest.raises(gr.RenderError, match="does not exist"):
        save(draw_folded(gr.load("fig10_3")), tmp_path / "no" / "a.dot")


def test_without_dot_images_fail_with_install_advice_but_dot_files_work(tmp_path, monkeypatch):
    monkeypatch.setattr(output.shutil, "which", lambda name: None)
    d = draw_folded(gr.load("fig10_3"))
    for suffix in (".svg", ".png", ".pdf"):
        with pytest.raises(gr.RenderError) as err:
            save(d, tmp_path / f"a{suffix}")
        assert "apt-get install graphviz" in str(err.value) and "brew install graphviz" in str(err.value)
        assert ".dot" in str(err.value)
    assert save(d, tmp_path / "a.dot").read_text(encoding="utf-8").startswith("digraph")
    bundle = d._repr_mimebundle_()
    assert "image/svg+xml" not in bundle and "install" in bundle["text/plain"]


def test_a_dot_that_vanishes_mid_run_is_a_render_error(tmp_path, monkeypatch):
    d = draw_folded(gr.load("fig10_3"))
    monkeypatch.setattr(output, "dot_available", lambda engine="dot": True)

    def boom(*args, **kwargs):
        raise graphviz.ExecutableNotFound(["dot"])

    monkeypatch.setattr(Drawing, "pipe", boom)
    with pytest.raises(gr.RenderError, match="install"):
        save(d, tmp_path / "a.svg")


@needs_dot
def test_drawings_display_inline_in_jupyter():
    d = draw_unfolded(gr.load("fig10_3"))
    assert isinstance(d, graphviz.Digraph)
    bundle = d._repr_mimebundle_()
    ET.fromstring(bundle["image/svg+xml"])
