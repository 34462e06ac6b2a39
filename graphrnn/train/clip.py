"""Gradient clipping (Goodfellow et al. §10.11.1; Pascanu et al. 2013; Mikolov 2012).

* :func:`clip_by_norm`: if the norm of the whole gradient exceeds a threshold ``v``,
  scale it down to norm ``v`` (eqs. 10.48-10.49):
  ``if ‖g‖ > v:  g ← g v / ‖g‖``.  The direction is kept; the norm is taken over every
  parameter at once, so one update is a step of at most ``ε v``.
* :func:`clip_elementwise`: clip each entry of the gradient to ``[-v, v]`` (the form
  Mikolov 2012 used; it can change the direction).

Both change the gradients in place and return what they did.

>>> import numpy as np
>>> g = {"W": np.array([[3.0, 0.0]]), "b": np.array([[4.0]])}
>>> clip_by_norm(g, 1.0)   # ‖g‖ = 5 > 1: scaled by 1/5
(5.0, True)
>>> g["W"], g["b"]
(array([[0.6, 0. ]]), array([[0.8]]))
"""

from __future__ import annotations

import math

import numpy as np

from .errors import TrainError


def _threshold(v) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise TrainError(f"a clipping threshold must be a number, not {v!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise TrainError(f"a clipping threshold must be a finite number > 0, not {v}")
    return v


def grad_norms(grads: dict) -> dict[str, float]:
    """The Euclidean (Frobenius) norm of each parameter's gradient."""
    return {name: float(np.sqrt(np.vdot(g, g).real)) for name, g in grads.items()}


def global_norm(grads: dict) -> float:
    """‖g‖ over every parameter at once: the norm of all gradients laid end to end."""
    return math.sqrt(sum(n * n for n in grad_norms(grads).values()))


def clip_by_norm(grads: dict, max_norm: float, norm: float | None = None) -> tuple[float, bool]:
    """Scale every gradient by ``max_norm / ‖g‖`` when ``‖g‖ > max_norm`` (eqs. 10.48-10.49).

    ``norm`` may be given when it is already known.  Returns ``(‖g‖ before clipping,
    whether it clipped)``.  A non-finite norm is left alone (and reported as such):
    scaling by it would turn the gradient into NaNs without saying so."""
    v = _threshold(max_norm)
    norm = global_norm(grads) if norm is None else float(norm)
    if not math.isfinite(norm) or norm <= v:
        return norm, False
    scale = v / norm
    for g in grads.values():
        g *= scale
    return norm, True


def clip_elementwise(grads: dict, value: float) -> int:
    """Clip every entry of every gradient to ``[-value, value]``; returns how many entries were clipped."""
    v = _threshold(value)
    clipped = 0
    for g in grads.values():
        clipped += int(np.count_nonzero(np.abs(g) > v))
        np.clip(g, -v, v, out=g)
    return clipped
