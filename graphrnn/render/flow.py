"""How much gradient flows along each edge, for the gradient-path drawings.

The gradient an edge ``u -> v`` carries back is the vector-Jacobian product
``(∂v/∂u)ᵀ ∇_v`` — the contribution of that one use of ``u`` to ``∇_u``.  Its
norm, edge by edge, is what makes vanishing and exploding gradients visible:
along the chain ``h^(1) -> h^(2) -> ... -> h^(τ)`` each step multiplies by
``Wᵀ diag(1 − h²)`` (eq. 10.21 and §10.7).

Everything here uses the engine's own rules (each op's registered VJP), never
a formula of its own.  A :class:`~graphrnn.recurrence.unroll.Run` frees its
graph after back-propagating, so :func:`live` first replays the run's recorded
ops (same ops, same inputs, same order) into a fresh graph that can be walked.

>>> import graphrnn as gr
>>> rec = gr.load("fig10_3")
>>> run = rec.run(rec.random_inputs(4, batch=2, seed=0), params=rec.init_params(seed=0))
>>> f = variable_flow(run, "L")
>>> bool(abs(f.node_norm["h[1]"] - float((run.grads["h[1]"] ** 2).sum() ** 0.5)) < 1e-9)
True
>>> ("h[1]", "h[2]") in f.edge_norm and ("W^(2)", "h[2]") in f.edge_norm
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .. import engine as E
from ..engine.tensor import Tensor, apply
from ..errors import RenderError

_KEY = re.compile(r"^(?P<var>.+?)(?:\[(?P<t>-?\d+)\]|\^\((?P<c>-?\d+)\))$")


def parse_key(key: str):
    """``"h[3]"`` -> ``("h", 3, "step")``; ``"W^(3)"`` -> ``("W", 3, "copy")``; ``"W"`` -> ``("W", None, None)``."""
    m = _KEY.match(key)
    if not m:
        return key, None, None
    if m.group("t") is not None:
        return m.group("var"), int(m.group("t")), "step"
    return m.group("var"), int(m.group("c")), "copy"


@dataclass
class Live:
    """A run's graph, replayed so that it can be walked backwards again."""

    run: object
    root: Tensor  # the total loss
    tensors: dict  # "h[3]", "W", "W^(3)", "x[2]", "h[0]" -> the replayed tensor
    key_of: dict  # id(tensor) -> key

    def tensor(self, key: str) -> Tensor:
        key = normalize_key(key, self.tensors)
        return self.tensors[key]


def normalize_key(key: str, known) -> str:
    """Accept the book's spellings: ``h^(1)``, ``h(1)``, ``h[1]``; ``W[3]``, ``W^(3)``, ``W(3)``."""
    raw = str(key).strip()
    if raw in known:
        return raw
    m = re.match(r"^(.+?)\s*(?:\^?\(\s*(-?\d+)\s*\)|\[\s*(-?\d+)\s*\])$", raw)
    if m:
        name, t = m.group(1), m.group(2) or m.group(3)
        for candidate in (f"{name}[{t}]", f"{name}^({t})"):
            if candidate in known:
                return candidate
    sample = ", ".join(sorted(known, key=_sort_key)[:12])
    hint = ""
    if any(re.search(r"\[\d+\.\.\d+\]$", k) for k in known):
        hint = ("; this run took the fast path (copies=False), which computes some variables for many steps "
                "at once, so it has no per-step nodes to draw: run with copies=True (the default)")
    raise RenderError(f"no node {raw!r} in this run; nodes are named like {sample}, ...{hint}")


def _sort_key(k):
    var, t, what = parse_key(k)
    return (what or "", var, t if t is not None else -1)


def live(run) -> Live:
    """Replay ``run``'s recorded ops into a fresh graph (``run()`` frees its own after backward)."""
    if getattr(run, "loss_tensor", None) is None and getattr(run, "program", None) is not None:
        raise RenderError("this run took the compiled fast path (copies=False), which keeps no engine graph to "
                          "draw: run with copies=True (the default)")
    if getattr(run, "loss_tensor", None) is None:
        raise RenderError(f"{getattr(run.rec, 'name', 'this recurrence')} has no loss, so there is no gradient to "
                          f"draw; add `loss L` with a per-step loss such as L[t] = cross_entropy(o[t], y[t])")
    old = E.topological_order(run.loss_tensor, only_grad=False)
    new: dict[int, Tensor] = {}
    with E.enable_grad():
        for t in old:
            if t.op is None:
                n = Tensor(t.data, requires_grad=t.requires_grad, name=t.name)
            else:
                n = apply(t.op, *[new[id(p)] for p in t.parents], **(t.attrs or {}))
                n.name = t.name
            new[id(t)] = n
    tensors = {}
    for key, t in run.tensors.items():
        if id(t) in new:
            tensors[key] = new[id(t)]
    for t in old:  # data and initial values are named leaves ("x[2]", "h[0]")
        if t.op is None and t.name and t.name not in tensors:
            tensors[t.name] = new[id(t)]
    key_of = {}
    for key, t in tensors.items():
        key_of.setdefault(id(t), key)
    return Live(run, new[id(run.loss_tensor)], tensors, key_of)


def reverse_walk(root: Tensor, seed=None, stop: frozenset = frozenset()):
    """Walk back from ``root`` applying each op's VJP; do not go past the tensors in ``stop`` (ids).

    Returns ``(grads, edges)``: the gradient reaching each tensor (by id), and the
    norm of the gradient each edge carries back, keyed ``(id(parent), id(child), slot)``.
    """
    if not root.requires_grad:
        return {}, {}
    nodes, seen, stack = [root], {id(root)}, [root]
    while stack:
        n = stack.pop()
        if n is not root and id(n) in stop:
            continue
        for p in n.parents:
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                nodes.append(p)
                stack.append(p)
    nodes.sort(key=lambda n: n.uid)
    if seed is None:
        seed = np.ones_like(root.data)
    grads = {id(root): np.asarray(seed, dtype=root.data.dtype)}
    edges = {}
    for n in reversed(nodes):
        g = grads.get(id(n))
        if g is None or n.op is None or (n is not root and id(n) in stop):
            continue
        parents = n.parents
        need = tuple(p.requires_grad for p in parents)
        pgrads = n.op.vjp(g, n.data, tuple(p.data for p in parents), need, n.saved, n.attrs)
        for slot, (p, pg, wanted) in enumerate(zip(parents, pgrads, need)):
            if not wanted or pg is None:
                continue
            pg = np.asarray(pg)
            if pg.shape != p.data.shape:
                pg = E.unbroadcast(pg, p.data.shape)
            edges[(id(p), id(n), slot)] = float(np.linalg.norm(pg))
            acc = grads.get(id(p))
            grads[id(p)] = pg if acc is None else acc + pg
    return grads, edges


@dataclass
class VariableFlow:
    """Gradient norms at the variable level for one source (the loss, or one L^(t)).

    ``node_norm["h[3]"]`` is ‖∂source/∂h^(3)‖; ``edge_norm[("h[2]", "h[3]")]`` the
    norm of what the use of h^(2) in h^(3) passes back; dummy copies appear as
    ``("W^(3)", "h[3]")`` and ``("W", "W^(3)")``.
    """

    source: str
    live: Live
    node_norm: dict = field(default_factory=dict)
    edge_norm: dict = field(default_factory=dict)
    grads: dict = field(default_factory=dict)  # key -> gradient array

    def path(self, target: str) -> tuple[set, set]:
        """Nodes and edges on some path from ``target`` forward to the source."""
        target = normalize_key(target, self.live.tensors)
        succ: dict = {}
        pred: dict = {}
        for a, b in self.edge_norm:
            succ.setdefault(a, set()).add(b)
            pred.setdefault(b, set()).add(a)
        down = reachable(target, succ)
        up = reachable(self.source_key, pred)
        nodes = down & up
        edges = {(a, b) for (a, b) in self.edge_norm if a in nodes and b in nodes}
        return nodes, edges

    @property
    def source_key(self) -> str:
        return "L" if self.source == "L" else self.source


def reachable(start, nxt) -> set:
    """Every node reachable from ``start`` by following ``nxt`` (a dict of neighbour lists)."""
    seen, stack = {start}, [start]
    while stack:
        for m in nxt.get(stack.pop(), ()):
            if m not in seen:
                seen.add(m)
                stack.append(m)
    return seen


def source_tensor(lv: Live, source: str) -> tuple[str, Tensor]:
    """``"L"`` (the total loss) or a key such as ``"L[3]"``: the root of the walk."""
    if source in (None, "", "L") and "L" not in lv.tensors:
        return "L", lv.root
    key = normalize_key(source, lv.tensors)
    t = lv.tensors[key]
    if t.data.size != 1:
        raise RenderError(f"a gradient path starts at a single number (the loss L or one L[t]); {key} has shape "
                          f"{t.data.shape}")
    return key, t


def variable_flow(run, source: str = "L", lv: Live | None = None) -> VariableFlow:
    """The :class:`VariableFlow` of ``run`` for ``source`` (``"L"`` or e.g. ``"L[3]"``)."""
    lv = lv or live(run)
    key, root = source_tensor(lv, source)
    grads, _ = reverse_walk(root)
    flow = VariableFlow(key, lv)
    stops = frozenset(lv.key_of)
    for tid, k in lv.key_of.items():
        g = grads.get(tid)
        if g is None:
            continue
        flow.grads[k] = g
        flow.node_norm[k] = float(np.linalg.norm(g))
    if key == "L" and "L" not in lv.tensors:
        flow.node_norm["L"] = 1.0
    for k, g in list(flow.grads.items()):
        t = lv.tensors[k]
        if t.op is None:
            continue
        local, _ = reverse_walk(t, g, stops - {id(t)})
        for tid, contribution in local.items():
            if tid != id(t) and tid in lv.key_of:
                flow.edge_norm[(lv.key_of[tid], k)] = float(np.linalg.norm(contribution))
    if key == "L" and "L" not in lv.tensors:  # the total is the sum of the L^(t)
        for k, g in flow.grads.items():
            var, t, what = parse_key(k)
            if what == "step" and var in getattr(run.rec, "losses", ()):
                flow.edge_norm[(k, "L")] = float(np.linalg.norm(g))
    return flow


@dataclass
class OpFlow:
    """Gradient at the op level: per tensor (by uid) and per edge ``(parent uid, child uid, slot)``."""

    root: Tensor
    node_grad: dict
    edge_norm: dict


def op_flow(root: Tensor, seed=None) -> OpFlow:
    grads, edges = reverse_walk(root, seed)
    by_uid = {}
    ids = {}
    for n in E.topological_order(root, only_grad=False):
        ids[id(n)] = n.uid
        if id(n) in grads:
            by_uid[n.uid] = grads[id(n)]
    return OpFlow(root, by_uid, {(ids[a], ids[b], s): v for (a, b, s), v in edges.items()})
