"""Regenerate the gallery: the book's figures 10.2–10.14 redrawn from the zoo, and gradient paths.

Run from the repository's root::

    python visualizations/make_gallery.py          # or: python -m graphrnn.render.gallery -o visualizations

Every picture is written as SVG and PNG, with ``index.html`` and ``README.md``
showing them all, each with its caption and the command that draws it alone.
"""

from __future__ import annotations

import argparse
import html
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import zoo
from .command import make_run
from .figures import (
    draw_fold_unfold, draw_folded_panels, draw_graphical_models, draw_teacher_forcing, draw_unfolded,
)
from .encdec import gallery_pictures as _encdec_pictures
from .gradpath import draw_grad_path
from .ops import draw_ops
from .output import save
from .tree import draw_tree


@dataclass
class Picture:
    name: str  # file stem
    title: str
    caption: str
    draw: Callable
    command: str | None = None  # the `graphrnn render` line that draws it alone


def _run(arch, T, **kw):
    return make_run(zoo.load(arch), T, **kw)


PICTURES = [
    Picture("fig10_2", "Fig. 10.2 — a recurrent network with no outputs",
            "Folded: x feeds h, and h feeds itself through the black square, a delay of one step. Unfolded: "
            "one h per step, h<sup>(...)</sup> dashed at both ends. The book labels every arrow f; the spec "
            "names the weights, U and W.",
            lambda: draw_fold_unfold(zoo.load("fig10_2")), "graphrnn render fig10_2 --both -o fig10_2.svg"),
    Picture("fig10_3", "Fig. 10.3 — the standard RNN (eqs. 10.8–10.14)",
            "x →U→ h →V→ o → L ← y, and h →W→ ■ → h; unfolded, the same U, V, W at every step.",
            lambda: draw_fold_unfold(zoo.load("fig10_3")), "graphrnn render fig10_3 --both -o fig10_3.svg"),
    Picture("fig10_4", "Fig. 10.4 — recurrence only through the output",
            "No h → h edge: o<sup>(<i>t</i>−1)</sup> feeds h<sup>(<i>t</i>)</sup> through W, folded as "
            "o →W→ ■ → h.",
            lambda: draw_fold_unfold(zoo.load("fig10_4")), "graphrnn render fig10_4 --both -o fig10_4.svg"),
    Picture("fig10_5", "Fig. 10.5 — a single output at the end",
            "The hidden chain runs to h<sup>(<i>τ</i>)</sup>; only h<sup>(<i>τ</i>)</sup> has an output, a loss "
            "and a target.",
            lambda: draw_unfolded(zoo.load("fig10_5")), "graphrnn render fig10_5 --unrolled -o fig10_5.svg"),
    Picture("fig10_6", "Fig. 10.6 — teacher forcing",
            "Train time: the true y<sup>(<i>t</i>−1)</sup> feeds h<sup>(<i>t</i>)</sup>. Test time "
            "(free-running mode): the "
            "model's own output o<sup>(<i>t</i>−1)</sup> does, and there is no loss or target.",
            lambda: draw_teacher_forcing(zoo.load("fig10_6")),
            "graphrnn render fig10_6 --teacher-forcing -o fig10_6.svg"),
    Picture("fig10_7_8", "Figs. 10.7 and 10.8 — a distribution over sequences, with and without h",
            "Fully connected (every arc above the row, as printed), every y<sup>(<i>t</i>)</sup> needs a table "
            "over all earlier ones: <i>k</i><sup><i>τ</i></sup> − 1 numbers. Through h, one transition shared by "
            "every step: a number of parameters that does not grow with <i>τ</i> (counted from the RNN's spec).",
            lambda: draw_graphical_models(tau=5)),
    Picture("fig10_9", "Fig. 10.9 — a fixed vector x conditions every step",
            "One x feeds every h<sup>(<i>t</i>)</sup> through R, the steps beyond the drawing too (the dashed arcs); "
            "y<sup>(<i>t</i>)</sup> is the input of step <i>t</i> (through U) "
            "and the target of step <i>t</i>−1.",
            lambda: draw_unfolded(zoo.load("fig10_9")), "graphrnn render fig10_9 --unrolled -o fig10_9.svg"),
    Picture("fig10_10", "Fig. 10.10 — a conditional RNN, sequence to sequence",
            "The columns of fig. 10.3 plus y<sup>(<i>t</i>)</sup> →R→ h<sup>(<i>t</i>+1)</sup>.",
            lambda: draw_unfolded(zoo.load("fig10_10")), "graphrnn render fig10_10 --unrolled -o fig10_10.svg"),
    Picture("fig10_11", "Fig. 10.11 — a bidirectional RNN",
            "h runs forward in time, g backward (g<sup>(<i>t</i>+1)</sup> → g<sup>(<i>t</i>)</sup>); "
            "o<sup>(<i>t</i>)</sup> sees both.",
            lambda: draw_unfolded(zoo.load("fig10_11")), "graphrnn render fig10_11 --unrolled -o fig10_11.svg"),
    Picture("fig10_13", "Fig. 10.13 — three ways to make an RNN deep (§10.5)",
            "Folded, as printed. (a) The state in two recurrent layers, h over x and z over h, each with its own "
            "loop. (b) An MLP layer in each part: input to hidden (p), hidden to hidden (m, the transition goes "
            "h → m → ■ → h) and hidden to output (q). (c) As (b), plus a skip h → ■ → h through S beside the deep "
            "transition. The book leaves the MLP circles unnamed; the specs name them p, m, q.",
            lambda: draw_folded_panels([zoo.load(n) for n in ("fig10_13a", "fig10_13b", "fig10_13c")],
                                       ["(a)", "(b)", "(c)"])),
    Picture("fig10_13a", "Fig. 10.13a — stacked recurrent layers",
            "Unfolded, each layer is a chain of its own: h<sup>(<i>t</i>−1)</sup> →W→ h<sup>(<i>t</i>)</sup> "
            "and z<sup>(<i>t</i>−1)</sup> →Wz→ z<sup>(<i>t</i>)</sup>, and z<sup>(<i>t</i>)</sup> reads "
            "h<sup>(<i>t</i>)</sup> of the same step through Uz.",
            lambda: draw_fold_unfold(zoo.load("fig10_13a")), "graphrnn render fig10_13a --both -o fig10_13a.svg"),
    Picture("fig10_13b", "Fig. 10.13b — deeper input, transition and output",
            "From one state to the next takes two layers, h<sup>(<i>t</i>)</sup> →Wm→ m<sup>(<i>t</i>)</sup> "
            "→W→ h<sup>(<i>t</i>+1)</sup>: the path between steps is twice as long as in fig. 10.3.",
            lambda: draw_fold_unfold(zoo.load("fig10_13b")), "graphrnn render fig10_13b --both -o fig10_13b.svg"),
    Picture("fig10_13c", "Fig. 10.13c — the deep transition with a skip connection",
            "The skip h<sup>(<i>t</i>)</sup> →S→ h<sup>(<i>t</i>+1)</sup> gives back a path of one layer "
            "between steps, beside the deep one through m.",
            lambda: draw_fold_unfold(zoo.load("fig10_13c")), "graphrnn render fig10_13c --both -o fig10_13c.svg"),
    Picture("grad_skip", "Gradient path in fig. 10.13c: the deep transition and the skip",
            "After a run of fig. 10.13c: the gradient of L<sup>(4)</sup> reaches h<sup>(1)</sup> along two kinds "
            "of path at every step, through m (Wm, then W: two layers) and through the skip S (one layer). "
            "Each edge is as wide as the gradient it carries back.",
            lambda: draw_grad_path(_run("fig10_13c", 4), "L[4]", "h[1]"),
            "graphrnn render fig10_13c --unrolled --steps 4 --grad-path 'L[4]:h[1]' -o grad_skip.svg"),
    Picture("fig10_14", "Fig. 10.14 — a recursive network (§10.6)",
            "The book's tree, bottom to top: each x<sup>(<i>i</i>)</sup> enters its leaf through V; each "
            "internal circle reads its left child through U and its right child through W; the root feeds o, "
            "and o and y feed L. One U, V, W at every node. The tree's circles are unnamed, as printed.",
            lambda: draw_tree(zoo.load_tree("fig10_14"), names=False),
            "graphrnn render fig10_14 --unrolled --unnamed -o fig10_14.svg"),
    Picture("fig10_14_tree", "A recursive network over a tree given by the data",
            "The same spec over an unbalanced tree of six leaves (a parse tree, say); each circle is named with "
            "the leaves it spans, h<sup>(1..3)</sup> over x<sup>(1)</sup>…x<sup>(3)</sup>. Depth 3 for six "
            "inputs, where a chain would need five steps.",
            lambda: draw_tree(zoo.load_tree("fig10_14"), (((1, 2), 3), (4, (5, 6)))),
            "graphrnn render fig10_14 --unrolled --tree '(((1, 2), 3), (4, (5, 6)))' -o fig10_14_tree.svg"),
    Picture("long_unroll", "A long unroll as a window: T = 10,000",
            "The first and last three steps around an ellipsis; the drawing is as small (and as fast) as T = 6.",
            lambda: draw_unfolded(zoo.load("fig10_3"), steps=10_000, window=6),
            "graphrnn render fig10_3 --unrolled --steps 10000 --window 6 -o long_unroll.svg"),
    Picture("grad_vanishing", "Gradient path: vanishing (W × 0.5)",
            "After a run of fig. 10.3 with its recurrent weights halved: the gradient of L<sup>(8)</sup> "
            "flowing back to h<sup>(1)</sup> shrinks at every step, Wᵀ diag(1 − h²) at a time (eq. 10.21).",
            lambda: draw_grad_path(_run("fig10_3", 8, scales={"W": 0.5}), "L[8]", "h[1]"),
            "graphrnn render fig10_3 --unrolled --steps 8 --grad-path 'L[8]:h[1]' --scale W=0.5 "
            "-o grad_vanishing.svg"),
    Picture("grad_exploding", "Gradient path: exploding (W × 5)",
            "The same path with large recurrent weights (and small input weights, so that tanh does not "
            "saturate): the gradient grows about fiftyfold on its way back.",
            lambda: draw_grad_path(_run("fig10_3", 8, batch=1, scales={"W": 5.0, "U": 0.1}), "L[8]", "h[1]"),
            "graphrnn render fig10_3 --unrolled --steps 8 --grad-path 'L[8]:h[1]' --scale W=5 --scale U=0.1 "
            "--batch 1 -o grad_exploding.svg"),
    Picture("grad_copies", "Gradient path to W through its dummy copies W<sup>(<i>t</i>)</sup> (§10.2.2)",
            "Every step's copy of W receives its own share of ∇W; the shares add up to ∇W. W<sup>(1)</sup> "
            "gets none: it multiplies h<sup>(0)</sup> = 0.",
            lambda: draw_grad_path(_run("fig10_3", 5), "L", "W"),
            "graphrnn render fig10_3 --unrolled --steps 5 --grad-path L:W -o grad_copies.svg"),
    Picture("ops", "Op level: every engine op of a two-step run",
            "Each op with its data and the gradient of the loss; colours mean parameter, dummy copy, input, "
            "state, other variable, loss.",
            lambda: draw_ops(_run("fig10_3", 2)), "graphrnn render fig10_3 --unrolled --steps 2 --level op -o ops.svg"),
    Picture("grad_ops", "Op level: the paths from L<sup>(3)</sup> back to h<sup>(1)</sup>",
            "The same highlighting on the engine's own graph: each matmul, add and tanh the gradient passes.",
            lambda: draw_grad_path(_run("fig10_3", 3), "L[3]", "h[1]", level="op"),
            "graphrnn render fig10_3 --unrolled --steps 3 --level op --grad-path 'L[3]:h[1]' -o grad_ops.svg"),
]


# fig. 10.12 (§10.4, the encoder-decoder: render/encdec.py) in the book's order, before the deep RNNs of §10.5
_AT = next(i for i, p in enumerate(PICTURES) if p.name.startswith("fig10_13"))
PICTURES[_AT:_AT] = _encdec_pictures()

#: the explorer page of the gallery (graphrnn.explore): (file stem, architecture, steps, the position shown)
EXPLORER = ("explorer_fig10_3", "fig10_3", 5, "backward:h(2)")
EXPLORER_TEXT = ("Step through BPTT in the browser: fig. 10.3 unrolled over 5 steps, the forward pass and then the "
                 "backward pass one node at a time; each gradient with the edges it came back along and the derived "
                 "equation that produced it, the dummy copies W<sup>(t)</sup> adding up to ∇W, and every gradient "
                 "checked three ways (engine, derived equation, finite difference). "
                 "One self-contained page: open it from disk, arrow keys step, space plays.")


def make_explorer(out: Path) -> list[Path]:
    """Write the explorer page and, when a headless Chromium is there, its screenshot."""
    from ..explore import explore
    from ..explore.browser import chromium_paths, screenshot

    stem, arch, steps, position = EXPLORER
    page = explore(zoo.load(arch), steps=steps).save(out / f"{stem}.html")
    written = [page]
    if chromium_paths() is not None:
        written.append(screenshot(page, out / f"{stem}.png", position, width=1440, height=800))
    else:
        print(f"no chromium and chromedriver on the PATH: {stem}.png not redrawn", file=sys.stderr)
    return written


def _explorer_entry() -> tuple[str, list]:
    stem, arch, steps, _ = EXPLORER
    command = f"graphrnn explore {arch} --steps {steps} -o {stem}.html"
    return (f'<figure id="{stem}"><h2>Explorer: BPTT node by node</h2><a href="{stem}.html"><img src="{stem}.png" '
            f'alt="the explorer page"></a><figcaption>{EXPLORER_TEXT} <a href="{stem}.html">Open the page</a>.'
            f"<br><code>{html.escape(command)}</code></figcaption></figure>",
            ["## Explorer: BPTT node by node", "", f"[![the explorer page]({stem}.png)]({stem}.html)", "",
             EXPLORER_TEXT + f" [Open the page]({stem}.html) (download it and open it in a browser: a repository "
             "host shows HTML as text).", "", "```", command, "```", ""])


def _page(pictures) -> tuple[str, str]:
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>graphrnn — chapter 10's figures, redrawn</title>",
             "<style>body{font-family:Georgia,serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "figure{margin:2.5em 0}img{max-width:100%;height:auto;border:1px solid #eee}"
             "code{background:#f4f4f4;padding:2px 4px;font-size:90%}</style></head><body>",
             "<h1>Chapter 10's figures, redrawn from the zoo</h1>",
             "<p>Every picture below is drawn by <code>graphrnn.render</code> from the spec files in "
             "<code>graphrnn/zoo/</code>. Regenerate them all with <code>python visualizations/make_gallery.py"
             "</code>.</p>"]
    md = ["# Chapter 10's figures, redrawn from the zoo", "",
          "Every picture is drawn by `graphrnn.render` from the spec files in `graphrnn/zoo/` "
          "([index.html](index.html) shows the same page). Regenerate them all, from the repository's root, with",
          "", "```", "python visualizations/make_gallery.py", "```", ""]
    for p in pictures:
        parts.append(f'<figure id="{p.name}"><h2>{p.title}</h2><img src="{p.name}.svg" alt="{html.escape(p.name)}">'
                     f"<figcaption>{p.caption}"
                     + (f"<br><code>{html.escape(p.command)}</code>" if p.command else "") + "</figcaption></figure>")
        md += [f"## {p.title}", "", f"![{p.name}]({p.name}.svg)", "", p.caption, ""]
        if p.command:
            md += ["```", p.command, "```", ""]
    entry, lines = _explorer_entry()
    parts.append(entry)
    md += lines
    parts.append("</body></html>")
    return "\n".join(parts) + "\n", "\n".join(md)


def make(out: Path, only=None, formats=("svg", "png")) -> list[Path]:
    """Draw every picture (or those named in ``only``) into ``out``; write the index pages."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for p in PICTURES:
        if only and p.name not in only:
            continue
        drawing = p.draw()
        for fmt in formats:
            written.append(save(drawing, out / f"{p.name}.{fmt}"))
    if not only or EXPLORER[0] in only:
        written += make_explorer(out)
    page, md = _page(PICTURES)
    (out / "index.html").write_text(page, encoding="utf-8")
    (out / "README.md").write_text(md, encoding="utf-8")
    return written + [out / "index.html", out / "README.md"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m graphrnn.render.gallery", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-o", "--out", default="visualizations", help="the folder to write (default: visualizations)")
    parser.add_argument("--only", nargs="*", metavar="NAME", help="draw only these pictures (by file name)")
    args = parser.parse_args(argv)
    for path in make(Path(args.out), args.only):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
