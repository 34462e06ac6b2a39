"""Gradient paths: every path from the loss (or one L^(t)) back to a chosen node, after a run.

The unfolded graph of the run is drawn as the book draws it; the edges on some
path from ``target`` (``h^(1)``, ``W^(3)``, ``x^(2)``, ...) to ``source``
(``L`` or ``L^(t)``) are coloured and thickened by the size of the gradient
flowing back along them (:mod:`graphrnn.render.flow`, log scale: grey and thin
where it has vanished, red and thick where it explodes), the rest is greyed
out.  Each edge's tooltip (SVG) and a small number beside it give the norm;
the legend gives the scale.  ``level="op"`` does the same on the op-level drawing.

>>> import graphrnn as gr
>>> rec = gr.load("fig10_3")
>>> run = rec.run(rec.random_inputs(3, seed=0), params=rec.init_params(seed=0))
>>> d = draw_grad_path(run, "L[3]", "h[1]")
>>> sorted(d.scene.info["path_edges"])
[('h[1]', 'h[2]'), ('h[2]', 'h[3]'), ('h[3]', 'o[3]'), ('o[3]', 'L[3]')]
"""

from __future__ import annotations

import math

import graphviz

from ..errors import RenderError
from . import style
from .flow import live, normalize_key, parse_key, reachable, variable_flow
from .ops import op_scene
from .scene import Scene, to_digraph
from .unfolded import unfolded_scene

#: the colour scale's range, log10 of the gradient norm
SCALE = (-8.0, 2.0)
OFF = "#c4c4c4"  # edges and nodes off the path


def _log(x: float) -> float:
    return math.log10(x) if x > 0 else -math.inf


def _paint(edge, norm: float | None, scale, number: bool = True) -> None:
    if norm is None:
        return
    lg = _log(norm)
    lo, hi = scale
    edge.attrs.update(color=style.flow_colour(lg), penwidth=str(style.flow_width(lg, lo, hi)),
                      tooltip=style.plain(f"gradient flowing back: {style.number(norm)}"), arrowsize="0.6")
    edge.data["flow"] = norm
    if number:
        label = style.param_label(edge.param)[1:-1] if edge.param else ""
        sep = "<BR/>" if label else ""
        edge.label = (f'<<TABLE BORDER="0" CELLPADDING="3" CELLSPACING="0"><TR><TD>{label}{sep}'
                      f'<FONT POINT-SIZE="10" COLOR="#444444">{style.number(norm)}</FONT></TD></TR></TABLE>>')


def legend(scale=SCALE) -> str:
    """The colour scale as one row of an HTML table: a bar per power of ten, as wide as it is drawn."""
    lo, hi = scale
    cells = []
    for e in range(int(lo), int(hi) + 1, 2 if hi - lo > 6 else 1):
        w = style.flow_width(e, lo, hi)
        cells.append(f'<TD FIXEDSIZE="TRUE" CELLPADDING="0" WIDTH="34" HEIGHT="{max(2, round(w * 1.4))}" '
                     f'BGCOLOR="{style.flow_colour(e)}"></TD><TD ALIGN="LEFT"><FONT POINT-SIZE="11">10<SUP>{e}'
                     f'</SUP></FONT></TD>')
    return ('<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2"><TR><TD><FONT POINT-SIZE="11">gradient norm '
            'flowing back along an edge:</FONT></TD>' + "".join(cells) + "</TR></TABLE>")


def caption(text: str, scale=SCALE) -> str:
    """A drawing's caption (HTML) with the gradient colour scale beneath it."""
    return (f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0"><TR><TD>{text}</TD></TR>'
            f"<TR><TD>{legend(scale)}</TD></TR></TABLE>>")


def _book(key: str) -> str:
    """``h[3]`` -> ``h^(3)`` as an HTML label fragment."""
    var, t, _ = parse_key(key)
    return f"<I>{style.text(var)}</I>" + (style.step_sup(t) if t is not None else "")


def no_gradient_message(run, source: str, target: str) -> str:
    """Why no gradient of ``source`` reaches ``target``, naming the variable and what to ask for instead.

    Data (an ``input``, a ``target``) is given, not computed from parameters: it has no
    gradient, so the message says so and suggests a parameter or a state the data feeds.

    >>> import graphrnn as gr
    >>> rec = gr.load("fig10_3")
    >>> run = rec.run(rec.random_inputs(3, seed=0), params=rec.init_params(seed=0))
    >>> print(no_gradient_message(run, "L[3]", "x[1]"))  # doctest: +NORMALIZE_WHITESPACE
    x[1] is data (`input x`): data nodes have no gradient, since nothing is learned from them. Ask for a
    parameter x feeds (U) or a state (h[1]), e.g. --grad-path 'L[3]:h[1]'
    """
    rec = run.rec
    var, t, what = parse_key(target)
    info = getattr(rec, "variables", {}).get(var)
    kind = getattr(info, "kind", None)
    if kind in ("input", "context", "target"):
        g = rec.folded_graph()
        losses = set(getattr(getattr(rec, "spec", None), "losses", None) or ["L"])
        params = sorted({d.get("param") for _, _, d in g.out_edges(var, data=True) if d.get("param")})
        fed = sorted(((v, int(d.get("delay", 0) or 0)) for _, v, d in g.out_edges(var, data=True)
                      if v != var and v not in losses and g.nodes[v].get("kind") == "computed"), key=str)
        state = None
        if fed:
            v, delay = fed[0]
            state = f"{v}[{t + delay}]" if t is not None else f"{v}[1]"
        elif getattr(getattr(rec, "spec", None), "states", None):  # a target read by a loss only: the state
            state = f"{next(iter(rec.spec.states))}[{t if t is not None and t > 0 else 1}]"
        ask = " or ".join(p for p in (f"a parameter {var} feeds ({', '.join(params)})" if params else "",
                                      f"a state ({state})" if state else "") if p) or "a parameter or a state"
        example = f" e.g. --grad-path '{source}:{state}'" if state else ""
        return (f"{target} is data (`{kind} {var}`): data nodes have no gradient, since nothing is learned from "
                f"them. Ask for {ask},{example}").rstrip(",")
    if what == "step" and t is not None and t <= 0:
        return (f"{target} is the initial value of {var}, a constant (`state {var}: ... = zero`): it has no "
                f"gradient. Declare it `= learned` to make it a parameter ({var}0), or ask for {var}[1]")
    return (f"{source} does not depend on {target}: no gradient reaches it (a later step than {source}, or only "
            f"a non-differentiable use such as argmax)")


def _known(run, source: str, target: str, known) -> str:
    """``target`` spelled as a node of the run; data that is no node (a class label) gets the data message."""
    try:
        return normalize_key(target, known)
    except RenderError:
        var = parse_key(str(target).strip().replace("^(", "[").replace(")", "]"))[0]
        if getattr(getattr(run.rec, "variables", {}).get(var), "kind", None) in ("input", "context", "target"):
            raise RenderError(no_gradient_message(run, source, str(target).strip())) from None
        raise


def grad_path_scene(run, source: str = "L", target: str = "h[1]", window: int | None = None,
                    scale=SCALE, numbers: bool = True) -> Scene:
    """The variable-level gradient-path :class:`Scene` (see :func:`draw_grad_path`)."""
    lv = live(run)
    flow = variable_flow(run, source, lv)
    target = _known(run, flow.source, target, lv.tensors)
    on_nodes, on_edges = flow.path(target)
    if target not in flow.node_norm:
        raise RenderError(no_gradient_message(run, flow.source, target))
    scene = unfolded_scene(run.rec, steps=run.T, window=window, mode=run.mode)
    key_of = {}
    for node in scene.nodes.values():
        if node.role == "variable":
            key_of[node.id] = f"{node.name}[{node.step}]" if node.step is not None else node.name
    min_row = min(n.row for n in scene.nodes.values() if n.row is not None)
    # parameters: the dummy copies W^(t) on the path, beside the variable they feed; the parameter below them
    by_key = {k: scene.nodes[i] for i, k in key_of.items()}
    for k in sorted(on_nodes, key=lambda k: (parse_key(k)[1] or 0, k)):
        var, t, what = parse_key(k)
        if what != "copy":
            continue
        for (a, b) in sorted(on_edges):
            if a == k and b in by_key and parse_key(b)[2] != "copy":
                dst = by_key[b]
                if k not in by_key:  # one box per copy, however many variables it feeds
                    node = scene.add("parameter", name=var, sup=str(t), step=t, kind="parameter", row=0,
                                     col=dst.col - 0.5)
                    key_of[node.id] = k
                    by_key[k] = node
                scene.connect(by_key[k], dst, param=None)
    _, _, pwhat = parse_key(target)
    if pwhat is None and target in lv.tensors and lv.tensors[target].op is None and target not in by_key:
        copies = [n for k, n in by_key.items() if parse_key(k)[0] == target and parse_key(k)[2] == "copy"]
        cols = [n.col for n in copies] or [0]
        node = scene.add("parameter", name=target, kind="parameter", row=min(0, min_row) - 1,
                         col=(min(cols) + max(cols)) / 2)
        key_of[node.id] = target
        by_key[target] = node
        for c in copies:
            scene.connect(node, c)
    path_edges = set()
    for edge in scene.edges:
        a, b = key_of.get(edge.src), key_of.get(edge.dst)
        pair = (a, b)
        if pair in on_edges:
            path_edges.add(pair)
            _paint(edge, flow.edge_norm.get(pair), scale, numbers)
        else:
            edge.attrs.update(color=OFF, fontcolor="#aaaaaa")
    for node in scene.nodes.values():
        k = key_of.get(node.id)
        if node.role in ("variable", "continuation", "parameter"):
            if k in on_nodes:
                norm = flow.node_norm.get(k)
                node.data["grad_norm"] = norm
                node.attrs["tooltip"] = style.plain(f"{node.title}: gradient norm {style.number(norm)}")
                if k == target or k == flow.source:
                    node.attrs["penwidth"] = "2.6"
            else:
                node.attrs.update(color=OFF, fontcolor="#a8a8a8")
    norm = flow.node_norm.get(target)
    src = "<I>L</I>" if flow.source == "L" else _book(flow.source)
    scene.info.update(source=flow.source, target=target, path_nodes=on_nodes, path_edges=path_edges,
                      edge_norm={e: flow.edge_norm[e] for e in path_edges if e in flow.edge_norm},
                      target_norm=norm)
    norms = scene.info["edge_norm"].values()
    scene.label = caption(f"gradient of {src} flowing back to {_book(target)}: ‖∂{src}/∂{_book(target)}‖ = "
                          f"{style.number(norm)}; along the path, from {style.number(min(norms, default=0))} "
                          f"to {style.number(max(norms, default=0))}", scale)
    return scene


def op_grad_path_scene(run, source: str = "L", target: str = "h[1]", scale=SCALE, max_nodes=None) -> Scene:
    """The op-level gradient-path :class:`Scene`: the engine's graph with the paths highlighted."""
    scene = op_scene(run, source, max_nodes=max_nodes) if max_nodes is not None else op_scene(run, source)
    key = scene.info["source"]
    target = _known(run, key, target, scene.info["keys"])
    flow = scene.info["flow"]
    uid = {n.data["uid"]: n for n in scene.nodes.values() if n.role == "op"}
    tgt = next((n for n in uid.values() if n.data["key"] == target), None)
    src = uid.get(scene.info["root_uid"])
    succ, pred = {}, {}
    for e in scene.edges:
        succ.setdefault(e.src, set()).add(e.dst)
        pred.setdefault(e.dst, set()).add(e.src)
    if tgt is None or src is None:
        raise RenderError(f"{target} is not in the op graph of {key}")
    down, up = reachable(tgt.id, succ), reachable(src.id, pred)
    on = down & up
    path_edges = set()
    for e in scene.edges:
        if e.src in on and e.dst in on and e.data["key"] in flow.edge_norm:
            path_edges.add(e.data["key"])
            _paint(e, flow.edge_norm[e.data["key"]], scale, number=True)
        else:
            e.attrs.update(color=OFF)
    for n in uid.values():
        if n.id in (tgt.id, src.id):
            n.attrs["penwidth"] = "3"
    scene.info.update(source=key, target=target, path_edges=path_edges)
    scene.label = caption(f"op level: gradient of {_book(key) if key != 'L' else '<I>L</I>'} flowing back to "
                          f"{_book(target)}", scale)
    return scene




def draw_grad_path(run, source: str = "L", target: str = "h[1]", window: int | None = None,
                   level: str = "variable", scale=SCALE, numbers: bool = True) -> graphviz.Digraph:
    """Highlight every path from ``source`` (``"L"`` or ``"L[t]"``) back to ``target`` after ``run``.

    ``target`` is a node of the unrolled graph in either spelling: ``"h[1]"`` /
    ``"h^(1)"``, a dummy copy ``"W^(3)"``, a parameter ``"W"``, an input ``"x[2]"``.
    Each edge on a path is drawn with a width and colour set by the norm of the
    gradient it carries back (log scale ``scale``, powers of ten), so vanishing and
    exploding gradients show at a glance; ``numbers`` writes the norm beside it.
    """
    if level == "variable":
        scene = grad_path_scene(run, source, target, window, scale, numbers)
    elif level == "op":
        scene = op_grad_path_scene(run, source, target, scale)
    else:
        raise RenderError(f"level must be 'variable' or 'op', not {level!r}")
    return to_digraph(scene, name="grad_path")
