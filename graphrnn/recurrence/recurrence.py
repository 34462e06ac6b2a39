"""A :class:`Recurrence`: a checked spec, kept as the book's folded graph (§10.1).

The folded graph is a ``networkx.MultiDiGraph`` over the variables; each edge
``u -> v`` is one use of ``u`` in ``v``'s equation and carries its ``delay``
(1 for ``h[t-1]``, 0 for the same step, -1 for ``g[t+1]``) and the parameter it
passes through (``W`` in ``W @ h[t-1]``), if any.  A recurrence is valid when
every cycle of that graph crosses a delay: a cycle whose delays add up to zero is
an algebraic loop, a variable that would need its own value to compute itself.
"""

from __future__ import annotations

import math
import re
import warnings
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

import networkx as nx
import numpy as np

from ..errors import NameWarning, SpecError, UnusedWarning
from .shapes import Shape, ShapeInference
from .spec import (
    LOSSES, Bin, Call, Equation, Name, Ref, Transpose, Unary, enclosing_params, parse_spec, read_spec_file,
    references, walk,
)

MODES = ("teacher", "free", "scheduled")


@dataclass
class Variable:
    """One per-step variable (or context input) of a recurrence.

    ``kind`` is ``"input"``, ``"target"``, ``"context"`` (one vector for the whole
    sequence), ``"computed"`` (defined by an equation) or ``"fed"`` (free-running
    mode's stand-in for a target fed back as input).  ``shape`` uses ``"B"`` for
    the batch: ``(n, "B")`` columns, ``("B",)`` class labels, ``()`` numbers.
    """

    name: str
    kind: str
    shape: tuple
    classes: int | None = None
    anchor: str | None = None  # "t", "tau" (last step only) or None (data)
    init: str | None = None  # value outside the steps: "zero", "learned" or None (an error)
    line: int | None = None
    feedback_of: str | None = None

    @property
    def rows(self) -> int | None:
        return self.shape[0] if len(self.shape) == 2 else None

    @property
    def is_label(self) -> bool:
        return self.classes is not None

    @property
    def is_loss_like(self) -> bool:
        return self.shape == ()


def _rename_inputs(expr, renames: dict[str, str]):
    """``expr`` with input uses (not loss targets) of ``renames``' keys renamed."""
    if isinstance(expr, Ref):
        return replace(expr, name=renames[expr.name]) if expr.name in renames else expr
    if isinstance(expr, Call) and expr.fn in LOSSES:
        return replace(expr, args=(_rename_inputs(expr.args[0], renames), expr.args[1]))
    if isinstance(expr, Call):
        return replace(expr, args=tuple(_rename_inputs(a, renames) for a in expr.args))
    if isinstance(expr, Bin):
        return replace(expr, left=_rename_inputs(expr.left, renames), right=_rename_inputs(expr.right, renames))
    if isinstance(expr, Unary | Transpose):
        return replace(expr, operand=_rename_inputs(expr.operand, renames))
    return expr


def _step_text(anchor: str, offset: int) -> str:
    base = "tau" if anchor == "tau" else "t"
    return base if offset == 0 else f"{base}{offset:+d}"


def find_loop(eqs: dict[str, Equation], prefer: frozenset = frozenset()):
    """Look for an algebraic loop among equations ``eqs``: a cycle of the folded graph whose
    delays add up to zero, or a group of mutually dependent variables that runs both forwards
    and backwards in time (two of its cycles then combine into a loop of total delay zero).

    Returns ``None``, or ``(message, equation, variable)``: a message naming the cycle step by
    step and saying how to fix it, the equation where the loop closes, and a variable on it.
    An edge ``u -> v`` of delay ``d`` means that ``v[t]`` uses ``u[t-d]``.  A same-step cycle is
    named from a variable of ``prefer`` when it has one (free running's fed values: the fix is
    then to read the fed value one step earlier).
    """
    edges: dict[tuple[str, str], set[int]] = {}
    for name, eq in eqs.items():
        for ref in references(eq.expr):
            if ref.name in eqs:
                edges.setdefault((ref.name, name), set()).add(ref.delay)
    anchor = {name: eq.anchor for name, eq in eqs.items()}

    def walk_text(cycle: list[str], pick) -> tuple[str, int]:
        """``a[t] -> b[t+1] -> a[t]`` for the cycle ``[a, b, a]``; also the total delay."""
        parts, total = [f"{cycle[0]}[{_step_text(anchor[cycle[0]], 0)}]"], 0
        for u, v in zip(cycle, cycle[1:]):
            total += pick(edges[(u, v)])
            parts.append(f"{v}[{_step_text(anchor[v], total)}]")
        return _chain(parts), total

    # 1. a same-step cycle (the common mistake: h[t] = f(h[t]))
    cycle = _a_cycle(nx.DiGraph([uv for uv, ds in edges.items() if 0 in ds]), prefer)
    if cycle is not None:
        text, _ = walk_text(cycle, lambda ds: 0)
        return (f"{text} (total delay 0): each value needs itself at the same step; make one of these uses "
                f"read the previous step, e.g. `{cycle[0]}[{_step_text(anchor[cycle[0]], -1)}]` in the equation "
                f"of {cycle[1]}",
                cycle[1], cycle[0])

    # 2. per strongly connected group, the cycles must all go forwards, or all backwards, in time
    graph = nx.DiGraph(list(edges))
    for group in nx.strongly_connected_components(graph):
        if len(group) == 1 and not graph.has_edge(next(iter(group)), next(iter(group))):
            continue  # no cycle (and a subgraph view of each of thousands of variables costs time)
        sub = graph.subgraph(group)
        if sub.number_of_edges() == 0:
            continue
        n = len(group)
        found = {}
        for sign in (1, -1):
            # weight (n+1)*sign*d - 1 is negative on a simple cycle exactly when sign*(total delay) <= 0
            pick = min if sign == 1 else max
            weighted = {(u, v): (n + 1) * sign * pick(edges[(u, v)]) - 1 for u, v in sub.edges}
            cycle = _negative_cycle(sorted(group), weighted)
            if cycle is None:
                continue
            text, total = walk_text(cycle, pick)
            found[sign] = (cycle, text, total)
        if len(found) < 2:
            continue
        for sign in (1, -1):
            cycle, text, total = found[sign]
            if total == 0:
                return (f"{text} (the delays add up to 0): each value needs itself; change one of these steps so "
                        f"that the delays around the cycle do not cancel out", cycle[1], cycle[0])
        (fwd, fwd_text, _), (_, bwd_text, _) = found[-1], found[1]
        example = _unrolled_cycle(edges, group)
        example = f" (for example {example})" if example else ""
        return (f"{fwd_text} runs forwards in time but {bwd_text} runs backwards, and they depend on each other, "
                f"so some value needs itself{example}; variables that feed each other must all run in one "
                f"direction of time (use only [t-k] among them, or only [t+k])", fwd[1], fwd[0])
    return None


def _a_cycle(graph: nx.DiGraph, prefer=frozenset()) -> list | None:
    """A shortest cycle ``[a, b, ..., a]`` through the first node (in sorted order, those in
    ``prefer`` first) of the first cyclic strongly connected component, or ``None``; linear
    time (``nx.find_cycle`` is not on long chains)."""
    for comp in sorted(nx.strongly_connected_components(graph), key=lambda c: sorted(c)[0]):
        start = sorted(comp, key=lambda v: (v not in prefer, v))[0]
        if graph.has_edge(start, start):
            return [start, start]
        if len(comp) == 1:
            continue
        parent, queue = {start: None}, deque([start])
        while queue:
            u = queue.popleft()
            for w in sorted(graph.successors(u)):
                if w == start:
                    path = [u]
                    while parent[path[-1]] is not None:
                        path.append(parent[path[-1]])
                    return path[::-1] + [start]
                if w in comp and w not in parent:
                    parent[w] = u
                    queue.append(w)
    return None


def _negative_cycle(nodes: list, weights: dict) -> list | None:
    """A cycle ``[a, b, ..., a]`` of negative total weight (Bellman-Ford from a virtual source
    joined to every node), or ``None``."""
    dist = {v: 0 for v in nodes}
    pred: dict = {v: None for v in nodes}
    changed = None
    for _ in range(len(nodes)):
        changed = None
        for (u, v), w in weights.items():
            if dist[u] + w < dist[v]:
                dist[v], pred[v], changed = dist[u] + w, u, v
        if changed is None:
            return None
    v = changed
    for _ in range(len(nodes)):  # step back until inside the cycle
        v = pred[v]
    cycle, u = [v], pred[v]
    while u != v:
        cycle.append(u)
        u = pred[u]
    cycle.append(v)
    return cycle[::-1]


def _unrolled_cycle(edges, group, longest: int = 64) -> str | None:
    """A concrete cycle such as ``h[1] -> h[2] -> h[1]`` in the smallest unroll (up to
    ``longest`` steps) of the variables ``group`` where one appears."""
    for T in range(2, longest + 1):
        g = nx.DiGraph()
        for (u, v), ds in edges.items():
            if u in group and v in group:
                g.add_edges_from(((u, t - d), (v, t)) for d in ds for t in range(1, T + 1) if 1 <= t - d <= T)
        try:
            cycle = nx.find_cycle(g)
        except nx.NetworkXNoCycle:
            continue
        return _chain([f"{u}[{t}]" for (u, t), _ in cycle] + [f"{cycle[0][0][0]}[{cycle[0][0][1]}]"])
    return None


_CONFUSABLE = str.maketrans({"1": "l", "i": "l", "0": "o"})


def _canonical(name: str) -> str:
    """``name`` with case, doubled letters and look-alike characters (1/l/I, 0/O) ironed out."""
    lowered = name.lower()
    collapsed = "".join(c for i, c in enumerate(lowered) if not (c.isalpha() and i and lowered[i - 1] == c))
    return collapsed.translate(_CONFUSABLE)


def _near_duplicates(a: str, b: str) -> bool:
    """Whether parameter names ``a`` and ``b`` look like one name mistyped: a letter doubled (``bb``,
    ``Ww``), a look-alike character (``W1``/``Wl``, ``b0``/``bO``), a difference of case only (``Wx``/``WX``;
    not ``b``/``B``: one-letter names are the book's symbols, where case means something), or, for
    names of four characters or more, one character left out or added (``Wgate``/``Wgat``).  Names
    differing in a letter or digit that means something (``b``/``c``, ``W1``/``W2``, ``W1``/``W11``, ``W100``/``W1000``,
    ``Uf``/``Ui``, ``bias_f``/``bias_i``) are not.

    >>> [_near_duplicates(*p) for p in [("b", "bb"), ("W", "Ww"), ("W1", "Wl"), ("Wx", "WX"), ("b", "c"),
    ...                                   ("W1", "W2"), ("W1", "W11"), ("Uf", "Ui"), ("Wgate", "Wgat"), ("b", "bf")]]
    [True, True, True, True, False, False, False, False, True, False]
    """
    if a == b or len(a) == len(b) == 1:  # b and B, w and W: two symbols, as in the book's math
        return False
    if _canonical(a) == _canonical(b):
        return True
    short, long_ = sorted((a, b), key=len)
    return len(long_) - len(short) == 1 and len(short) >= 4 and short in _one_left_out(long_)


def _one_left_out(name: str) -> set[str]:
    """``name`` with one of its characters left out, not a digit (``W100`` beside ``W1000`` is numbering)."""
    return {name[:i] + name[i + 1:] for i, c in enumerate(name) if not c.isdigit()}


def _near_duplicate_pairs(names: list[str]):
    """The pairs of ``names`` that :func:`_near_duplicates` finds, in time about linear in their number."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(_canonical(name), []).append(name)
    pairs = [(a, b) for group in groups.values() for i, a in enumerate(group) for b in group[i + 1:]
             if not len(a) == len(b) == 1]
    present = set(names)
    for long_ in names:  # one character left out: the names it leaves, looked up
        if len(long_) >= 5:
            pairs += [(short, long_) for short in sorted(_one_left_out(long_))
                      if short in present and _canonical(short) != _canonical(long_)]
    return pairs


def _chain(parts: list[str], most: int = 12) -> str:
    """``a -> b -> c``, with the middle of a long chain left out."""
    if len(parts) > most:
        parts = parts[: most // 2] + [f"... ({len(parts) - most + 1} more) ..."] + parts[-(most // 2 - 1):]
    return " -> ".join(parts)


def _dependency_order(equations: list[Equation], feedbacks: list[Equation]) -> list[Equation]:
    """The equations and feedbacks, each after the equations it reads (mutually recurrent ones as
    written), so that shape inference needs about one pass however the spec orders them."""
    eqs = equations + feedbacks
    index = {eq.name: i for i, eq in enumerate(equations)}
    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(eqs)))
    for i, eq in enumerate(eqs):
        for ref in references(eq.expr):
            j = index.get(ref.name)
            if j is not None and j != i:
                graph.add_edge(j, i)
    cond = nx.condensation(graph)
    order = nx.lexicographical_topological_sort(cond, key=lambda c: min(cond.nodes[c]["members"]))
    return [eqs[i] for c in order for i in sorted(cond.nodes[c]["members"])]


class Recurrence:
    """A recurrence in the book's notation, parsed, shape-checked and folded.

    >>> import graphrnn as gr
    >>> rec = gr.Recurrence('''
    ... size H = 4
    ... input x: 3
    ... target y: class 2
    ... state h: H
    ... h[t] = tanh(b + W @ h[t-1] + U @ x[t])
    ... o[t] = c + V @ h[t]
    ... L[t] = cross_entropy(o[t], y[t])
    ... ''')
    >>> rec.param_shapes
    {'b': (4, 1), 'W': (4, 4), 'U': (4, 3), 'c': (2, 1), 'V': (2, 4)}
    >>> sorted((u, v, d["delay"], d["param"]) for u, v, d in rec.folded.edges(data=True))[:3]
    [('h', 'h', 1, 'W'), ('h', 'o', 0, 'V'), ('o', 'L', 0, None)]
    """

    def __init__(self, text: str, source: str | None = None, sizes: dict[str, int] | None = None,
                 name: str | None = None):
        self.spec = spec = parse_spec(text, source)
        self.source = source
        self.name = name or (Path(source).stem if source else "recurrence")
        self.text = text
        self.title = spec.title
        self.sizes = self._resolve_sizes(sizes or {})
        self.equations: dict[str, Equation] = {eq.name: eq for eq in spec.equations}
        self._check_names()
        self._check_loops(self.equations, "teacher")  # before shapes: a loop is the more basic error
        self.variables: dict[str, Variable] = {}
        self.param_shapes: dict[str, tuple[int, int]] = {}
        self._infer_shapes()
        self.losses = self._loss_names()
        self._mode_equations = {mode: self._equations_for(mode) for mode in MODES}
        for mode in MODES[1:]:
            self._check_loops(self._mode_equations[mode], mode)
        self.folded = self.folded_graph("teacher")
        self._warn_unused()
        self._warn_names()

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_file(cls, path, sizes=None) -> "Recurrence":
        path = Path(path)
        return cls(read_spec_file(path), source=str(path), sizes=sizes, name=path.stem)

    # ------------------------------------------------------------------ checks
    def _error(self, message, line=None, col=None, variable=None):
        return SpecError(message, line, col, variable=variable, source=self.source)

    def _resolve_sizes(self, overrides: dict) -> dict[str, int]:
        sizes = dict(self.spec.sizes)
        for key, value in overrides.items():
            if key not in sizes:
                known = ", ".join(sizes) or "none"
                raise self._error(f"unknown size {key!r} (the spec's sizes: {known})", variable=key)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not 1 <= value <= 1_000_000:
                raise self._error(f"size {key} must be a whole number from 1 to 1,000,000, not {value!r}",
                                  variable=key)
            sizes[key] = int(value)
        return sizes

    def _size(self, value, line, name) -> int:
        if isinstance(value, int):
            return value
        if value not in self.sizes:
            raise self._error(f"size {value!r} of {name} is not declared; add `size {value} = ...`",
                              line, variable=name)
        return self.sizes[value]

    def _check_names(self) -> None:
        spec = self.spec
        data = set(spec.inputs) | set(spec.targets)
        indexed: dict[str, Ref] = {}
        bare: dict[str, Name] = {}
        for eq in spec.equations + list(spec.feedbacks.values()):
            for node in walk(eq.expr):
                if isinstance(node, Ref):
                    indexed.setdefault(node.name, node)
                    if node.name not in self.equations and node.name not in data:
                        raise self._error(
                            f"{node.name!r} is used in `{node.text}` but no equation defines it and it is not "
                            f"declared; declare it as data (`input {node.name}: SIZE` or `target {node.name}: "
                            f"class K`) or write an equation `{node.name}[t] = ...`",
                            node.line, node.col, node.name)
                    if eq.anchor == "t" and node.anchor == "tau":
                        raise self._error(f"`{node.text}`: an equation for every step t cannot use the last step "
                                          f"tau; define {eq.name} at [tau] too", node.line, node.col, node.name)
                    if eq.anchor == "tau" and node.anchor == "t":
                        raise self._error(f"`{node.text}`: in an equation for the last step, write {node.name}[tau] "
                                          f"(or tau-1, ...), not t", node.line, node.col, node.name)
                    target = self.equations.get(node.name)
                    if target is not None and target.anchor == "tau" and eq.anchor == "t":
                        raise self._error(f"{node.name} is defined only at the last step (line {target.line}); "
                                          f"it cannot be used at every step", node.line, node.col, node.name)
                elif isinstance(node, Name):
                    bare.setdefault(node.name, node)
        for name, node in bare.items():
            if name in spec.sizes and name not in spec.contexts:
                raise self._error(f"{name!r} is a size (from a `size` line), not a value; an equation cannot use it "
                                  f"(a bare name in an equation is a parameter: rename it, or write the number)",
                                  node.line, node.col, name)
            if name in indexed or name in self.equations or name in spec.inputs or name in spec.targets:
                raise self._error(f"{name!r} is a per-step variable but appears here without a step; write "
                                  f"{name}[t] (bare names are parameters)", node.line, node.col, name)
        for name in spec.states:
            if name not in self.equations:
                raise self._error(f"state {name!r} is declared but no equation defines it; write `{name}[t] = ...`",
                                  spec.state_lines.get(name), variable=name)
        for name, (_, line) in spec.inits.items():
            if name not in self.equations and name not in data:
                raise self._error(f"`init {name}` names no variable of the spec", line, variable=name)
        for name, eq in spec.feedbacks.items():
            if name not in spec.targets and name not in spec.inputs:
                raise self._error(f"feedback {name!r}: only a target or input can be replaced by the model's "
                                  f"output", eq.line, variable=name)
        for name in spec.contexts:
            if name not in bare:
                raise self._error(f"context {name!r} is declared but never used", spec.lines[name], variable=name)
        self._bare = bare

    def _infer_shapes(self) -> None:
        spec = self.spec
        inf = ShapeInference(self.source)
        shapes: dict[str, Shape] = {}
        for name, size in spec.inputs.items():
            shapes[name] = inf.column(self._size(size, spec.lines[name], name))
        for name, size in spec.contexts.items():
            shapes[name] = inf.column(self._size(size, spec.lines[name], name))
        for name, (kind, size) in spec.targets.items():
            n = self._size(size, spec.lines[name], name)
            shapes[name] = inf.label(n) if kind == "class" else inf.column(n)
        for name, size in spec.states.items():
            shapes[name] = inf.column(self._size(size, spec.lines.get(name), name))
        for name, shape in spec.params.items():
            inf.param(name, tuple(self._size(d, spec.lines[name], name) for d in shape))

        class Defer(Exception):
            pass

        def lookup(node):
            if isinstance(node, Name):
                return shapes[node.name] if node.name in spec.contexts else inf.param(node.name)
            if node.name not in shapes:
                raise Defer(node.name)
            return shapes[node.name]

        feedbacks = list(spec.feedbacks.values())
        for eq in spec.equations + feedbacks:  # parameters in the order the spec first uses them
            for node in walk(eq.expr):
                if isinstance(node, Name) and node.name not in spec.contexts:
                    inf.param(node.name)
        pending = _dependency_order(spec.equations, feedbacks)
        while pending:
            progress, waiting = False, []
            for eq in pending:
                what = "in the feedback for" if eq in feedbacks else "in the equation of"
                try:
                    shape = inf.infer(eq.expr, lookup)
                except Defer:
                    waiting.append(eq)
                    continue
                except SpecError as exc:  # name the equation as well as the part that does not fit
                    raise self._error(f"{what} {eq.name}: {exc.message}", exc.line, exc.col,
                                      exc.variable or eq.name) from None
                progress = True
                if eq.name in shapes:
                    before, after = inf.show(shapes[eq.name]), inf.show(shape)
                    try:
                        inf.unify_shapes(eq.expr, shapes[eq.name], shape, "")
                    except SpecError:
                        origin = ("declared" if eq.name in spec.states or eq.name in spec.inputs
                                  or eq.name in spec.targets else "used elsewhere")
                        raise self._error(
                            f"{what} {eq.name}: the right side `{eq.expr.text}` has shape {after}, but {eq.name} is "
                            f"{origin} with shape {before}; change the declared size or map the right side "
                            f"through a matrix", eq.line, None, eq.name) from None
                else:
                    shapes[eq.name] = shape
            pending = waiting
            if pending and not progress:
                # a cycle of not-yet-shaped variables: guess each one read by another is a column and let
                # unification decide (not the others: a loss L[t] is a number, found once the rest is)
                read = {r.name for eq in pending for r in references(eq.expr)}
                for eq in pending:
                    if eq.name in read or not read:
                        shapes.setdefault(eq.name, inf.column(None))
        for name, shape in inf.params.items():
            dims = inf.resolve(shape)
            if any(d is None for d in dims):
                which = "rows" if dims[0] is None else "columns"
                line = self._bare[name].line if name in self._bare else None
                like = next((p for p in inf.params if p != name and _near_duplicates(name, p)), None)
                raise self._error(
                    f"cannot infer the {which} of parameter {name!r} from the equations; declare its shape, "
                    f"e.g. `param {name}: {dims[0] or 'ROWS'} x {dims[1] or 'COLS'}`"
                    + (f" (or did you mean {like}?)" if like else ""), line, variable=name)
            self.param_shapes[name] = dims
        written = list(spec.inputs) + list(spec.contexts) + list(spec.targets) + list(spec.states) + [
            eq.name for eq in spec.equations]
        shapes = {name: shapes[name] for name in dict.fromkeys(written) if name in shapes}
        for name, shape in shapes.items():
            dims = inf.resolve(shape)
            if any(d is None for d in dims):
                eq = self.equations.get(name)
                raise self._error(f"cannot infer the size of {name!r}; declare it with `state {name}: SIZE`",
                                  eq.line if eq else None, variable=name)
            classes = inf.dims.get(shape.classes) if shape.is_label else None
            if name in spec.inputs:
                kind, anchor = "input", None
            elif name in spec.targets:
                kind, anchor = "target", None
            elif name in spec.contexts:
                kind, anchor = "context", None
            else:
                kind, anchor = "computed", self.equations[name].anchor
            init = spec.inits.get(name, (None,))[0]
            if kind == "computed" and init is None:
                init = "zero"
            if init == "learned" and (classes is not None or kind != "computed"):
                raise self._error(f"only a computed vector can have a learned initial value; {name!r} cannot",
                                  spec.inits[name][1], variable=name)
            line = self.equations[name].line if name in self.equations else spec.lines.get(name)
            self.variables[name] = Variable(name, kind, dims, classes, anchor, init, line)
        self._shapes = shapes

    def _loss_names(self) -> list[str]:
        names = self.spec.losses or (["L"] if "L" in self.equations else [])
        if not self.spec.losses and not names:
            used = {r.name for eq in self.spec.equations for r in references(eq.expr)}
            names = [n for n, v in self.variables.items()
                     if v.kind == "computed" and v.shape == () and n not in used]
        for name in names:
            var = self.variables.get(name)
            if var is None or var.kind != "computed":
                raise self._error(f"loss {name!r} is not a variable defined by an equation; write an equation "
                                  f"`{name}[t] = ...` (e.g. cross_entropy(o[t], y[t])) or name another variable",
                                  self.spec.loss_lines.get(name), variable=name)
            if var.shape != ():
                raise self._error(f"loss {name!r} must be one number per step (e.g. cross_entropy(...)), "
                                  f"but has shape {var.shape}", self.spec.loss_lines.get(name, var.line),
                                  variable=name)
        return names

    def _warn_unused(self) -> None:
        """Warn (:class:`UnusedWarning`) about variables no loss depends on, when the spec has a loss."""
        if not self.losses:
            return
        reach = set(self.losses)
        for mode in (("teacher", "free") if self.spec.feedbacks else ("teacher",)):
            graph = self.folded if mode == "teacher" else self.folded_graph(mode)
            for loss in self.losses:
                reach |= nx.ancestors(graph, loss)
        unused = [(n, v) for n, v in self.variables.items() if v.kind != "fed" and n not in reach]
        if not unused:
            return
        listed = ", ".join(f"{v.kind if v.kind != 'computed' else ''} {n}".strip()
                           + (f" (line {v.line})" if v.line else "") for n, v in unused)
        them = "it" if len(unused) == 1 else "them"
        warnings.warn(UnusedWarning(
            f"{self.name}: no loss ({', '.join(self.losses)}) depends on {listed}: computed or read for nothing, "
            f"and no gradient reaches {them}; use {them} in the equations of the loss, or remove {them}"),
            stacklevel=3)

    def _warn_names(self) -> None:
        """Warn (:class:`NameWarning`) about a parameter named like another: ``bb`` beside ``b``,
        ``Ww`` beside ``W``, ``W1`` beside ``Wl``, ``Wx`` beside ``WX``, ``Wgate`` beside ``Wgat``."""
        names = list(self.param_shapes)
        uses: dict[str, int] = {}
        for eq in list(self.spec.equations) + list(self.spec.feedbacks.values()):
            for node in walk(eq.expr):
                if isinstance(node, Name) and node.name in self.param_shapes:
                    uses[node.name] = uses.get(node.name, 0) + 1
        for a, b in _near_duplicate_pairs(names):
            # the likely typo: the one used less, else the longer (bb, Ww), else the one written later
            rank = {n: (uses.get(n, 0), -len(n), -names.index(n)) for n in (a, b)}
            odd, like = (a, b) if rank[a] < rank[b] else (b, a)
            node = self._bare.get(odd)
            line = self._bare[like].line if like in self._bare else None
            where = f" (line {node.line})" if node is not None else ""
            warnings.warn(NameWarning(
                f"{self.name}: parameter {odd!r}{where} is named like {like!r}"
                + (f" (line {line})" if line else "") + f": did you mean {like}? As written they are two "
                f"parameters, learned separately; if that is meant, give {odd} a more distinct name"),
                stacklevel=3)

    # ------------------------------------------------------------------ modes
    def fed_name(self, name: str) -> str:
        """The name of free-running mode's stand-in for target ``name`` fed back as input
        (the same in free-running and scheduled mode)."""
        for existing, var in getattr(self, "variables", {}).items():
            if var.kind == "fed" and var.feedback_of == name:
                return existing
        fed = f"{name}_fed"
        while fed in self.variables or fed in self.param_shapes:
            fed += "_"
        return fed

    def _equations_for(self, mode: str) -> dict[str, Equation]:
        eqs = dict(self.equations)
        if mode == "teacher" or not self.spec.feedbacks:
            return eqs
        renames = {name: self.fed_name(name) for name in self.spec.feedbacks}
        eqs = {n: replace(eq, expr=_rename_inputs(eq.expr, renames)) for n, eq in eqs.items()}
        for name, fb in self.spec.feedbacks.items():
            fed = renames[name]
            truth = Ref(fb.line, 1, f"{name}[t]", name, 0, "t")
            args = (fb.expr, truth) if mode == "scheduled" else (fb.expr,)
            eqs[fed] = Equation(fed, "t", Call(fb.line, 1, f"feed({fb.expr.text})", "feed", args), fb.line,
                                fb.text)
            var = self.variables[name]
            self.variables.setdefault(fed, Variable(fed, "fed", var.shape, var.classes, "t",
                                                    self.spec.inits.get(name, ("zero",))[0] or "zero",
                                                    fb.line, feedback_of=name))
        return eqs

    def mode_equations(self, mode: str = "teacher") -> dict[str, Equation]:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        return self._mode_equations[mode]

    # ------------------------------------------------------------------ folded graph
    def folded_graph(self, mode: str = "teacher") -> nx.MultiDiGraph:
        """The folded graph for ``mode`` (``"teacher"`` is the spec as written)."""
        eqs = self.mode_equations(mode)
        g = nx.MultiDiGraph(name=self.name, mode=mode)
        used = {n for eq in eqs.values() for n in self._names_in(eq)} | set(eqs)
        for name, var in self.variables.items():
            if name in used:
                g.add_node(name, kind=self._role(name), shape=var.shape, classes=var.classes, anchor=var.anchor,
                           init=var.init, line=var.line, feedback_of=var.feedback_of)
        params = set(self.param_shapes)
        for name, eq in eqs.items():
            for node, param, target in enclosing_params(eq.expr, params):
                delay = node.delay if isinstance(node, Ref) else 0
                g.add_edge(node.name, name, delay=delay, param=param, text=node.text, line=eq.line,
                           target=target, context=isinstance(node, Name))
        return g

    def _names_in(self, eq):
        for node in walk(eq.expr):
            if isinstance(node, Ref) or (isinstance(node, Name) and node.name in self.spec.contexts):
                yield node.name

    def _role(self, name: str) -> str:
        """The role a drawing gives a variable: input, context, target, loss, fed or computed."""
        var = self.variables[name]
        if var.kind != "computed":
            return var.kind
        return "loss" if name in self.losses else "computed"

    def _check_loops(self, eqs: dict[str, Equation], mode: str) -> None:
        """Raise a SpecError naming the cycle if the equations ``eqs`` hold an algebraic loop."""
        fed = {} if mode == "teacher" else {self.fed_name(name): fb for name, fb in self.spec.feedbacks.items()}
        found = find_loop(eqs, frozenset(fed))
        if found is None:
            return
        message, eq_name, variable = found
        for fed_name, fb in fed.items():  # free-running mode's stand-ins, under the names the user wrote
            message = re.sub(rf"(?<!\w){re.escape(fed_name)}\[", f"{fb.name}[", message)
        variable = fed[variable].name if variable in fed else variable
        eq = self.equations.get(eq_name)
        if eq is None and eq_name in fed:
            eq = fed[eq_name]
        where = ""
        if mode != "teacher":
            where = " in free-running mode (where " + ", ".join(
                f"{fb.name}[t] is replaced by `{fb.expr.text}`" for fb in fed.values()) + ")"
        raise self._error(f"algebraic loop{where}: {message}", eq.line if eq else None, variable=variable)

    # ------------------------------------------------------------------ descriptions
    @property
    def parameter_count(self) -> int:
        return sum(r * c for r, c in self.param_shapes.values()) + sum(
            v.rows for v in self.variables.values() if v.init == "learned" and v.kind == "computed")

    def learned_inits(self) -> dict[str, str]:
        """Variable -> name of the parameter holding its learned initial value."""
        out = {}
        for name, var in self.variables.items():
            if var.kind == "computed" and var.init == "learned":
                pname = f"{name}0"
                while pname in self.param_shapes or pname in self.variables:
                    pname += "_"
                out[name] = pname
        return out

    def all_param_shapes(self) -> dict[str, tuple[int, int]]:
        """Shapes of every parameter, the learned initial states included."""
        shapes = dict(self.param_shapes)
        for var, pname in self.learned_inits().items():
            shapes[pname] = (self.variables[var].rows, 1)
        return shapes

    def describe(self) -> str:
        """A readable summary: equations, declarations, shapes, parameter count and folded edges."""
        lines = [f"{self.name}: {self.title}" if self.title else self.name, "", "equations:"]
        lines += [f"  {eq.text}" for eq in self.spec.equations]
        if self.spec.feedbacks:
            lines += ["", "fed back in free-running mode:"] + [f"  {eq.text}" for eq in self.spec.feedbacks.values()]
        lines += ["", "variables:"]
        for name, var in self.variables.items():
            if var.kind == "fed":
                continue
            shape = "class label" + f" (of {var.classes})" if var.is_label else (
                "number per step" if var.shape == () else f"{var.rows} x B")
            extra = f", outside the steps: {var.init}" if var.kind == "computed" and self._needs_init(name) else ""
            extra += ", loss" if name in self.losses else ""
            when = " (last step only)" if var.anchor == "tau" else ""
            lines.append(f"  {name:<10} {var.kind:<9} {shape}{when}{extra}")
        lines += ["", "parameters:"]
        for name, (r, c) in self.all_param_shapes().items():
            lines.append(f"  {name:<10} {r} x {c}")
        lines.append(f"  total: {self.parameter_count} numbers, the same at every step")
        lines += ["", "folded graph edges (delay 1 = the black square):"]
        for u, v, d in self.folded.edges(data=True):
            via = f" via {d['param']}" if d["param"] else ""
            lines.append(f"  {u} -> {v}  delay {d['delay']}{via}")
        return "\n".join(lines)

    def _needs_init(self, name: str) -> bool:
        """Whether ``name``'s value outside the steps is ever read: it is read at another step (``h[t-1]``,
        ``g[t+1]``), or its initial value is learned.  A variable that only reads others at other steps
        (an LSTM's gate f[t] reads h[t-1]) needs theirs, not its own."""
        return self.variables[name].init == "learned" or any(
            d["delay"] != 0 for _, _, d in self.folded.out_edges(name, data=True))

    def __repr__(self):
        return f"<Recurrence {self.name}: {', '.join(eq.name for eq in self.spec.equations)}>"

    # ------------------------------------------------------------------ unrolling (see unroll.py)
    def unroll(self, T: int, mode: str = "teacher"):
        """The time-unfolded DAG of ``T`` steps (an :class:`~graphrnn.recurrence.unroll.Unrolled`)."""
        from .unroll import Unrolled

        return Unrolled.build(self, T, mode)

    def run(self, inputs, params=None, T=None, mode="teacher", **options):
        """Unroll, evaluate on ``inputs`` and back-propagate; see :func:`graphrnn.runtime.run`
        (the runtime's one entry point), which documents every option.  A spec without a loss runs
        forward only (``backward=False`` asks for that on any spec); ``lengths=[5, 3, ...]`` runs
        sequences of different lengths in one batch (docs/lengths.md)."""
        return _runtime().run(self, inputs, params=params, T=T, mode=mode, **options)

    def release_buffers(self) -> int:
        """Drop the compiled programs of the fast path and the buffers they keep for the next run
        (a long run's can be large); returns the bytes released.  They are rebuilt when needed."""
        return _runtime().release_buffers(self)

    def init_params(self, seed: int = 0, dtype=np.float64) -> dict[str, np.ndarray]:
        """Random parameters: matrices ~ N(0, 1/cols), columns (biases, learned states) ~ N(0, 0.1²)."""
        rng = np.random.default_rng(seed)
        out = {}
        for name, (r, c) in self.all_param_shapes().items():
            scale = 0.1 if c == 1 else 1.0 / math.sqrt(c)
            out[name] = (rng.standard_normal((r, c)) * scale).astype(dtype)
        return out

    def steps_needed(self, name: str, T: int) -> tuple[int, int]:
        """The first and last step at which data variable ``name`` is read in a ``T``-step unroll."""
        lo, hi = None, None
        for eq in self.equations.values():
            for ref in references(eq.expr):
                if ref.name != name:
                    continue
                steps = (1 + ref.offset, T + ref.offset) if eq.anchor == "t" else (T + ref.offset, T + ref.offset)
                if ref.anchor == "tau":
                    steps = (T + ref.offset, T + ref.offset)
                lo = steps[0] if lo is None else min(lo, steps[0])
                hi = steps[1] if hi is None else max(hi, steps[1])
        for fb_name, fb in self.spec.feedbacks.items():
            if fb_name == name:
                lo, hi = min(lo or 1, 1), max(hi or T, T)
        return (lo or 1, hi or T)

    def random_inputs(self, T: int, batch: int = 1, seed: int = 0, dtype=np.float64) -> dict[str, np.ndarray]:
        """Random data for every input, target and context, long enough for ``T`` steps."""
        rng = np.random.default_rng(seed)
        bce_targets = {node.args[1].name for eq in self.equations.values() for node in walk(eq.expr)
                       if isinstance(node, Call) and node.fn == "bce_with_logits" and isinstance(node.args[1], Ref)}
        out = {}
        for name, var in self.variables.items():
            if var.kind == "context":
                out[name] = rng.standard_normal((var.rows, batch)).astype(dtype)
            elif var.kind in ("input", "target"):
                n = max(self.steps_needed(name, T)[1], T)
                if var.is_label:
                    out[name] = rng.integers(0, var.classes, size=(n, batch))
                elif name in bce_targets:
                    out[name] = rng.integers(0, 2, size=(n, var.rows, batch)).astype(dtype)
                else:
                    out[name] = rng.standard_normal((n, var.rows, batch)).astype(dtype)
        return out

    def derive(self, mode: str = "teacher"):
        """The BPTT equations of this recurrence, derived symbolically (see :func:`graphrnn.derive`)."""
        from ..derive import derive

        return derive(self, mode=mode)


def _runtime():
    """The runtime package (:mod:`graphrnn.runtime`), imported when a recurrence is first run.

    This is the notation layer's one way into the runtime: the notation does not depend on
    how it is run, and the runtime imports the notation, not the other way round."""
    from .. import runtime

    return runtime
