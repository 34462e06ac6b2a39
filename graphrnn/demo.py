"""The bundled example: fig. 10.3 of the book, drawn and checked.

Draws the standard RNN folded and unfolded side by side (a window of steps, as
the book prints it), draws which paths carry ∂L/∂h^(1) back and how strongly, and
prints the step-by-step check of back-propagation through time: the engine
against the book's equations 10.17–10.28 and against finite differences.
Exits 0 when every check passes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import render, verify, zoo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", default="fig10_3", help="the architecture to show (default: fig10_3)")
    parser.add_argument("--steps", "-T", type=int, default=5, help="time steps to unroll and check (default: 5)")
    parser.add_argument("--window", type=int, default=3, help="steps drawn in the unfolded graph (default: 3)")
    parser.add_argument("--out", default="graphrnn-demo", help="folder for the drawings (default: graphrnn-demo)")
    parser.add_argument("--seed", type=int, default=0)


def main(args) -> int:
    rec = zoo.load(args.arch)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(rec.describe())
    print()
    report = verify.verify(rec, steps=args.steps, seed=args.seed)
    run = rec.run(rec.random_inputs(args.steps, batch=2, seed=args.seed), rec.init_params(seed=args.seed),
                  retain_graph=True)
    drawings = {
        f"{rec.name}_fold_unfold": render.draw_fold_unfold(rec, window=args.window),
        f"{rec.name}_unrolled_T{args.steps}": render.draw_unfolded(rec, steps=args.steps, window=args.window),
        f"{rec.name}_gradient_to_h1": render.draw_grad_path(run, source="L", target="h[1]"),
    }
    written = []
    suffix = ".png" if render.dot_available() else ".dot"
    for name, drawing in drawings.items():
        written.append(render.save(drawing, out / f"{name}{suffix}"))
    print(report)
    print()
    print("drawings written:", *(str(p) for p in written), sep="\n  ")
    if suffix == ".dot":
        print("graphviz's dot program is missing, so the drawings are DOT text; "
              "install it (apt-get install graphviz) to get PNG pictures", file=sys.stderr)
    return 0 if report.ok else 1
