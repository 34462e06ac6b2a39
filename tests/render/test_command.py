"""`graphrnn render`: the examples of its help work; mistakes are one-line errors, exit code 2."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from _deps import needs_dot

from graphrnn import cli
from graphrnn.render import output



def render(tmp_path, *args, out="out.svg"):
    path = tmp_path / out
    code = cli.main(["render", *args, "-o", str(path)])
    return code, path


@needs_dot
@pytest.mark.parametrize("args", [
    ["fig10_3", "--folded"],
    ["fig10_3", "--both"],
    ["fig10_5", "--unrolled"],
    ["fig10_3", "--unrolled", "--steps", "10000", "--window", "6"],
    ["fig10_3", "--unrolled", "--steps", "20", "--window", "4", "--start", "5"],
    ["fig10_6", "--teacher-forcing"],
    ["fig10_6", "--folded", "--mode", "free"],
    ["fig10_3", "--unrolled", "--steps", "3", "--level", "op"],
    ["fig10_3", "--unrolled", "--steps", "8", "--grad-path", "L[8]:h[1]", "--scale", "W=0.5"],
    ["fig10_3", "--unrolled", "--steps", "3", "--grad-path", "L:W^(2)", "--level", "op"],
    ["fig10_3", "--both", "--size", "H=3"],
])
def test_render_writes_valid_svg(tmp_path, args, capsys):
    code, path = render(tmp_path, *args)
    assert code == 0, capsys.readouterr().err
    ET.parse(path)
    assert "wrote" in capsys.readouterr().out


def test_render_writes_dot_without_the_dot_program(tmp_path, monkeypatch):
    monkeypatch.setattr(output.shutil, "which", lambda name: None)
    code, path = render(tmp_path, "fig10_3", "--folded", out="a.dot")
    assert code == 0 and path.read_text(encoding="utf-8").startswith("digraph")


@pytest.mark.parametrize("args,message", [
    (["fig10_3", "--folded", "--steps", "3"], "--unrolled"),
    (["fig10_3", "--folded", "--level", "op"], "--unrolled"),
    (["fig10_3", "--unrolled", "--grad-path", "L[2]"], "FROM:TO"),
    (["fig10_3", "--unrolled", "--grad-path", "L[2]:h[3]"], "does not depend"),
    (["fig10_3", "--unrolled", "--level", "op", "--scale", "Q=2"], "not a parameter"),
    (["fig10_3", "--unrolled", "--scale", "W=2"], "--scale"),
    (["fig10_3", "--teacher-forcing"], "feedback"),
    (["fig10_2", "--unrolled", "--level", "op"], "no loss"),
    (["nope", "--folded"], "no architecture"),
])
def test_mistakes_are_one_line_errors(tmp_path, args, message, capsys):
    code, path = render(tmp_path, *args, out="x.dot")
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not path.exists()


def test_a_bad_suffix_is_an_error(tmp_path, capsys):
    code, _ = render(tmp_path, "fig10_3", "--folded", out="x.jpeg")
    assert code == 2 and ".svg" in capsys.readouterr().err
