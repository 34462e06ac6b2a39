"""Drawings of an encoder-decoder (fig. 10.12, §10.4): the book's figure, and the unrolled graph on two time axes.

* :func:`draw_encdec` draws fig. 10.12 as printed: a rounded box "Encoder" on top, its
  hidden circles chained left to right (the third one dashed, ``...``), each fed from below
  by x^(1), x^(2), x^(...), x^(n_x); the last state leaves the box and feeds the circle C
  at the left; a box "Decoder" below, its hidden chain giving y^(1) .. y^(n_y), each y
  feeding the next hidden circle on a diagonal.  C enters the decoder as the spec says
  (§10.2.4): an arrow into every hidden circle from above (an input at every step), a line
  down the left side into the first one (the initial state), or both.
* :func:`draw_encdec_unrolled` draws the two unrolled graphs of a spec side by side, each
  on its own time axis (steps 1..τx, then 1..τy), with the link from the encoder's
  state to C and from C into the decoder.

>>> from graphrnn.recurrence.encdec import load
>>> s = encdec_scene(load("fig10_12"))
>>> sorted(n.title for n in s.of_role("continuation"))
['h^(...)', 's^(...)']
>>> ("C", "s^(1)", None, 0) in s.connections() and ("C", "s^(...)", None, 0) in s.connections()
True
"""

from __future__ import annotations

from . import style
from .scene import Scene, to_digraph
from .unfolded import Placement, unfolded_scene

#: the columns of a row of four hidden circles (the third one "...") and the rows of the figure
COLS = (1.0, 2.0, 3.0, 4.0)
ROWS = {"x": 3.0, "h": 4.0, "C": 2.1, "s": 1.0, "y": 0.0}


def _sup_html(name: str, sup: str, sub: str | None = None) -> str:
    """``x^(n_x)``: a variable's label with a subscripted step symbol, as the book sets n_x."""
    inner = style.italic_letters(sup) + (f"<SUB>{style.italic_letters(sub)}</SUB>" if sub else "")
    return f"<<B><I>{style.text(name)}</I></B><SUP>({inner})</SUP>>"


def _names(model) -> dict:
    """The names the drawing gives: the encoder's data and state, the context, the decoder's state and data."""
    enc, dec = model.encoder.rec, model.decoder.rec
    state = next((n for n in model.links[next(iter(model.links))].reads), "h")
    dec_state = next(iter(model.initial_from), None) or next(
        (n for n, v in dec.variables.items() if v.kind == "computed" and v.rows and any(
            u == n and d["delay"] > 0 for u, _, d in dec.folded.in_edges(n, data=True))), "s")
    return {"x": model.encoder.axis, "h": state, "C": next(iter(model.links)), "s": dec_state,
            "y": model.decoder.axis, "enc": enc, "dec": dec}


def encdec_scene(model) -> Scene:
    """Fig. 10.12 as a :class:`Scene` (pinned positions): see :func:`draw_encdec`."""
    names = _names(model)
    ways = model.conditioning[names["C"]]
    initial = any(w.startswith("initial state") for w in ways)
    every_step = "input at every step" in ways
    scene = Scene(layout="pinned", spacing=(1.05, 0.95))
    box = {"shape": "box", "style": "rounded", "fixedsize": "true", "labelloc": "t", "fontsize": "12",
           "penwidth": "1.2"}
    for title, row in (("Encoder", 3.55), ("Decoder", 0.55)):
        scene.add("caption", name=title, row=row, col=2.5,
                  attrs={**box, "width": f"{4.45 * 1.05:.2f}", "height": f"{1.95 * 0.95:.2f}"})
    last = {"x": ("n", "x"), "y": ("n", "y")}

    def column(letter, row_name, i, col):
        name = names[row_name]
        if i == 2:
            if row_name in ("h", "s"):
                return scene.add("continuation", name=name, sup="...", row=ROWS[row_name], col=col,
                                 html="<...>", attrs={"fontsize": "12"})
            return scene.add("variable", name=name, sup="...", row=ROWS[row_name], col=col)
        if i == 3 and row_name in last:
            sym, sub = last[row_name]
            return scene.add("variable", name=name, sup=f"n{sub}", row=ROWS[row_name], col=col,
                             html=_sup_html(name, sym, sub))
        if row_name in ("h", "s"):  # the book leaves the hidden circles unnamed
            return scene.add("variable", name=name, sup=str(i + 1), row=ROWS[row_name], col=col, html="<>")
        return scene.add("variable", name=name, sup=str(i + 1), row=ROWS[row_name], col=col)

    xs = [column("x", "x", i, c) for i, c in enumerate(COLS)]
    hs = [column("h", "h", i, c) for i, c in enumerate(COLS)]
    ss = [column("s", "s", i, c) for i, c in enumerate(COLS)]
    ys = [column("y", "y", i, c) for i, c in enumerate(COLS)]
    for i in range(4):
        dashed = i == 2
        scene.connect(xs[i], hs[i], dashed=False)
        scene.connect(ss[i], ys[i], dashed=dashed)
        if i < 3:
            scene.connect(hs[i], hs[i + 1], dashed=i + 1 == 2 or i == 2)
            scene.connect(ss[i], ss[i + 1], dashed=i + 1 == 2 or i == 2)
            scene.connect(ys[i], ss[i + 1], dashed=i + 1 == 2 or i == 2)
    c = scene.add("variable", name=names["C"], row=ROWS["C"], col=0.0)
    right, down = (scene.add("arrow", name="", kind="bend", row=ROWS["h"], col=4.75),
                   scene.add("arrow", name="", kind="bend", row=ROWS["C"], col=4.75))
    link = model.links[names["C"]]
    last = type(link.expr).__name__ == "Step" and link.expr.anchor == "tau" and link.expr.offset == 0
    # the book's C is the last state; another link (mean(h), ...) is written beside the line that leaves the box
    scene.connect(hs[3], c, via=(right.id, down.id),
                  label=None if last else f"<{style.text(link.text.split('=', 1)[1].strip())}>")
    if every_step:  # as printed: each arrow runs from C to above its circle, then straight down into it
        for i, s in enumerate(ss):
            above = scene.add("arrow", name="", kind="bend", row=ROWS["C"] - 0.4, col=COLS[i])
            scene.connect(c, s, dashed=i == 2, via=(above.id,))
    if initial:
        corner = scene.add("arrow", name="", kind="bend", row=ROWS["s"], col=0.0)
        scene.connect(c, ss[0], via=(corner.id,))
    scene.info["conditioning"] = ways
    return scene


def draw_encdec(model=None):
    """Fig. 10.12 drawn from an encoder-decoder spec (default: the zoo's ``fig10_12``), in the book's layout."""
    model = _model(model)
    return to_digraph(encdec_scene(model), name=model.name)


def encdec_unrolled_scene(model, steps: tuple[int, int] = (3, 2)) -> Scene:
    """The two unrolled graphs side by side, τx = ``steps[0]`` and τy = ``steps[1]`` steps, joined through C."""
    tx, ty = steps
    scene = Scene(panels={0: "<Encoder: <I>t</I> = 1 .. <I>τ</I><SUB><I>x</I></SUB>>",
                          1: "<Decoder: <I>t</I> = 1 .. <I>τ</I><SUB><I>y</I></SUB>>"})
    unfolded_scene(model.encoder.rec, tx, scene=scene, place=Placement(panel=0, continuations=False))
    width = int(max(n.col for n in scene.nodes.values())) + 1
    unfolded_scene(model.decoder.rec, ty, scene=scene,
                   place=Placement(col0=width + 1, panel=1, continuations=False))
    enc_nodes = {n.title: n for n in scene.nodes.values() if n.panel == 0}
    for name, link in model.links.items():
        ctx = scene.find(name, None, panel=1)
        if ctx is None:  # read only as the initial state: the decoder's drawing has no C yet
            ctx = scene.add("variable", name=name, row=0, col=width + 0.5, panel=1)
        for part in link.parts():
            kind = type(part).__name__
            if kind == "Step":
                steps_read = [part.step(tx)]
            elif kind == "Summary":
                steps_read = list(range(1, tx + 1))
            else:
                continue
            for s in steps_read:
                src = enc_nodes.get(f"{part.name}^({s})")
                if src is not None:
                    scene.connect(src, ctx, label=f"<{style.text(part.fn)}>" if kind == "Summary" else "")
        for state, (context, _) in model.initial_from.items():
            if context != name:
                continue
            start = scene.find(state, "0", panel=1)
            if start is not None:
                start.kind = ""  # no longer a grey constant: s^(0) is C
                scene.connect(ctx, start, label="<=>")
    return scene


def draw_encdec_unrolled(model=None, steps: tuple[int, int] = (3, 2)):
    """The unrolled graph of an encoder-decoder on its two time axes (see :func:`encdec_unrolled_scene`)."""
    model = _model(model)
    return to_digraph(encdec_unrolled_scene(model, steps), name=f"{model.name}_unrolled")


def _model(model):
    if model is None or isinstance(model, str):
        from ..recurrence.encdec import load

        return load(model or "fig10_12")
    return model


def gallery_pictures() -> list:
    """The gallery's entries for fig. 10.12 (``graphrnn.render.gallery.Picture``): the book's figure and the
    unrolled graph on two time axes."""
    from .gallery import Picture

    return [
        Picture("fig10_12", "Fig. 10.12 — an encoder–decoder (sequence to sequence, §10.4)",
                "The encoder reads x<sup>(1)</sup> .. x<sup>(<i>n<sub>x</sub></i>)</sup>; its last state leaves the "
                "box for the context C. The decoder generates y<sup>(1)</sup> .. y<sup>(<i>n<sub>y</sub></i>)</sup>, "
                "each y feeding the next step; C enters every decoder step from above (an input at every step) and "
                "starts its chain from the left (the initial state), as the spec <code>fig10_12</code> says.",
                lambda: draw_encdec("fig10_12")),
        Picture("fig10_12_unrolled", "Fig. 10.12 unrolled — two time axes",
                "The encoder unrolled over <i>τ<sub>x</sub></i> = 3 steps and the decoder over "
                "<i>τ<sub>y</sub></i> = 2: h<sup>(3)</sup> gives C, and C is s<sup>(0)</sup> and an input of every "
                "s<sup>(<i>t</i>)</sup> through R. The encoder's W and the decoder's W are separate weights "
                "(enc.W, dec.W).",
                lambda: draw_encdec_unrolled("fig10_12", (3, 2))),
    ]
