"""Export the engine's graph to networkx."""

from __future__ import annotations

import networkx as nx

from .autograd import topological_order
from .tensor import Tensor


def node_kind(t: Tensor) -> str:
    """'parameter' (a leaf that wants a gradient), 'constant' (any other leaf) or 'op'."""
    if t.op is None:
        return "parameter" if t.requires_grad else "constant"
    return "op"


def graph_of(*roots: Tensor) -> nx.MultiDiGraph:
    """The graph behind ``roots`` as a ``networkx.MultiDiGraph`` (a kind of ``DiGraph``).

    Nodes are the tensors' ``uid`` numbers with attributes ``op`` (the op's name,
    or ``"leaf"``), ``kind``, ``name``, ``shape``, ``dtype``, ``requires_grad`` and
    ``tensor`` (the object itself).  There is one edge per parent *slot*, from
    parent to child, keyed and labelled by the slot number, so ``x * x`` shows two
    edges from ``x``.

    >>> import graphrnn as gr
    >>> x = gr.Tensor(3.0, requires_grad=True, name="x")
    >>> g = gr.graph_of(x * x)
    >>> sorted(d["slot"] for _, _, d in g.edges(data=True))
    [0, 1]
    """
    g = nx.MultiDiGraph()
    for root in roots:
        for t in topological_order(root, only_grad=False):
            if t.uid in g:
                continue
            g.add_node(
                t.uid, op=t.op.name if t.op else "leaf", kind=node_kind(t), name=t.name,
                shape=tuple(t.shape), dtype=str(t.dtype), requires_grad=t.requires_grad, tensor=t,
            )
            for slot, parent in enumerate(t.parents):
                g.add_edge(parent.uid, t.uid, key=slot, slot=slot)
    return g
