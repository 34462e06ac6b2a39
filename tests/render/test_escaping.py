"""Any user name yields valid DOT and SVG: quotes, <, >, &, backslashes, control characters."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import networkx as nx
import pytest
from _deps import needs_dot

import graphrnn as gr
from graphrnn.render import draw_fold_unfold, draw_folded, draw_ops, draw_unfolded, style


HOSTILE = ['h"<&>', "x'\\", "<b>bold</b>", "]]>&amp;", "\\N\\G", "a;b{c}", "w -> v", "é λ ∂"]


def hostile_graph(h, x, w):
    g = nx.MultiDiGraph(name='my "net" <1>')
    g.add_node(x, kind="input")
    g.add_node(h, kind="computed")
    g.add_edge(x, h, delay=0, param=w)
    g.add_edge(h, h, delay=1, param=w + "&2")
    return g


def svg_text(drawing) -> str:
    root = ET.fromstring(drawing.pipe(format="svg"))
    texts = ["".join(t.itertext()) for t in root.iter() if t.tag.endswith("text")]
    titles = [v for t in root.iter() for k, v in t.attrib.items() if k.endswith("title")]
    return "\n".join(texts + titles).replace("\u200b", "")  # the zero-width space that defuses \\N


def test_labels_escape_html():
    assert style.var_label('<"&>', "t") == "<<B><I>&lt;&quot;&amp;&gt;</I></B><SUP>(<I>t</I>)</SUP>>"
    # a superscript's letters go in italics, and whatever surrounds them is still escaped
    assert style.step_sup("t<&>1") == "<SUP>(<I>t</I>&lt;&amp;&gt;1)</SUP>"
    assert style.param_label("<W>") == "<<I>&lt;W&gt;</I>>"
    assert style.text("a\x00b\x1bc") == "a\ufffdb\ufffdc"  # XML cannot hold control characters


@pytest.mark.parametrize("name", HOSTILE)
def test_node_ids_never_come_from_user_names(name):
    src = draw_fold_unfold(hostile_graph(name, "x", "W")).source
    ids = set()
    for line in src.splitlines()[1:]:
        line = line.strip()
        m = re.match(r"^(\S+) -> (\S+) \[", line) or re.match(r"^(\S+) \[", line)
        if m and m.group(1) not in ("graph", "node", "edge"):
            ids.update(m.groups())
    assert ids and all(re.fullmatch(r"n\d+|lbl\d+", i) for i in ids)


@needs_dot
@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_variable_and_weight_names_survive_into_the_svg(name):
    g = hostile_graph(name, name + "_in", name + "W")
    for d in (draw_folded(g), draw_unfolded(g), draw_unfolded(g, steps=3), draw_fold_unfold(g)):
        text = svg_text(d)  # parses as XML
        assert name in text
        assert name + "W" in text


@needs_dot
def test_control_characters_are_replaced_not_passed_to_xml():
    g = hostile_graph("h\x01\x02", "x\n", "W\t")
    text = svg_text(draw_folded(g))
    assert "h\ufffd\ufffd" in text


@needs_dot
def test_hostile_tensor_names_at_the_op_level():
    x = gr.Tensor([1.0, 2.0], requires_grad=True, name='<x & "y">')
    w = gr.Tensor([3.0, 4.0], requires_grad=True, name="\\N ]]>")
    loss = gr.sum(gr.tanh(x * w))
    loss.name = "L<1>"
    text = svg_text(draw_ops(loss))
    for name in ('<x & "y">', "\\N ]]>", "L<1>"):
        assert name in text
