"""Unrolling a recurrence in time (§10.1, fig. 10.2).

:meth:`Recurrence.unroll` gives an :class:`Unrolled`: a ``networkx.DiGraph``
whose nodes are per-step variables (``"h[3]"``), the initial/boundary values
(``"h[0]"``), the data (``"x[3]"``) and the shared parameters (``"W"``), with an
evaluation :attr:`~Unrolled.order` found by topological sort: each group of
mutually recurrent variables runs forwards in time when its delays are positive,
backwards when negative (a bidirectional RNN's ``g[t] = f(g[t+1], x[t])``), and
through a general topological sort when it mixes both.

The runtime (:mod:`graphrnn.runtime`) evaluates that order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np

from ..errors import SpecError
from .spec import Name, Ref, enclosing_params, references, walk

if TYPE_CHECKING:  # the notation's graph of a recurrence; unroll.py only reads it
    from .recurrence import Recurrence


def key(name: str, t: int) -> str:
    """The unrolled graph's name for ``name`` at step ``t``: ``"h[3]"``."""
    return f"{name}[{t}]"


# ------------------------------------------------------------------------------ the plan


def _in_range(rec: Recurrence, name: str, s: int, T: int) -> bool:
    return s == T if rec.variables[name].anchor == "tau" else 1 <= s <= T


def _source_step(ref: Ref, t: int, T: int) -> int:
    return (T if ref.anchor == "tau" else t) + ref.offset


class StepRange(Sequence):
    """The ``(variable, step)`` pairs of a block, step after step, made when read: a long
    unroll does not hold a tuple per step (100,000 steps of one variable would take 7 MB)."""

    __slots__ = ("members", "times")

    def __init__(self, members: list[str], times: range):
        self.members, self.times = list(members), times

    def __len__(self) -> int:
        return len(self.members) * len(self.times)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        m = len(self.members)
        return (self.members[i % m], self.times[i // m])

    def __iter__(self):
        members = self.members
        for t in self.times:
            for v in members:
                yield (v, t)

    def __reversed__(self):
        members = self.members[::-1]
        for t in reversed(self.times):
            for v in members:
                yield (v, t)

    def __eq__(self, other):
        return isinstance(other, Sequence) and list(self) == list(other)

    def __repr__(self):
        return f"StepRange({self.members}, {self.times})"


@dataclass
class Block:
    """A group of mutually recurrent variables (a strongly connected component of the
    folded graph), in dependency order; ``cyclic`` is false for a variable that no
    cycle passes through, which may therefore be computed for all steps at once."""

    members: list[str]
    cyclic: bool
    steps: list[tuple[str, int]]


def _check_T(T) -> None:
    if not isinstance(T, (int, np.integer)) or isinstance(T, bool) or T < 1:
        raise SpecError(f"the number of steps T must be a whole number of at least 1, not {T!r}")


def plan_blocks(eqs: dict, T: int) -> list[Block]:
    """The blocks of the equations ``eqs`` (name -> Equation) for a ``T``-step unroll."""
    _check_T(T)
    anchors = {name: eq.anchor for name, eq in eqs.items()}

    def in_range(name, s):
        return s == T if anchors[name] == "tau" else 1 <= s <= T

    rank = {name: i for i, name in enumerate(eqs)}
    dg = nx.DiGraph()
    dg.add_nodes_from(eqs)
    delays: dict[tuple[str, str], set[int]] = {}
    for name, eq in eqs.items():
        for ref in references(eq.expr):
            if ref.name in eqs:
                dg.add_edge(ref.name, name)
                delays.setdefault((ref.name, name), set()).add(ref.delay)
    cond = nx.condensation(dg)
    blocks = []
    for c in nx.lexicographical_topological_sort(cond, key=lambda c: min(rank[m] for m in cond.nodes[c]["members"])):
        members = cond.nodes[c]["members"]
        inner = {(u, v): ds for (u, v), ds in delays.items() if u in members and v in members}
        signs = {d for ds in inner.values() for d in ds}
        same_step = nx.DiGraph()
        same_step.add_nodes_from(members)
        same_step.add_edges_from(uv for uv, ds in inner.items() if 0 in ds)
        within = list(nx.lexicographical_topological_sort(same_step, key=rank.get))
        if all(d >= 0 for d in signs) or all(d <= 0 for d in signs):
            times = range(1, T + 1) if all(d >= 0 for d in signs) else range(T, 0, -1)
            if all(anchors[v] == "t" for v in within):
                steps = StepRange(within, times)
            else:
                steps = [(v, t) for t in times for v in within if in_range(v, t)]
        else:
            steps = _general_order(eqs, members, T, in_range)
        blocks.append(Block(within, bool(inner), steps))
    return blocks


def evaluation_order(rec: Recurrence, T: int, mode: str = "teacher") -> list[tuple[str, int]]:
    """(variable, step) pairs in an order where everything is computed before it is used."""
    return [vt for block in plan_blocks(rec.mode_equations(mode), T) for vt in block.steps]


def _general_order(eqs, members, T, in_range):
    g = nx.DiGraph()
    for v in members:
        for t in (range(T, T + 1) if eqs[v].anchor == "tau" else range(1, T + 1)):
            g.add_node((v, t))
            for ref in references(eqs[v].expr):
                s = _source_step(ref, t, T)
                if ref.name in members and in_range(ref.name, s):
                    g.add_edge((ref.name, s), (v, t))
    try:
        return list(nx.lexicographical_topological_sort(g, key=lambda n: (n[1], n[0])))
    except nx.NetworkXUnfeasible:
        cycle = nx.find_cycle(g)
        names = " -> ".join(key(*u) for u, _ in cycle) + " -> " + key(*cycle[0][0])
        raise SpecError(f"algebraic loop across steps: {names}; the delays of these equations cancel out, so "
                        f"each value needs itself", variable=cycle[0][0][0]) from None


# ------------------------------------------------------------------------------ the graph


class Unrolled(nx.DiGraph):
    """The time-unfolded DAG of a recurrence (a ``networkx.DiGraph``).

    Node attributes: ``var`` (the variable), ``t`` (the step; ``None`` for
    parameters and contexts) and ``kind`` (``computed``, ``loss``, ``fed``,
    ``input``, ``target``, ``context``, ``initial`` or ``parameter``).  Edges
    between variables carry ``delay`` and ``param`` as in the folded graph;
    edges from a parameter node mark where it is used.

    >>> import graphrnn as gr
    >>> un = gr.load("fig10_3").unroll(3)
    >>> un.order[:4]
    ['h[1]', 'h[2]', 'h[3]', 'o[1]']
    >>> un.nodes["h[2]"]["t"], sorted(un.predecessors("h[2]"))
    (2, ['U', 'W', 'b', 'h[1]', 'x[2]'])
    """

    rec: Recurrence
    T: int
    mode: str
    plan: list

    @classmethod
    def build(cls, rec: Recurrence, T: int, mode: str = "teacher") -> "Unrolled":
        plan = evaluation_order(rec, T, mode)
        g = cls(name=f"{rec.name} unrolled over {T} steps")
        g.rec, g.T, g.mode, g.plan = rec, T, mode, plan
        eqs = rec.mode_equations(mode)
        params = set(rec.param_shapes)
        inits = rec.learned_inits()
        for v, t in plan:
            here = key(v, t)
            g.add_node(here, var=v, t=t, kind=rec._role(v) if v in rec.equations else rec.variables[v].kind)
            for node, param, target in enclosing_params(eqs[v].expr, params):
                if isinstance(node, Name):
                    g.add_node(node.name, var=node.name, t=None, kind="context")
                    src = node.name
                else:
                    s = _source_step(node, t, T)
                    src = key(node.name, s)
                    var = rec.variables[node.name]
                    if src not in g:
                        if var.kind in ("input", "target"):
                            kind = var.kind
                        else:
                            kind = "computed" if _in_range(rec, node.name, s, T) else "initial"
                        g.add_node(src, var=node.name, t=s, kind=kind,
                                   learned=inits.get(node.name) if kind == "initial" else None)
                if g.has_edge(src, here):
                    g.edges[src, here]["params"] += (param,)
                else:
                    g.add_edge(src, here, delay=node.delay if isinstance(node, Ref) else 0, param=param,
                               params=(param,), target=target)
            for node in (n for n in _walk_names(eqs[v].expr) if n in params):
                g.add_node(node, var=node, t=None, kind="parameter")
                g.add_edge(node, here, kind="parameter")
        return g

    @property
    def order(self) -> list[str]:
        """Node names of the computed variables, in evaluation order."""
        return [key(v, t) for v, t in self.plan]

    def run(self, inputs, params=None, **options):
        """Evaluate this unrolled graph (``rec.run`` with this unroll's T and mode; see
        :func:`graphrnn.runtime.run`)."""
        return self.rec.run(inputs, params=params, T=self.T, mode=self.mode, **options)


def _walk_names(expr):
    seen = []
    for node in walk(expr):
        if isinstance(node, Name) and node.name not in seen:
            seen.append(node.name)
    return seen


