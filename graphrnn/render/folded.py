"""The folded ("circuit") drawing: one circle per variable, a black square per step of delay.

Figs. 10.2–10.4 (left halves): inputs at the bottom, then hidden, output, loss and
target at the top; the weight a connection passes through is its label; an
unlabelled arrow is a fixed operation (the loss).  :func:`variable_graph` turns a
recurrence (or its folded ``networkx.MultiDiGraph``) into the graph both the
folded and the unfolded drawings read; :func:`rows` assigns the book's rows.

>>> import graphrnn as gr
>>> s = folded_scene(gr.load("fig10_3"))
>>> sorted(s.connections())
[('h', 'h', 'W', 1), ('h', 'o', 'V', 0), ('o', 'L', None, 0), ('x', 'h', 'U', 0), ('y', 'L', None, 0)]
"""

from __future__ import annotations

import networkx as nx

from ..errors import RenderError
from .scene import Scene

DATA_KINDS = ("input", "context")
COMPUTED_KINDS = ("computed", "loss", "fed")


def variable_graph(source, mode: str = "teacher", contract_fed: bool = True, drop=()) -> nx.MultiDiGraph:
    """The folded graph to draw: ``source`` is a Recurrence or a folded ``networkx.MultiDiGraph``.

    ``contract_fed`` replaces free-running mode's stand-in ``y_fed`` (computed from
    ``o``, fed to ``h``) by one edge ``o -> h`` with the delay and weight of the
    feed, as the book draws test time (fig. 10.6).  ``drop`` lists node kinds to
    leave out (``("loss", "target")`` for test time).  Parallel edges that say the
    same thing (same delay, weight and role) are merged.
    """
    if isinstance(source, nx.MultiDiGraph):
        raw = source
    elif hasattr(source, "folded_graph"):
        try:
            raw = source.folded_graph(mode)
        except ValueError as exc:
            raise RenderError(str(exc)) from None
    elif isinstance(source, nx.DiGraph):
        raw = nx.MultiDiGraph(source)
    else:
        raise RenderError(f"cannot draw a {type(source).__name__}: give a Recurrence (graphrnn.load(...)) or its "
                          f"folded networkx.MultiDiGraph")
    g = nx.MultiDiGraph(name=raw.graph.get("name", ""), mode=raw.graph.get("mode", mode))
    for n, d in raw.nodes(data=True):
        kind = d.get("kind") or "computed"
        g.add_node(n, kind=kind, anchor=d.get("anchor") or ("t" if kind in COMPUTED_KINDS else None),
                   feedback_of=d.get("feedback_of"), shape=d.get("shape"))
    seen = set()
    for u, v, d in raw.edges(data=True):
        attrs = {"delay": int(d.get("delay", 0) or 0), "param": d.get("param"), "target": bool(d.get("target")),
                 "context": bool(d.get("context")), "tau": bool(d.get("tau")) or _tau_ref(d.get("text")),
                 "fed": bool(d.get("fed")), "fed_of": d.get("fed_of")}
        sig = (u, v, attrs["delay"], attrs["param"], attrs["target"], attrs["context"], attrs["tau"])
        if sig not in seen:
            seen.add(sig)
            g.add_edge(u, v, **attrs)
    if contract_fed:
        for f in [n for n, d in g.nodes(data=True) if d["kind"] == "fed"]:
            ins = list(g.in_edges(f, data=True))
            outs = list(g.out_edges(f, data=True))
            for u, _, a in ins:
                for _, v, b in outs:
                    if u == f or v == f:
                        continue
                    g.add_edge(u, v, delay=a["delay"] + b["delay"], param=b["param"] or a["param"], target=False,
                               context=a["context"], tau=False, fed=True,
                               fed_of=raw.nodes[f].get("feedback_of") if f in raw else None)
            g.remove_node(f)
    if drop:
        g.remove_nodes_from([n for n, d in list(g.nodes(data=True)) if d["kind"] in drop])
    return g


def _tau_ref(text) -> bool:
    """Whether the reference behind an edge is anchored at the last step (``h[tau]``)."""
    if not isinstance(text, str) or "[" not in text:
        return False
    inside = text.split("[", 1)[1].lstrip()
    return inside.startswith(("tau", "τ")) or (inside.startswith("T") and not inside[1:2].isalnum())


def recurrent(g: nx.MultiDiGraph, n) -> bool:
    """Whether ``n`` feeds itself across time (a self-loop with a delay, like ``h``)."""
    return any(d["delay"] != 0 for _, v, d in g.out_edges(n, data=True) if v == n)


def on_cycle(g: nx.MultiDiGraph) -> set:
    """The variables on a cycle of the folded graph: the recurrent state (h; h and o in fig. 10.4)."""
    out = set()
    for comp in nx.strongly_connected_components(nx.DiGraph(g)):
        if len(comp) > 1 or any(g.has_edge(n, n) for n in comp):
            out |= comp
    return out


def rows(g: nx.MultiDiGraph) -> dict:
    """The book's row of each variable: inputs 0, then computed variables above what they read
    at the same step, targets of a loss at the top.  Two recurrent variables that would share
    a row (h and g of fig. 10.11) each get their own."""
    kind = {n: d["kind"] for n, d in g.nodes(data=True)}
    top_targets = {n for n in g if kind[n] == "target" and any(d["target"] for _, _, d in g.out_edges(n, data=True))}
    level = {n: 0 for n in g if kind[n] not in COMPUTED_KINDS and n not in top_targets}
    same_step = nx.DiGraph()
    same_step.add_nodes_from(n for n in g if kind[n] in COMPUTED_KINDS)
    same_step.add_edges_from((u, v) for u, v, d in g.edges(data=True)
                             if d["delay"] == 0 and not d["target"] and u != v and kind[v] in COMPUTED_KINDS
                             and kind[u] in COMPUTED_KINDS)
    order = list(g.nodes)
    try:
        topo = list(nx.lexicographical_topological_sort(same_step, key=order.index))
    except nx.NetworkXUnfeasible:  # an algebraic loop (only in a hand-made graph): keep the given order
        topo = [n for n in order if n in same_step]
    for v in topo:
        preds = [level.get(u, 0) for u, _, d in g.in_edges(v, data=True)
                 if d["delay"] == 0 and not d["target"] and u != v and u in level]
        level[v] = max([1] + [p + 1 for p in preds])
    top = max(level.values(), default=0) + 1
    for n in top_targets:
        level[n] = top
    # split a level so that each recurrent variable has a row of its own
    out, row = {}, 0
    for lev in sorted(set(level.values())):
        members = [n for n in order if level[n] == lev]
        loops = [n for n in members if recurrent(g, n)]
        groups = [[n] for n in loops] if len(loops) > 1 else []
        rest = [n for n in members if not groups or n not in loops]
        if rest:
            groups.insert(0, rest) if not loops or len(loops) == 1 else groups.append(rest)
        for group in groups:
            for n in group:
                out[n] = row
            row += 1
    return out


def split_offsets(g: nx.MultiDiGraph) -> dict:
    """Recurrent variables that :func:`rows` moved to a row of their own (g of fig. 10.11), each with
    how far (in columns) its circles move right so that an edge from below can pass the row between."""
    kind = {n: d["kind"] for n, d in g.nodes(data=True)}
    r = rows(g)
    out = {}
    for n in g:
        if kind[n] in COMPUTED_KINDS and recurrent(g, n):
            below = [m for m in g if r[m] < r[n] and recurrent(g, m) and kind[m] in COMPUTED_KINDS
                     and any(r[u] < r[m] for u, _, d in g.in_edges(n, data=True) if d["delay"] == 0)]
            if below:
                out[n] = 0.6 * len(below)
    return out


def folded_scene(source, mode: str = "teacher", scene: Scene | None = None, col: int = 0, panel: int = 0,
                 contract_fed: bool = True, drop=()) -> Scene:
    """The folded drawing of ``source`` as a :class:`Scene` (see :func:`draw_folded`)."""
    g = variable_graph(source, mode, contract_fed, drop)
    scene = scene or Scene()
    row = rows(g)
    by_row: dict[int, list] = {}
    for n in g:
        by_row.setdefault(row[n], []).append(n)
    width = max((len(v) for v in by_row.values()), default=1)
    split = split_offsets(g)  # g of fig. 10.11 moves right so that x -> g can pass h
    if split:
        scene.layout = "pinned"  # dot would bend h's row around the edge x -> g (see scene._pinned)
    nodes = {}
    for r, members in by_row.items():
        start = col + (width - len(members)) // 2
        for i, n in enumerate(members):
            nodes[n] = scene.add("variable", name=str(n), kind=g.nodes[n]["kind"], row=r,
                                 col=start + i + split.get(n, 0.0), panel=panel)
    left: dict = {}
    right: dict = {}
    for u, v, d in g.edges(data=True):
        a, b = nodes[u], nodes[v]
        squares, via = delay_squares(scene, a, b, d["delay"], left, right)
        scene.connect(a, b, param=d["param"], delay=d["delay"], target=d["target"], context=d["context"],
                      squares=squares, via=via)
    # a loop through more than one square, or two loops on one circle, are drawn as nested triangles
    # (scene.loop_layout): dot would lay their squares in one row, with crossing curves
    loops: dict = {}
    for e in scene.edges:
        if e.src == e.dst and e.squares:
            loops.setdefault(e.dst, []).append(len(e.squares))
    if any(len(ks) > 1 or ks[0] > 1 for ks in loops.values()):
        scene.layout = "pinned"
    return scene


def delay_squares(scene: Scene, a, b, delay: int, left: dict, right: dict) -> tuple:
    """Place one black square per step of ``delay`` on the edge ``a -> b`` (a folded edge).

    A self-loop leaves ``h`` to the left, runs through its squares and comes back
    into ``h`` with the arrow (a bend point keeps the two ends apart, since dot
    draws two edges between the same two nodes as one bundle); an edge from
    another variable ends in squares beside its destination, to the right.
    Returns ``(squares, via)``: the squares' ids, and every node the edge is drawn through.
    """
    if not delay:
        return (), ()
    squares = []
    if a.id == b.id:
        # to the left, as printed; to the right for a circle moved right of its column (g of fig. 10.11)
        side = 1 if b.col % 1 else -1
        k = left[b.id] = left.get(b.id, 0) + 1
        for i in range(abs(delay)):
            squares.append(scene.add("delay", row=b.row, col=b.col + side * (0.6 - 0.02 * i + 0.1 * (k - 1)),
                                     panel=b.panel).id)
        bend = scene.add("arrow", kind="bend", row=b.row, col=b.col + side * (0.3 + 0.01 * k), panel=b.panel)
        return tuple(squares), (*squares, bend.id)
    k = right[b.id] = right.get(b.id, 0) + 1
    for i in range(abs(delay)):
        squares.append(scene.add("delay", row=b.row, col=b.col + 0.3 + 0.1 * k - 0.02 * i, panel=b.panel).id)
    return tuple(squares), tuple(squares)
