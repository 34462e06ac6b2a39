"""Drawings of recurrences in the book's visual language (graphviz), with gradient paths.

Variable level, as chapter 10 draws them:

* :func:`draw_folded` — the circuit: circles, weight letters, a black square per step of delay;
* :func:`draw_unfolded` — one column per step, ``h^(...)`` at the ends, a window for long unrolls;
* :func:`draw_fold_unfold` — both, joined by an arrow labelled "Unfold" (figs. 10.2, 10.3);
* :func:`draw_teacher_forcing` — fig. 10.6's pair, train time and test time;
* :func:`draw_graphical_models` — figs. 10.7 and 10.8 with their parameter counts;
* :func:`draw_tree` — a recursive network unrolled over a tree, bottom to top (fig. 10.14).

After a run:

* :func:`draw_ops` — every engine op, with its data and gradient, coloured by meaning;
* :func:`draw_grad_path` — every path from the loss (or one ``L^(t)``) to a node, each edge as
  wide and as red as the gradient it carries back.

Every drawing is a ``graphviz.Digraph`` (shown inline in Jupyter) with a ``.scene``
attribute describing what it holds; :func:`save` writes SVG, PNG, PDF or DOT.

>>> import graphrnn as gr
>>> d = gr.render.draw_unfolded(gr.load("fig10_3"), steps=10_000)
>>> len(d.scene.nodes) < 60, "9,994 steps" in d.source
(True, True)
"""

from .figures import (
    SEQUENCE_MODEL, draw_fold_unfold, draw_folded, draw_graphical_models, draw_teacher_forcing, draw_unfolded,
    table_parameters,
)
from .flow import variable_flow
from .gradpath import draw_grad_path
from .ops import draw_ops
from .output import FORMATS, Drawing, dot_available, save
from .scene import Scene
from .tree import draw_tree

__all__ = [
    "draw_folded", "draw_unfolded", "draw_fold_unfold", "draw_teacher_forcing", "draw_graphical_models",
    "draw_ops", "draw_grad_path", "save", "Drawing", "Scene", "FORMATS", "dot_available", "variable_flow",
    "table_parameters", "SEQUENCE_MODEL", "draw_tree",
]
