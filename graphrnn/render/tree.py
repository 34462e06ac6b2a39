"""A recursive network drawn as fig. 10.14 draws it: a tree, bottom to top.

The inputs ``x^(1) .. x^(n)`` sit in the bottom row, each mapped (through V) into its
leaf circle; each internal circle sits above its two children, the left one coming in
through U and the right one through W; the root feeds ``o``, and ``o`` and ``y`` feed
``L`` at the top.  Each circle of the tree is named with the leaves it spans
(``h^(1..2)``); ``names=False`` leaves the tree's circles unnamed, as printed.

>>> import graphrnn as gr
>>> s = tree_scene(gr.zoo.load_tree("fig10_14"), ((1, 2), (3, 4)))
>>> sorted(c for c in s.connections() if c[1] == "h^(1..4)")
[('h^(1..2)', 'h^(1..4)', 'U', 0), ('h^(3..4)', 'h^(1..4)', 'W', 0)]
>>> s.find("x", "1").row < s.find("h", "1").row < s.find("h", "1..2").row < s.find("o").row < s.find("L").row
True
"""

from __future__ import annotations

import graphviz

from ..errors import RenderError
from .scene import Scene, to_digraph

#: more leaves than this are not drawn (the picture would be unreadable); the run has no such limit
MAX_DRAWN_LEAVES = 40
#: the book's example
BOOK_TREE = ((1, 2), (3, 4))


def tree_scene(rec, tree=BOOK_TREE, names: bool = True) -> Scene:
    """The :class:`~graphrnn.render.scene.Scene` of ``rec`` unrolled over ``tree`` (see :func:`draw_tree`)."""
    if not hasattr(rec, "unroll") or not hasattr(rec, "tree_of"):
        raise RenderError(f"draw_tree draws a recursive network (graphrnn.zoo.load_tree(...)), not a "
                          f"{type(rec).__name__}")
    t = rec.tree_of(tree)
    if t.n_leaves > MAX_DRAWN_LEAVES:
        raise RenderError(f"a tree of {t.n_leaves} leaves is too wide to draw readably (at most "
                          f"{MAX_DRAWN_LEAVES}); draw a subtree, or run it without drawing")
    g = rec.unroll(t)
    leaf_eqs = [eq.name for eq in rec.order("leaf")]
    node_eqs = [eq.name for eq in rec.order("node")]
    tree_vars = set(leaf_eqs) | set(node_eqs)
    height = {k: 0 for k in t.leaves}
    for k in t.internal:
        height[k] = 1 + max(height[c] for c in t.children[k])
    col = {k: float(i) for i, k in enumerate(t.leaves)}
    for k in t.internal:
        a, b = t.children[k]
        col[k] = (col[a] + col[b]) / 2

    def row_of(var, at):
        if at in t.leaf_input and height[at] == 0 and var in leaf_eqs:
            return 1 + leaf_eqs.index(var)
        return len(leaf_eqs) + (height[at] - 1) * len(node_eqs) + node_eqs.index(var) + 1

    scene = Scene(layout="pinned", spacing=(0.95, 1.0))
    nodes = {}
    top_tree = max([row_of(v, t.root) for v in (node_eqs if t.internal else leaf_eqs)])
    unnamed = not names and len(tree_vars) == 1
    for key, d in g.nodes(data=True):
        var, at, kind = d["var"], d["at"], d["kind"]
        if kind == "input":
            nodes[key] = scene.add("variable", name=var, sup=str(t.leaf_input[at]), kind="input", row=0,
                                   col=col[at])
        elif var in tree_vars and at != "root":
            node = scene.add("variable", name=var, sup=at, kind="computed", row=row_of(var, at), col=col[at])
            if unnamed:
                node.html = "<>"
                node.attrs["tooltip"] = f"{var}^({at})"
            nodes[key] = node
    # the root's variables above the tree, each one row above what it reads; targets beside
    level: dict = {}
    for eq in rec.order("root"):
        reads = [u for u in g.predecessors(eq.name) if u in level]
        level[eq.name] = 1 + max([level[u] for u in reads], default=0)
    root_col = col[t.root]
    targets = [n for n, d in g.nodes(data=True) if d["kind"] == "target"]
    for name, lev in level.items():
        srcs = [u for u in g.predecessors(name) if u in level or u in targets]
        c = root_col
        if any(u in targets for u in srcs):
            c = root_col + 0.5  # between what it reads and the target (L between o and y)
        nodes[name] = scene.add("variable", name=name, kind="loss" if name in rec.losses else "computed",
                                row=top_tree + lev, col=c)
    for i, name in enumerate(targets):
        reader = min((level[v] for v in g.successors(name) if v in level), default=2)
        nodes[name] = scene.add("variable", name=name, kind="target", row=top_tree + reader - 1,
                                col=root_col + 1 + i)
    for u, v, d in g.edges(data=True):
        edge = scene.connect(nodes[u], nodes[v], param=d.get("param"), target=bool(d.get("target")))
        # as printed: a left child's letter (U) outside, on the left; a right child's (W) on the right
        edge.data["label_side"] = -1 if d.get("side") == "left" or (
            nodes[u].col == nodes[v].col and nodes[u].row < nodes[v].row) else 1
    scene.info.update(leaves=t.n_leaves, depth=t.depth, tree=t.nested, parameters=rec.parameter_count)
    return scene


def draw_tree(rec, tree=BOOK_TREE, names: bool = True) -> graphviz.Digraph:
    """Fig. 10.14: ``rec`` (a :class:`~graphrnn.recurrence.tree.TreeRecurrence`) unrolled over ``tree``.

    ``tree``: nested pairs of leaf numbers (default the book's ``((1, 2), (3, 4))``) or a
    networkx tree; ``names=False`` draws the tree's circles unnamed, as printed (when the
    spec has a single tree variable).
    """
    return to_digraph(tree_scene(rec, tree, names), name=rec.name)


__all__ = ["draw_tree", "tree_scene", "BOOK_TREE"]
