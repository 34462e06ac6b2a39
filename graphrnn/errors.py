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


class SpecError(GraphrnnError, ValueError):
    """A recurrence spec that cannot be used: names the line, the variable and the fix.

    ``line`` and ``col`` are 1-based positions in the spec text (``None`` when the
    problem is not tied to one place); ``variable`` is the name concerned, if any.
    """

    def __init__(self, message: str, line: int | None = None, col: int | None = None,
                 variable: str | None = None, source: str | None = None):
        self.message, self.line, self.col, self.variable, self.source = message, line, col, variable, source
        where = ""
        if line is not None:
            where = f"{source + ':' if source else 'line '}{line}{':' + str(col) if col else ''}: "
        super().__init__(where + message)


class DataError(GraphrnnError, ValueError):
    """Arrays given to a run that do not match the recurrence (missing, wrong shape, too short)."""


class RenderError(GraphrnnError, RuntimeError):
    """A drawing that cannot be produced (for example graphviz's ``dot`` is missing)."""


class GraphrnnWarning(UserWarning):
    """Base class of the warnings graphrnn gives about a spec or a run that is valid but likely a mistake."""


class UnusedWarning(GraphrnnWarning):
    """A variable that no loss depends on, in a spec that has a loss: it is computed (or read) for nothing."""


class NameWarning(GraphrnnWarning):
    """A parameter named like another (``bb`` beside ``b``): a misspelling makes a second parameter."""
