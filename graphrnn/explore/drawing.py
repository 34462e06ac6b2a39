"""The page's picture: graphrnn's own unfolded drawing, laid out by graphviz as SVG, with hooks for the script.

The drawing is :func:`graphrnn.render.unfolded.unfolded_scene` of the run's ``T``
steps (every step shown), exactly as ``graphrnn render ARCH --unrolled --steps T
--window T`` draws it.  Nothing is redrawn: each node and edge only gets a CSS
class naming it (``gvn3``, ``gve7``), which graphviz writes into the SVG, so the
page's script can find them, and a ``<title>`` in the book's notation
(``h(3)``, ``x(2) → h(2)``) in place of graphviz's internal ids.

>>> import graphrnn as gr
>>> d = explorer_drawing(gr.load("fig10_3"), 2)
>>> d.svg.startswith("<svg") and 'class="node gvn0"' in d.svg
True
>>> d.nodes[0], [(e.src, e.dst, e.param) for e in d.edges][:2]
('h[1]', [('x[1]', 'h[1]', 'U'), ('h[0]', 'h[1]', 'W')])
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from ..render.output import render_bytes
from ..render.scene import to_digraph
from ..render.unfolded import unfolded_scene


@dataclass
class DrawnEdge:
    cls: str  # the CSS class of its pieces in the SVG
    src: str  # node keys: "h[1]", "x[2]"
    dst: str
    param: str | None


@dataclass
class ExplorerDrawing:
    svg: str  # the <svg> element, no XML prolog, no fixed size (the page scales it)
    nodes: list  # node keys in class order: nodes[i] is drawn with class gvn{i}
    edges: list  # DrawnEdge, edges[j] with class gve{j}
    width: float  # the natural size, in points
    height: float


def book_title(key: str) -> str:
    """``h[3]`` -> ``h(3)``, as a tooltip can write it."""
    m = re.match(r"^(.+)\[(-?\d+)\]$", key)
    return f"{m.group(1)}({m.group(2)})" if m else key


def explorer_drawing(rec, T: int) -> ExplorerDrawing:
    """Lay out the unfolded drawing of ``rec`` over ``T`` steps with classes on its nodes and edges."""
    scene = unfolded_scene(rec, steps=T, window=T)
    keys, ids = [], {}
    for node in scene.nodes.values():
        if node.role not in ("variable", "continuation", "parameter"):
            continue
        k = f"{node.name}[{node.step}]" if node.step is not None else node.name
        ids[node.id] = k
        node.attrs["class"] = f"gvn{len(keys)}"
        keys.append(k)
    edges = []
    for edge in scene.edges:
        a, b = ids.get(edge.src), ids.get(edge.dst)
        if a is None or b is None:
            continue
        edge.attrs["class"] = f"gve{len(edges)}"
        edges.append(DrawnEdge(edge.attrs["class"], a, b, edge.param))
    svg = render_bytes(to_digraph(scene, name="explore"), "svg").decode("utf-8")
    svg = svg[svg.index("<svg"):]
    m = re.search(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg)
    width, height = (float(m.group(1)), float(m.group(2))) if m else (800.0, 600.0)
    svg = re.sub(r'<svg width="[\d.]+pt" height="[\d.]+pt"', '<svg id="graph-svg" role="img" '
                 'aria-label="the unfolded graph"', svg, count=1)
    # graphviz titles each group with its internal id (n15, n15->n0): the book's names instead
    by_id = {nid: book_title(k) for nid, k in ids.items()}

    def title(m):
        raw = html.unescape(m.group(1))
        if "->" in raw:
            a, _, b = raw.partition("->")
            text = f"{by_id.get(a, a)} → {by_id.get(b, b)}" if a in by_id and b in by_id else ""
        else:
            text = by_id.get(raw, "")
        return f"<title>{html.escape(text)}</title>"

    svg = re.sub(r"<title>([^<]*)</title>", title, svg)
    return ExplorerDrawing(svg, keys, edges, width, height)
