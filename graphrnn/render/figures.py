"""Variable-level drawings, as the book prints them: folded, unfolded, both, and figs. 10.6–10.8.

Each function returns a ``graphviz.Digraph`` (it displays inline in Jupyter and
writes any format with :func:`graphrnn.render.save`); its ``.scene`` attribute
is the :class:`~graphrnn.render.scene.Scene` it was drawn from.

>>> import graphrnn as gr
>>> d = draw_fold_unfold(gr.load("fig10_3"))
>>> ("h", "h", "W", 1) in d.scene.connections()   # the folded loop, one black square
True
>>> "Unfold" in d.source
True
"""

from __future__ import annotations


import math

import graphviz

from ..errors import RenderError
from . import style
from .folded import folded_scene, rows, variable_graph
from .scene import Scene, to_digraph
from .unfolded import Placement, unfolded_scene


def _name(source) -> str:
    name = getattr(source, "name", None) or (source.graph.get("name") if hasattr(source, "graph") else None)
    return str(name or "graphrnn")


def draw_folded(source, mode: str = "teacher") -> graphviz.Digraph:
    """The folded graph (figs. 10.2–10.4, left): circles, weight letters, black squares.

    ``source`` is a Recurrence (``graphrnn.load("fig10_3")``) or its folded
    ``networkx.MultiDiGraph``; ``mode="free"`` draws the test-time graph (fig. 10.6).
    """
    return to_digraph(folded_scene(source, mode), name=_name(source))


def draw_unfolded(source, steps: int | None = None, window: int | None = None, mode: str = "teacher",
                  start: int | None = None, continuations: bool = True) -> graphviz.Digraph:
    """The unfolded graph (figs. 10.2–10.5, 10.9–10.11, right): one column per step.

    ``steps=None`` draws the book's symbolic window ``t−1, t, t+1`` (``window``
    columns) with dashed ``h^(...)`` at both ends; ``steps=T`` draws steps 1..T,
    as a window of the first and last steps around an ellipsis when T is large
    (``window`` steps in all, 6 by default beyond T = 8); ``start`` shows the
    ``window`` steps from ``start`` on, with continuations at the cut ends.
    """
    scene = unfolded_scene(source, steps, window, mode, start, place=Placement(continuations=continuations))
    return to_digraph(scene, name=_name(source))


def fold_unfold_scene(source, steps=None, window=None, mode: str = "teacher", start=None) -> Scene:
    scene = folded_scene(source, mode)
    width = math.ceil(max(n.col for n in scene.nodes.values() if n.role == "variable")) + 1
    g = variable_graph(source, mode)
    r = rows(g)
    loops = [n for n in g if any(v == n and d["delay"] for _, v, d in g.out_edges(n, data=True))]
    at = r[loops[0]] if loops else sorted(r.values())[len(r) // 2]
    a = scene.add("arrow", name="", row=at, col=width - 1 + 0.6)
    b = scene.add("arrow", name="", row=at, col=width - 1 + 1.2)
    scene.connect(a, b, label=f"<<FONT POINT-SIZE=\"{style.FONT_SIZE}\">Unfold</FONT>>",
                  attrs={"penwidth": "1.4", "arrowsize": "0.9", "minlen": "2"})
    unfolded_scene(source, steps, window, mode, start, scene=scene, place=Placement(col0=width + 1))
    return scene


def draw_fold_unfold(source, steps: int | None = None, window: int | None = None, mode: str = "teacher",
                     start: int | None = None) -> graphviz.Digraph:
    """Folded on the left, an arrow labelled "Unfold", the unfolded graph on the right (figs. 10.2, 10.3)."""
    return to_digraph(fold_unfold_scene(source, steps, window, mode, start), name=_name(source))


def teacher_forcing_scene(source, window: int = 2) -> Scene:
    scene = Scene(panels={0: "Train time", 1: "Test time"})
    unfolded_scene(source, None, window, "teacher", scene=scene, place=Placement(panel=0, continuations=False))
    width = int(max(n.col for n in scene.nodes.values())) + 1
    unfolded_scene(source, None, window, "free", scene=scene,
                   place=Placement(col0=width + 1, panel=1, continuations=False, drop=("loss", "target")))
    return scene


def draw_teacher_forcing(source, window: int = 2) -> graphviz.Digraph:
    """Fig. 10.6 as a pair: at train time the true ``y^(t−1)`` feeds ``h^(t)``; at test time
    the model's own output ``o^(t−1)`` does (free-running mode), and there is no loss or target."""
    fed = [n for n, d in source.folded_graph("free").nodes(data=True) if d.get("kind") == "fed"] \
        if hasattr(source, "folded_graph") else []
    if not fed:
        raise RenderError(f"{_name(source)} feeds no output back (no `feedback` line), so train and test time "
                          f"are the same graph; teacher forcing needs e.g. `feedback y[t] = argmax(o[t])`")
    return to_digraph(teacher_forcing_scene(source, window), name=_name(source))


def folded_panels_scene(sources, titles=None, mode: str = "teacher") -> Scene:
    """Several folded drawings side by side, each in its own titled panel (fig. 10.13's (a), (b), (c))."""
    sources = list(sources)
    if not sources:
        raise RenderError("give at least one recurrence to draw")
    titles = list(titles) if titles is not None else [_name(s) for s in sources]
    if len(titles) != len(sources):
        raise RenderError(f"{len(sources)} drawings but {len(titles)} titles")
    scene = Scene(panels={i: t for i, t in enumerate(titles)})
    col = 0
    for i, source in enumerate(sources):
        folded_scene(source, mode, scene=scene, col=col, panel=i)
        col = math.ceil(max(n.col for n in scene.nodes.values())) + 2
    return scene


def draw_folded_panels(sources, titles=None, mode: str = "teacher") -> graphviz.Digraph:
    """Folded drawings side by side, each titled: ``draw_folded_panels([gr.load("fig10_13a"), ...],
    ["(a)", "(b)", "(c)"])`` is fig. 10.13 as printed."""
    return to_digraph(folded_panels_scene(sources, titles, mode), name="+".join(_name(s) for s in sources))


# ------------------------------------------------------------------------------ figs. 10.7 and 10.8

#: the RNN of fig. 10.8: each y^(t) feeds h^(t+1), which predicts y^(t+1)
SEQUENCE_MODEL = """\
# The RNN behind fig. 10.8: a distribution over sequences y with one set of parameters for every step
size H = 5, K = 4
target y: class K
init   y = zero
state  h: H = zero
loss   L

h[t] = tanh(b + W @ h[t-1] + U @ one_hot(y[t-1]))
o[t] = c + V @ h[t]
L[t] = cross_entropy(o[t], y[t])
"""


def table_parameters(tau: int, k: int) -> int:
    """Free parameters of a full table over τ variables with k values each, written as conditionals
    P(y^(t) | y^(1..t−1)): Σ_t k^(t−1)(k−1) = k^τ − 1 (fig. 10.7)."""
    return k ** tau - 1


def graphical_models_scene(tau: int = 5, k: int | None = None, rec=None) -> Scene:
    from ..recurrence import Recurrence

    if not isinstance(tau, int) or isinstance(tau, bool) or not 1 <= tau <= 12:
        raise RenderError(f"tau must be a whole number of steps from 1 to 12; got {tau!r}")
    rec = rec if rec is not None else Recurrence(SEQUENCE_MODEL, name="fig10_8")
    if k is None:
        classes = [v.classes for v in rec.variables.values() if v.kind == "target" and v.classes]
        k = classes[0] if classes else 2
    # pinned, as printed: fig. 10.7's row with every longer arc bowing above it, fig. 10.8's two rows below
    scene = Scene(layout="pinned", spacing=(0.95, 1.0))
    top = 3  # the row of fig. 10.7
    arc = 0.42  # an arc's height, as a fraction of its span (the book's are about half as high as long)
    # fig. 10.7: every y^(i) -> every later y^(j); neighbours by a straight arrow, the others by arcs above
    ys = [scene.add("variable", name="y", sup=str(t), step=t, kind="target", row=top, col=t - 1, panel=0)
          for t in range(1, tau + 1)]
    more = scene.add("continuation", name="y", sup=style.ELLIPSIS, kind="target", row=top, col=tau, panel=0)
    for j, b in enumerate(ys + [more]):
        for i, a in enumerate(ys[:j]):
            scene.connect(a, b, dashed=b is more, arc=0.0 if j - i == 1 else arc)
    # fig. 10.8: y^(t) -> h^(t) -> h^(t+1), h^(t) -> y^(t+1); at the right end y^(...) -> h^(...)
    hs = [scene.add("variable", name="h", sup=str(t), step=t, kind="computed", row=1, col=t - 1, panel=1)
          for t in range(1, tau + 1)]
    y2 = [scene.add("variable", name="y", sup=str(t), step=t, kind="target", row=0, col=t - 1, panel=1)
          for t in range(1, tau + 1)]
    h_more = scene.add("continuation", name="h", sup=style.ELLIPSIS, row=1, col=tau, panel=1)
    y_more = scene.add("continuation", name="y", sup=style.ELLIPSIS, kind="target", row=0, col=tau, panel=1)
    for t in range(tau):
        scene.connect(y2[t], hs[t])
        nxt_h = hs[t + 1] if t + 1 < tau else h_more
        nxt_y = y2[t + 1] if t + 1 < tau else y_more
        scene.connect(hs[t], nxt_h, dashed=nxt_h is h_more)
        scene.connect(hs[t], nxt_y, dashed=nxt_y is y_more)
    scene.connect(y_more, h_more, dashed=True)
    table = table_parameters(tau, k)
    rnn = rec.parameter_count
    scene.info.update(table_parameters=table, rnn_parameters=rnn, tau=tau, k=k)
    small = '<FONT POINT-SIZE="13">'
    scene.panels = {0: "Fully connected graphical model (fig. 10.7)", 1: "Through the hidden state h (fig. 10.8)"}
    middle = tau / 2
    captions = {
        0: ("<Fully connected graphical model (fig. 10.7)<BR/>" + small +
            "a table per step, <I>k</I><SUP><I>t</I>−1</SUP>(<I>k</I>−1) numbers for "
            f"<I>y</I>{style.step_sup('t')}: "
            f"<I>k</I><SUP><I>τ</I></SUP> − 1 = <B>{table:,}</B> parameters (<I>k</I> = {k}, <I>τ</I> = {tau})"
            "</FONT>>", top + arc * tau * 0.95 + 0.55),
        1: ("<Through the hidden state h (fig. 10.8)<BR/>" + small +
            f"the same <I>h</I>{style.step_sup('t')} = <I>f</I>(<I>h</I>{style.step_sup('t−1')}, "
            f"<I>y</I>{style.step_sup('t')}; <I>θ</I>) at every step: <B>{rnn:,}</B> parameters for any "
            f"<I>τ</I><BR/>({style.text(_sizes(rec))})</FONT>>", 1.85),
    }
    for panel, (html, row) in captions.items():
        scene.add("caption", name=scene.panels[panel], html=html, row=row, col=middle, panel=panel,
                  attrs={"fontsize": "16"})
    return scene


def _sizes(rec) -> str:
    parts = [f"{n} {'x'.join(map(str, s)) if s[1] != 1 else s[0]}" for n, s in rec.all_param_shapes().items()]
    return ", ".join(parts)


def draw_graphical_models(tau: int = 5, k: int | None = None, rec=None) -> graphviz.Digraph:
    """Figs. 10.7 and 10.8 side by side, each with its parameter count.

    Left, a fully connected graphical model over ``y^(1) .. y^(τ)``: its tables need
    ``k^τ − 1`` numbers.  Right, the same sequence through hidden states: the RNN
    ``rec`` (default: the sequence model of fig. 10.8, :data:`SEQUENCE_MODEL`) uses
    ``rec.parameter_count`` numbers whatever τ is.
    """
    scene = graphical_models_scene(tau, k, rec)
    d = to_digraph(scene, name="fig10_7_8")
    return d


__all__ = ["draw_folded", "draw_unfolded", "draw_fold_unfold", "draw_teacher_forcing", "draw_graphical_models",
           "draw_folded_panels",
           "table_parameters", "SEQUENCE_MODEL"]

