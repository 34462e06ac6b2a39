"""The unfolded drawing: one column per time step, the same labels on every step (§10.1).

Two ways to choose the steps shown:

* **symbolic** (``steps=None``), as the book prints it: columns ``t−1, t, t+1``
  with dashed continuations ``h^(...)`` at both ends; a variable defined only at
  the last step (fig. 10.5's ``o^(τ)``) adds a gap and a column ``τ``.
* **concrete** (``steps=T``): columns ``1 .. T`` with the initial values
  (``h^(0)``) drawn in grey.  A long unroll is drawn as a window: the first and
  last steps with a gap between them holding ``h^(...)`` and an ellipsis that
  says how many steps it stands for — the drawing of T = 10,000 is as small as
  that of T = 6.  With ``start``, a single window ``start .. start+K−1`` with
  continuations at whichever end is cut.

The drawing is built from the folded graph (never from a T-step unroll), so its
size and cost depend on the window only; for a small T it has exactly the
edges of ``rec.unroll(T)``.

>>> import graphrnn as gr
>>> s = unfolded_scene(gr.load("fig10_3"))
>>> ("h^(t−1)", "h^(t)", "W", 0) in s.connections()
True
>>> sorted(n.title for n in s.of_role("continuation"))
['h^(...)', 'h^(...)']
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import RenderError
from . import style
from .folded import COMPUTED_KINDS, rows, split_offsets, variable_graph
from .scene import Scene

#: a concrete unroll longer than this is drawn as a window by default
DEFAULT_FULL = 8
DEFAULT_WINDOW = 6


@dataclass
class Window:
    """Which steps a drawing shows, and what lies beyond them."""

    segments: list  # runs of consecutive steps shown, e.g. [[1, 2, 3], [9998, 9999, 10000]]
    lo: float  # the first step of the sequence (-inf: unbounded, as printed)
    hi: float  # the last step (T, or +inf)
    symbolic: bool
    center: int = 0  # the step labelled t (symbolic)
    tau: float | None = None  # the step labelled τ (symbolic, with last-step-only variables)

    @property
    def shown(self) -> list:
        return [s for seg in self.segments for s in seg]

    def label(self, s: int) -> str:
        if not self.symbolic:
            return str(s)
        if self.tau is not None and s >= self.tau:
            return style.step_text(s - int(self.tau), "τ")
        return style.step_text(s - self.center)

    def side(self, s: int) -> float:
        """The column key of the continuation standing for hidden step ``s``."""
        shown = self.shown
        if s < shown[0]:
            return shown[0] - 0.5
        if s > shown[-1]:
            return shown[-1] + 0.5
        for a, b in zip(self.segments, self.segments[1:]):
            if a[-1] < s < b[0]:
                return (a[-1] + b[0]) / 2
        raise AssertionError(f"step {s} is shown")

    def gaps(self) -> list:
        """``(key, first hidden step, last hidden step)`` for each gap between segments."""
        return [((a[-1] + b[0]) / 2, a[-1] + 1, b[0] - 1) for a, b in zip(self.segments, self.segments[1:])]


def plan_window(steps=None, window=None, start=None, has_tau: bool = False) -> Window:
    """The :class:`Window` for ``steps`` (None: symbolic), ``window`` K and ``start``.

    >>> plan_window(10_000).segments
    [[1, 2, 3], [9998, 9999, 10000]]
    >>> w = plan_window(None)
    >>> [w.label(s) for s in w.shown]
    ['t−1', 't', 't+1']
    """
    if window is not None and (not isinstance(window, int) or isinstance(window, bool) or window < 1):
        raise RenderError(f"the window must be a whole number of steps, at least 1; got {window!r}")
    if steps is None:
        if start is not None:
            raise RenderError("start= picks steps of a concrete unroll: give steps=T as well")
        k = window or (2 if has_tau else 3)
        shown = list(range(1, k + 1))
        center = k // 2 + 1 if k > 1 else 1
        if has_tau:
            tau = k + 2
            return Window([shown, [tau]], -math.inf, tau, True, center, tau)
        return Window([shown], -math.inf, math.inf, True, center)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise RenderError(f"the number of steps must be a whole number, at least 1; got {steps!r}")
    T = steps
    if start is not None:
        if not isinstance(start, int) or isinstance(start, bool) or not 1 <= start <= T:
            raise RenderError(f"start must be a step between 1 and {T}; got {start!r}")
        k = window or min(T - start + 1, DEFAULT_WINDOW)
        return Window([list(range(start, min(T, start + k - 1) + 1))], 1, T, False)
    k = window if window is not None else (T if T <= DEFAULT_FULL else DEFAULT_WINDOW)
    if k >= T:
        return Window([list(range(1, T + 1))], 1, T, False)
    if k < 2:
        raise RenderError(f"a window of {k} step cannot show both ends of {T} steps: use a window of 2 or "
                          f"more, or start= to show a single step")
    head = (k + 1) // 2
    tail = k - head
    return Window([list(range(1, head + 1)), list(range(T - tail + 1, T + 1))], 1, T, False)


@dataclass(frozen=True)
class Placement:
    """Where an unfolded drawing goes in a larger scene, and what it leaves out.

    ``col0`` and ``panel``: its first column and its panel (fig. 10.6 draws two side by
    side); ``continuations``: the dashed ``h^(...)`` at the cut ends; ``contract_fed``
    and ``drop``: as in :func:`~graphrnn.render.folded.variable_graph`.

    >>> Placement(panel=1, drop=("loss", "target")).continuations
    True
    """

    col0: int = 0
    panel: int = 0
    continuations: bool = True
    contract_fed: bool = True
    drop: tuple = ()


def unfolded_scene(source, steps=None, window=None, mode: str = "teacher", start=None, scene: Scene | None = None,
                   place: Placement | None = None) -> Scene:
    """The unfolded drawing of ``source`` as a :class:`Scene` (see :func:`draw_unfolded`).

    ``scene``: draw into this scene (beside a folded drawing, fig. 10.3) rather than a
    new one; ``place``: where in it, and what to leave out (:class:`Placement`).
    """
    place = place if place is not None else Placement()
    col0, panel, continuations = place.col0, place.panel, place.continuations
    g = variable_graph(source, mode, place.contract_fed, place.drop)
    scene = scene if scene is not None else Scene()
    kind = {n: d["kind"] for n, d in g.nodes(data=True)}
    anchor = {n: d["anchor"] for n, d in g.nodes(data=True)}
    has_tau = any(anchor[n] == "tau" for n in g if kind[n] in COMPUTED_KINDS)
    win = plan_window(steps, window, start, has_tau)
    row = rows(g)
    shown = set(win.shown)
    lo, hi = win.lo, win.hi

    def exists(var, s) -> bool:
        if kind[var] not in COMPUTED_KINDS:
            return True
        if not lo <= s <= hi:
            return False
        return anchor[var] != "tau" or s == hi

    def resolve(var, s):
        """The drawing's key for ``var`` at step ``s``: a step node, a boundary value or a continuation."""
        if kind[var] == "context":
            return ("context", var, None)
        if s in shown and exists(var, s):
            return ("step", var, s)
        if not lo <= s <= hi:
            return ("boundary", var, s)
        if not exists(var, s):
            return None
        return ("more", var, win.side(s))

    keys: dict = {}  # key -> column key (a float, ordered left to right)
    edges: list = []  # (src key, dst key, attrs)

    def want(key):
        if key is not None and key not in keys:
            keys[key] = key[2] if key[0] != "context" else None
        return key

    for s in win.shown:
        for v in g:
            if kind[v] in COMPUTED_KINDS and exists(v, s):
                want(("step", v, s))
    for s in win.shown:
        for v in list(g):
            if kind[v] not in COMPUTED_KINDS or not exists(v, s):
                continue
            for u, _, d in g.in_edges(v, data=True):
                src = (hi if d["tau"] and hi != math.inf else s) - d["delay"]
                if d.get("fed_of") and not lo <= src <= hi and d["fed_of"] in kind:
                    u = d["fed_of"]  # before the first output, what is fed is the target's start value (y^(0))
                key = resolve(u, src)
                if key is None:
                    continue
                edges.append((want(key), ("step", v, s), d))
    for key in [k for k in keys if k[0] == "step"]:
        _, u, s = key
        for _, v, d in g.out_edges(u, data=True):
            if d["tau"]:
                continue  # a last-step reference is drawn from its consumer's side
            dst = s + d["delay"]
            if dst in shown or not lo <= dst <= hi or not exists(v, dst):
                continue
            edges.append((key, want(("more", v, win.side(dst))), d))
    # a gap stands for whole steps: its continuations are fed by their inputs' continuations (fig. 10.5)
    gap_keys = {k for k, _, _ in win.gaps()}
    for key in [k for k in keys if k[0] == "more" and k[2] in gap_keys]:
        _, v, side = key
        for u, _, d in g.in_edges(v, data=True):
            if d["delay"] == 0 and kind[u] == "input":
                edges.append((want(("more", u, side)), key, d))
    # one context feeds every step, the ones beyond the drawing too: an arrow to each continuation of what it
    # feeds (fig. 10.9's dashed R arcs from x to both h^(...)).  dot keeps a node's out-edges in the order
    # written (ordering=out): the arc to the left end goes first, the others after the context's own
    first = win.shown[0]
    for key in [k for k in keys if k[0] == "more"]:
        _, v, side = key
        for u, _, d in g.in_edges(v, data=True):
            if kind[u] == "context" and u != v:
                edge = (want(("context", u, None)), key, d)
                edges.insert(0, edge) if side < first else edges.append(edge)
    if not continuations:
        keep = {k for k in keys if k[0] != "more"}
        edges = [e for e in edges if e[0] in keep and e[1] in keep]
        keys = {k: c for k, c in keys.items() if k in keep}

    # columns: every distinct column key, left to right
    order = sorted({c for c in keys.values() if c is not None} | (set() if win.symbolic else gap_keys))
    column = {c: col0 + i for i, c in enumerate(order)}
    step_cols = [column[s] for s in win.shown if s in column]
    middle = (step_cols[0] + step_cols[-1]) / 2 if step_cols else col0
    # a target read by a loss at another step sits between the two columns it joins (fig. 10.9's
    # y^(t), target of L^(t−1) and input of h^(t)), so the columns of h, o and L stay straight
    shift = {}
    for u, v, d in g.edges(data=True):
        if d["target"] and d["delay"] and kind[u] == "target":
            shift[u] = max(-0.5, min(0.5, -d["delay"] / 2))
    # a recurrent variable with a row of its own above another (g over h, fig. 10.11) moves right, so the
    # edges from below can pass; dot cannot keep the rows straight then, so positions are pinned
    split = split_offsets(g)
    if split:
        shift.update({v: -off for v, off in split.items()})
        scene.layout = "pinned"
    nodes = {}
    for key, c in keys.items():
        what, var, s = key
        name = str(var)
        if what == "context":
            node = scene.add("variable", name=name, kind="context", row=row[var], col=middle, panel=panel)
        elif what == "more":
            node = scene.add("continuation", name=name, sup=style.ELLIPSIS, kind=kind[var], row=row[var],
                             col=column[c] - shift.get(var, 0.0) if var in split else column[c], panel=panel)
        else:
            k = kind[var]
            if what == "boundary" and (k in COMPUTED_KINDS or s < lo):
                k = "initial"
            node = scene.add("variable", name=name, sup=win.label(s), step=s, kind=k, row=row[var],
                             col=column[c] - shift.get(var, 0.0), panel=panel)
        nodes[key] = node
    seen = set()
    for a, b, d in edges:
        sig = (a, b, d["param"], d["target"])
        if sig in seen:
            continue
        seen.add(sig)
        na, nb = nodes[a], nodes[b]
        # a skip along a row (h^(t−2) -> h^(t)) passes the circles between: a pinned drawing bows it above them
        skip = na.row == nb.row and abs(na.col - nb.col) > 1.5
        scene.connect(na, nb, param=d["param"], delay=d["delay"], target=d["target"], context=d["context"],
                      dashed=na.role == "continuation" or nb.role == "continuation", arc=0.22 if skip else 0.0)
    if not win.symbolic:
        base = min(row.values(), default=0)
        for key, first, last in win.gaps():
            count = last - first + 1
            text = f"⋯ {count:,} step{'s' if count != 1 else ''} ⋯" if count else "⋯"
            scene.add("ellipsis", name=text, row=base - 1, col=column[key], panel=panel)
    scene.window = win
    return scene
