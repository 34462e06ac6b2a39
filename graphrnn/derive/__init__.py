"""Derive BPTT symbolically for any recurrence, as §10.2.2 does for fig. 10.3 (eqs. 10.17–10.28).

``derive(rec)`` (or ``rec.derive()``) returns a :class:`Derivation`: the gradient
equations of every per-step variable and parameter, printable as Unicode text,
LaTeX or markdown, and evaluable with numpy on a run's forward values
(:meth:`Derivation.evaluate`), independently of the engine's backward pass.

>>> import graphrnn as gr
>>> d = gr.derive("fig10_3")
>>> print(d.equation_for("h", 3, T=3).text())
∇h(τ) L = Vᵀ ∇o(τ) L    (10.19)

The pieces: :mod:`.symbols` (the expression tree), :mod:`.rules` (each op's
derivative, written once), :mod:`.derivation` (walking back through the
equations), :mod:`.printing` (text, LaTeX, markdown), :mod:`.numeric` (numbers).
"""

from .derivation import Derivation, DeriveError, Equation, Term, derive
from .numeric import Gradients

__all__ = ["Derivation", "DeriveError", "Equation", "Gradients", "Term", "derive"]
