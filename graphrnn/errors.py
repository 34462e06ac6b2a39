"""graphrnn's exception types.

Every error graphrnn raises on purpose is a :class:`GraphrnnError`, so a caller
(the CLI, a notebook) can tell "your input is wrong, here is how to fix it"
apart from a bug.  Each subclass also derives from the builtin exception a
Python user would expect (``ValueError`` for bad shapes, ``RuntimeError`` for a
misuse of backward, ...), so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class GraphrnnError(Exception):
    """Base class of every error graphrnn raises on purpose."""


class ShapeError(GraphrnnError, ValueError):
    """Operands whose shapes do not fit together (names both shapes)."""


class InputError(GraphrnnError, TypeError):
    """Data that cannot become a tensor (non-numeric arrays, bad targets)."""


class BackwardError(GraphrnnError, RuntimeError):
    """A misuse of ``backward()``: a non-scalar root without a seed, a freed graph."""


class AnomalyError(GraphrnnError, FloatingPointError):
    """A NaN or infinity appeared under :func:`graphrnn.detect_anomaly`."""


class GradcheckError(GraphrnnError, AssertionError):
    """Analytic and numerical gradients disagree."""
