"""A drawing before it is DOT: nodes placed on rows and columns, edges with their delay squares.

Every drawing of :mod:`graphrnn.render` is first a :class:`Scene` — plain
Python data that tests (and curious users) can inspect: which nodes, which
edges, which labels, which edges carry a delay square — then becomes a
``graphviz.Digraph`` with :func:`to_digraph`.  The Digraph carries its scene
as ``digraph.scene``.

Layout is the book's: ``row`` 0 at the bottom (inputs) growing upwards (hidden,
output, loss, target); ``col`` left to right (the folded graph, then time).
Rows become ``rank=same`` groups, columns are held straight by invisible
weighted edges, and an edge that would run against the row/column order is
written reversed with ``dir=back`` so it bends neither the ranks nor the order.

>>> s = Scene()
>>> h = s.add("variable", name="h", sup="t", row=1, col=0)
>>> x = s.add("variable", name="x", sup="t", row=0, col=0)
>>> _ = s.connect(x, h, param="U")
>>> [(e.src_name, e.dst_name, e.param) for e in s.edges]
[('x', 'h', 'U')]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from . import style
from .output import Drawing

ROLES = ("variable", "continuation", "delay", "ellipsis", "arrow", "caption", "parameter", "legend", "op")


@dataclass
class Node:
    """One node of a drawing.

    ``role`` is what it is in the picture: ``variable`` (a circle), ``continuation``
    (a dashed circle ``h^(...)``), ``delay`` (the black square), ``ellipsis`` (the
    text standing for the steps a window leaves out), ``parameter`` (a small box,
    e.g. a dummy copy ``W^(3)``), ``arrow`` (an end of the "Unfold" arrow),
    ``caption``, ``legend`` or ``op``.  ``sup`` is the superscript without its
    parentheses (``"t−1"``, ``"3"``, ``"..."``); ``step`` the integer step behind it.
    """

    id: str
    role: str
    name: str = ""
    sup: str | None = None
    step: int | None = None
    kind: str = ""
    row: int | None = 0  # None: dot ranks the node itself (the op level)
    col: float = 0.0
    panel: int = 0
    html: str | None = None  # an already-escaped label replacing the default
    attrs: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)  # anything a caller wants to keep (e.g. gradient norms)

    @property
    def title(self) -> str:
        """``h^(t−1)``: the node as the book writes it (for tests and messages)."""
        return self.name + (f"^({self.sup})" if self.sup is not None else "")


@dataclass
class Edge:
    """One connection: ``src -> dst`` through ``param``, via ``squares`` (one per step of delay)."""

    src: str
    dst: str
    src_name: str = ""
    dst_name: str = ""
    param: str | None = None
    delay: int = 0
    dashed: bool = False
    target: bool = False
    context: bool = False
    squares: tuple = ()  # the delay squares on the edge, in order (ids)
    via: tuple = ()  # every node the edge is drawn through: its squares and any bend points (ids)
    label: str | None = None  # an already-escaped HTML label (default: the param in italics)
    arc: float = 0.0  # pinned layouts: > 0 bows the edge above its row, this fraction of its span high (fig. 10.7)
    attrs: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)


@dataclass
class Scene:
    """Nodes and edges of a drawing, with where each goes (see the module's doc)."""

    nodes: dict = field(default_factory=dict)
    edges: list = field(default_factory=list)
    graph_attrs: dict = field(default_factory=dict)
    panels: dict = field(default_factory=dict)  # panel number -> title (clusters); none: one picture
    label: str | None = None  # an already-escaped HTML caption for the whole drawing
    window: object = None  # the unfolded drawing's Window (which steps are shown), if any
    info: dict = field(default_factory=dict)  # facts the drawing states (parameter counts, gradient norms)
    layout: str = "ranked"  # "ranked": dot places nodes by rows; "pinned": at their (col, row) exactly
    spacing: tuple | None = None  # pinned: inches between columns and between rows (default XSTEP, YSTEP)

    def add(self, role: str, **fields) -> Node:
        if role not in ROLES:
            raise ValueError(f"unknown node role {role!r}")
        node = Node(id=f"n{len(self.nodes)}", role=role, **fields)
        self.nodes[node.id] = node
        return node

    def connect(self, src: Node, dst: Node, **fields) -> Edge:
        edge = Edge(src=src.id, dst=dst.id, src_name=src.name, dst_name=dst.name, **fields)
        self.edges.append(edge)
        return edge

    # ---------------------------------------------------------------- queries (tests, users)
    def find(self, name: str, sup=None, role: str | None = None, panel: int | None = None) -> Node | None:
        """The node drawn for variable ``name`` with superscript ``sup`` (``None``: folded)."""
        sup = None if sup is None else str(sup)
        for node in self.nodes.values():
            if node.name == name and node.sup == sup and (role is None or node.role == role) \
                    and (panel is None or node.panel == panel):
                return node
        return None

    def of_role(self, role: str) -> list:
        return [n for n in self.nodes.values() if n.role == role]

    def titles(self, role: str | None = None, panel: int | None = None) -> set:
        """``{"h^(t)", "x^(t)", ...}``: the nodes (of ``role``) as the book writes them."""
        return {n.title for n in self.nodes.values()
                if (role is None or n.role == role) and (panel is None or n.panel == panel)
                and n.role in ("variable", "continuation", "parameter")}

    def connections(self, panel: int | None = None) -> set:
        """``{("h^(t−1)", "h^(t)", "W", 0), ...}``: (from, to, label, number of delay squares)."""
        out = set()
        for e in self.edges:
            a, b = self.nodes[e.src], self.nodes[e.dst]
            if panel is not None and a.panel != panel:
                continue
            if a.role in ("variable", "continuation", "parameter") and b.role in ("variable", "continuation",
                                                                                   "parameter"):
                out.add((a.title, b.title, e.param, len(e.squares)))
        return out


# ------------------------------------------------------------------------------ to DOT


def _is_after(a: Node, b: Node) -> bool:
    """Whether ``a`` comes after ``b`` in the drawing's order (higher row, or further right)."""
    if a.row is None or b.row is None:  # placed freely by dot (the op level)
        return False
    return (a.row, a.col) > (b.row, b.col)


def circle_size(node: Node) -> float:
    """A circle wide enough for ``node``'s name and superscript (inches, estimated from the text)."""
    sup = len(node.sup) + 2 if node.sup is not None else 0
    return 0.12 + 0.12 * len(node.name) + 0.08 * sup


def _node_attrs(node: Node) -> dict:
    role = node.role
    if role in ("variable", "continuation"):
        attrs = {"label": node.html or style.var_label(node.name, node.sup)}
        if role == "continuation":
            attrs["style"] = "dashed"
        elif node.kind == "initial":
            attrs.update(color="gray45", fontcolor="gray30")
        tip = node.title + (f" ({node.kind})" if node.kind else "")
        attrs["tooltip"] = style.plain(tip)
    elif role == "delay":
        attrs = {"shape": "square", "style": "filled", "fillcolor": "black", "color": "black",
                 "width": str(style.SQUARE), "height": str(style.SQUARE), "fixedsize": "true", "label": "",
                 "tooltip": "a delay of one time step"}
    elif role == "ellipsis":
        attrs = {"shape": "plaintext", "label": node.html or style.text(node.name), "fontsize": "14",
                 "width": "0.3", "height": "0.3"}
    elif role == "arrow":  # an end of the "Unfold" arrow, or a bend point of a loop
        attrs = {"shape": "point", "style": "invis", "width": "0.01", "height": "0.01", "label": ""}
    elif role == "parameter":
        attrs = {"shape": "box", "style": "rounded", "width": "0.3", "height": "0.3",
                 "label": node.html or style.var_label(node.name, node.sup, bold=False), "fontsize": "13",
                 "tooltip": style.plain(node.title)}
    else:  # caption, legend, op
        attrs = {"shape": "plaintext" if role != "op" else "none", "label": node.html or style.text(node.name),
                 "width": "0", "height": "0", "margin": "0"}
    if role not in ("variable", "continuation", "delay"):
        attrs.setdefault("fixedsize", "false")
    attrs.update(node.attrs)
    return attrs


def to_digraph(scene: Scene, name: str = "graphrnn") -> Drawing:
    """The ``graphviz.Digraph`` (a :class:`~graphrnn.render.output.Drawing`) for ``scene``, with ``.scene`` set."""
    g = Drawing(name=style.plain(name), graph_attr={**style.GRAPH, **scene.graph_attrs}, node_attr=dict(style.NODE),
                         edge_attr=dict(style.EDGE))
    if scene.label:
        g.attr(label=scene.label, labelloc="b", fontsize="14")
    nodes = scene.nodes
    # the book's circles are all one size: the size of the widest label in this drawing
    size = max([style.NODE_SIZE] + [circle_size(n) for n in nodes.values() if n.role in ("variable", "continuation")])
    g.node_attr.update(width=f"{size:.2f}", height=f"{size:.2f}", fixedsize="true")
    if scene.layout == "pinned":
        return _pinned(g, scene)
    # dot bundles every edge between the same two nodes (invisible ones too) and may draw the
    # bundle with one edge's arrows: so an ordering edge is only added where no edge runs
    linked = {frozenset(p) for e in scene.edges for p in zip(_pieces(e), _pieces(e)[1:])}
    panels = sorted({n.panel for n in nodes.values()})
    for panel in panels:
        members = [n for n in nodes.values() if n.panel == panel]
        if scene.panels:
            with g.subgraph(name=f"cluster_{panel}") as sub:
                title = scene.panels.get(panel) or ""
                if not (title.startswith("<") and title.endswith(">")):  # ours are HTML; anything else is text
                    title = style.plain(title)
                sub.attr(label=title, labelloc="t", fontsize="16", color="white", fontname=style.FONT)
                _place(sub, members, linked)
        else:
            _place(g, members, linked)
    # panels side by side (or stacked, left to right in rankdir=LR) in the order they are numbered
    for p, q in zip(panels, panels[1:]):
        common = sorted({n.row for n in nodes.values() if n.panel == p and n.row is not None}
                        & {n.row for n in nodes.values() if n.panel == q and n.row is not None})
        if common:
            last = max((n for n in nodes.values() if n.panel == p and n.row == common[0]), key=lambda n: n.col)
            first = min((n for n in nodes.values() if n.panel == q and n.row == common[0]), key=lambda n: n.col)
            if scene.graph_attrs.get("rankdir") == "LR":  # stacked: an edge from one to the next is enough
                g.edge(last.id, first.id, style="invis", weight="0")
                continue
            with g.subgraph() as same:  # the same rank (newrank lets it reach into both clusters)
                same.attr(rank="same")
                same.edge(last.id, first.id, style="invis")
    for node in nodes.values():
        if node.role == "legend":
            g.node(node.id, **{k: v for k, v in _node_attrs(node).items()})
    for edge in scene.edges:
        _draw_edge(g, scene, edge)
    g.scene = scene
    return g


def _place(g, members: list, linked: set) -> None:
    rows: dict[int, list] = {}
    for n in members:
        if n.role == "legend":
            continue
        if n.row is None:  # no row: dot ranks it (the op level)
            g.node(n.id, **_node_attrs(n))
        else:
            rows.setdefault(n.row, []).append(n)
    for row in sorted(rows):
        ordered = sorted(rows[row], key=lambda n: n.col)
        with g.subgraph() as same:
            same.attr(rank="same")
            for n in ordered:
                attrs = _node_attrs(n)
                if n.role in ("variable", "continuation", "ellipsis") and float(n.col).is_integer():
                    attrs.setdefault("group", f"p{n.panel}c{int(n.col)}")
                same.node(n.id, **attrs)
            for a, b in zip(ordered, ordered[1:]):  # hold the left-to-right order
                if frozenset((a.id, b.id)) not in linked:
                    same.edge(a.id, b.id, style="invis")
    # keep each column of circles straight, one above the other
    columns: dict[float, list] = {}
    for n in members:
        if n.row is not None and n.role in ("variable", "continuation", "ellipsis") and float(n.col).is_integer():
            columns.setdefault(n.col, []).append(n)
    stacked = set()  # pairs of rows held one above the other
    for col in sorted(columns):
        stack = sorted(columns[col], key=lambda n: n.row)
        firsts = [next(n for n in stack if n.row == r) for r in sorted({n.row for n in stack})]
        for a, b in zip(firsts, firsts[1:]):
            if b.row == a.row + 1 or not any(a.row < r < b.row for r in rows):
                stacked.add((a.row, b.row))
            if frozenset((a.id, b.id)) in linked:
                continue
            g.edge(a.id, b.id, style="invis", weight="8")
    # every row above the one below it, even a row no column reaches (g of fig. 10.11 moved aside)
    order = sorted(rows)
    for r1, r2 in zip(order, order[1:]):
        if (r1, r2) not in stacked:
            a = min(rows[r1], key=lambda n: n.col)
            b = min(rows[r2], key=lambda n: n.col)
            if frozenset((a.id, b.id)) not in linked:
                g.edge(a.id, b.id, style="invis", weight="0")


def _pieces(edge: Edge) -> list:
    return [edge.src, *edge.via, edge.dst]


def _draw_edge(g, scene: Scene, edge: Edge) -> None:
    chain = _pieces(edge)
    label = edge.label if edge.label is not None else style.param_label(edge.param)
    last = len(chain) - 2
    for i, (a, b) in enumerate(zip(chain, chain[1:])):
        attrs = dict(edge.attrs)
        if edge.dashed:
            attrs["style"] = "dashed"
        na, nb = scene.nodes[a], scene.nodes[b]
        if na.role == "arrow" and na.kind == "bend":
            attrs["tailclip"] = "false"
        if nb.role == "arrow" and nb.kind == "bend":
            attrs["headclip"] = "false"
        # the weight letter goes beside the last piece, the one whose arrow points into the destination
        if i == last and label:
            attrs["label"] = label
        if na.row is not None and nb.row is not None and na.col == nb.col and na.row != nb.row \
                and float(na.col).is_integer():
            attrs.setdefault("weight", "8")  # a column of circles stays straight
        reverse = _is_after(na, nb)
        if i < last:
            attrs["dir"] = "none"
        elif reverse:
            attrs["dir"] = "back"
        if reverse:
            g.edge(b, a, **attrs)
        else:
            g.edge(a, b, **attrs)


# ------------------------------------------------------------------------------ pinned layout

#: inches between columns and between rows of a pinned drawing
XSTEP, YSTEP = 1.6, 1.0
LABEL_GAP = 0.17


def _pinned(g: Drawing, scene: Scene) -> Drawing:
    """Lay ``scene`` out at its exact (col, row) positions with neato: straight edges, labels beside them.

    dot cannot keep a row's chain straight when another edge must cross that row
    inside a column (fig. 10.11: x^(t) -> g^(t) passes the row of h); with every
    position fixed, the crossing is drawn as the book draws it, a plain crossing.
    """
    g.engine = "neato"
    g.graph_attr.update(splines="false", overlap="true", rankdir="", newrank="", ordering="")
    xstep, ystep = scene.spacing or (XSTEP, YSTEP)
    # an arc (fig. 10.7) is a curve dot cannot be told to draw: its Bézier points are written into the
    # DOT as the edge's pos, and neato only draws (-n2), with every position in points
    curved = any(e.arc for e in scene.edges)
    unit, pin = (72.0, "") if curved else (1.0, "!")
    if curved:
        g.neato_no_op = 2
        g.comment = "positions and curves are fixed: lay out with neato -n2"
    pos = {}
    loops, loop_corners, loop_labels = loop_layout(scene, xstep, ystep)
    for n in scene.nodes.values():
        x, y = loops.get(n.id) or (n.col * xstep, (n.row or 0) * ystep)
        pos[n.id] = (x, y)
        g.node(n.id, pos=f"{x * unit:.3f},{y * unit:.3f}{pin}", **_node_attrs(n))
    radius = float(g.node_attr["width"]) / 2
    segments = []
    labelled = []
    fixed = []
    for number, edge in enumerate(scene.edges):
        chain = _pieces(edge)
        label = edge.label if edge.label is not None else style.param_label(edge.param)
        if id(edge) in loop_corners:  # a drawing-only bend: the loop's corner below the circle
            corner = f"corner{number}"
            pos[corner] = cx, cy = loop_corners[id(edge)]
            g.node(corner, pos=f"{cx * unit:.3f},{cy * unit:.3f}{pin}", shape="point", style="invis",
                   width="0.01", height="0.01", label="")
            chain = [chain[0], corner, *chain[1:]]
        for i, (a, b) in enumerate(zip(chain, chain[1:])):
            attrs = dict(edge.attrs)
            if edge.dashed:
                attrs["style"] = "dashed"
            if i < len(chain) - 2:
                attrs["dir"] = "none"
            if edge.arc and len(chain) == 2:
                curve = arc_points(pos[a], pos[b], edge.arc, radius,
                                   float(attrs.get("arrowsize", style.EDGE["arrowsize"])))
                attrs["pos"] = "e,%.2f,%.2f " % tuple(c * 72 for c in curve[-1]) + " ".join(
                    "%.2f,%.2f" % (px * 72, py * 72) for px, py in curve[:-1])
                pts = [bezier(curve[:4], f / 8) for f in range(9)]
                segments.extend(zip(pts, pts[1:]))
                if label:  # the letter above the arc's top
                    peak = pts[4]
                    fixed.append(((peak[0], peak[1] + LABEL_GAP), label, edge.attrs.get("fontcolor", "black")))
                    label = None
            else:
                segments.append((pos[a], pos[b]))
            g.edge(a, b, **attrs)
        colour = edge.attrs.get("fontcolor", "black")
        if label and id(edge) in loop_labels:  # beside the loop's outer side
            fixed.append((loop_labels[id(edge)], label, colour))
        elif label:
            labelled.append((pos[chain[-2]], pos[chain[-1]], label, colour, edge.data.get("label_side", 1)))
    placed = [spot for spot, _, _ in fixed]
    spots = list(fixed)
    for p1, p2, label, colour, side in labelled:
        spot = _label_spot(p1, p2, segments, list(pos.values()), placed, side)
        placed.append(spot)
        spots.append((spot, label, colour))
    for k, ((mx, my), label, colour) in enumerate(spots):
        g.node(f"lbl{k}", pos=f"{mx * unit:.3f},{my * unit:.3f}{pin}", label=label, shape="plaintext", width="0",
               height="0", margin="0", fixedsize="false", fontsize=str(style.EDGE_FONT_SIZE), fontcolor=colour)
    g.scene = scene
    return g


#: a self-loop's shape (inches): its outer side's distance from the circle's centre (each further loop
#: is LOOP_SPREAD further out), and the gap between the squares of a chain
LOOP_REACH, LOOP_SPREAD, SQUARE_GAP = 0.62, 0.5, 0.17


def loop_layout(scene: Scene, xstep: float = XSTEP, ystep: float = YSTEP) -> tuple:
    """Where each self-loop of a pinned drawing goes: its squares, its bend, its corner and its weight letter.

    As fig. 10.3 draws ``h``'s loop: the loop leaves the circle downwards, runs out to its
    outer side, up through its chain of squares (one per step of delay) and back into the circle
    with the arrow, straight from the last square.  A circle's loops nest, the shortest delay
    innermost; each further one leaves lower and comes back higher, so no two cross and their
    ends stay apart on the circle.  Each weight letter sits beside its own chain of squares.

    Returns ``({node id: (x, y)}, {id(edge): (x, y) of its corner}, {id(edge): (x, y) of its letter})``;
    the corner is a bend the drawing adds between the circle and the first square.
    """
    by_owner: dict = {}
    for e in scene.edges:
        if e.src == e.dst and e.via:
            by_owner.setdefault(e.dst, []).append(e)
    spots, corners, letters = {}, {}, {}
    for owner_id, loops in by_owner.items():
        owner = scene.nodes[owner_id]
        ox, oy = owner.col * xstep, (owner.row or 0) * ystep
        for side in (-1, 1):
            mine = [e for e in loops if (1 if scene.nodes[e.via[0]].col > owner.col else -1) == side]
            for i, e in enumerate(sorted(mine, key=lambda e: len(e.squares))):
                k = len(e.squares)
                reach = LOOP_REACH + LOOP_SPREAD * i
                x = ox + side * reach
                back = reach * math.tan(math.radians(min(30 * i, 60)))  # where it comes back in, above the centre
                out = reach * math.tan(math.radians(min(25 + 15 * i, 70)))  # where it leaves, below
                out = max(out, SQUARE_GAP * (k - 1) + 0.2 - back)  # room for the chain
                for j, sq in enumerate(e.squares):
                    spots[sq] = (x, oy + back - SQUARE_GAP * (k - 1 - j))
                for extra in e.via[k:]:  # the bend: at the last square, the arrow runs straight in
                    spots[extra] = (x, oy + back)
                corners[id(e)] = (x, oy - out)
                letters[id(e)] = (x + side * 0.2, oy + back - SQUARE_GAP * (k - 1) / 2)
    return spots, corners, letters


def arc_points(p1, p2, height: float, radius: float, arrowsize: float) -> list:
    """The Bézier control points (inches) of an arc from the circle at ``p1`` to the one at ``p2``,
    bowing up by ``height`` times their distance, as fig. 10.7 draws its long arcs; the last point is
    the arrow's tip, on the destination's circle (the curve ends an arrowhead's length before it).

    >>> pts = arc_points((0, 0), (2, 0), 0.5, 0.25, 0.7)
    >>> [round(v, 3) for v in pts[0]], round(max(y for _, y in pts), 3) > 0.5
    ([0.086, 0.235], True)
    """
    (x1, y1), (x2, y2) = p1, p2
    span = math.hypot(x2 - x1, y2 - y1)
    # leave near the top of the source, come down onto the top of the destination
    out, into = math.radians(70), math.radians(110)
    sign = 1 if x2 >= x1 else -1
    start = (x1 + sign * radius * math.cos(out), y1 + radius * math.sin(out))
    tip = (x2 + sign * radius * math.cos(into), y2 + radius * math.sin(into))
    head = 10 * arrowsize / 72  # graphviz's arrowhead is 10 points long at arrowsize 1
    end = (tip[0] + sign * head * math.cos(into), tip[1] + head * math.sin(into))
    lift = height * span * 4 / 3  # a cubic's peak is 3/4 of its control points' height
    return [start, (start[0] + sign * 0.12 * span, start[1] + lift), (end[0] - sign * 0.12 * span, end[1] + lift),
            end, tip]


def bezier(points, f: float) -> tuple:
    """The point a fraction ``f`` along the cubic Bézier curve with control ``points``."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = points
    a, b, c, d = (1 - f) ** 3, 3 * f * (1 - f) ** 2, 3 * f * f * (1 - f), f ** 3
    return a * x0 + b * x1 + c * x2 + d * x3, a * y0 + b * y1 + c * y2 + d * y3


def _distance(p, a, b) -> float:
    """Distance from point ``p`` to the segment ``a``–``b``."""
    (x, y), (x1, y1), (x2, y2) = p, a, b
    dx, dy = x2 - x1, y2 - y1
    t = 0.0 if dx == dy == 0 else max(0.0, min(1.0, ((x - x1) * dx + (y - y1) * dy) / (dx * dx + dy * dy)))
    return math.hypot(x - (x1 + t * dx), y - (y1 + t * dy))


def _label_spot(p1, p2, segments, centres, placed, prefer: int = 1) -> tuple:
    """Where a weight letter goes beside the edge ``p1 -> p2``: to the right of its direction (``prefer=-1``:
    to the left, as fig. 10.14 sets U outside a left child's edge), at the point along it with the most room
    from other edges, circles and labels."""
    (x1, y1), (x2, y2) = p1, p2
    length = math.hypot(x2 - x1, y2 - y1) or 1.0
    nx, ny = prefer * (y2 - y1) / length, -prefer * (x2 - x1) / length
    best, best_room = None, -1.0
    for side, f in [(1, f) for f in (0.5, 0.35, 0.65, 0.25, 0.75)] + [(-1, f) for f in (0.5, 0.35, 0.65)] + \
            [(1, 0.2), (1, 0.8)]:
        spot = (x1 + f * (x2 - x1) + side * nx * LABEL_GAP, y1 + f * (y2 - y1) + side * ny * LABEL_GAP)
        room = min([_distance(spot, a, b) for a, b in segments if {a, b} != {p1, p2}] +
                   [math.hypot(spot[0] - cx, spot[1] - cy) - 0.32 for cx, cy in centres] +
                   [math.hypot(spot[0] - lx, spot[1] - ly) - 0.15 for lx, ly in placed] + [9.0])
        if room >= 0.2:
            return spot
        if room > best_room:
            best, best_room = spot, room
    return best
