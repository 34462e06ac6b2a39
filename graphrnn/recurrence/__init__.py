"""Recurrences in the book's notation: parse, fold, unroll (running them is :mod:`graphrnn.runtime`)."""

from .padded import Padded, padded
from .recurrence import MODES, Recurrence, Variable
from .spec import FUNCTIONS, parse_spec
from .unroll import Unrolled, evaluation_order, key, plan_blocks

__all__ = ["FUNCTIONS", "MODES", "Padded", "Recurrence", "Unrolled", "Variable", "evaluation_order", "key", "padded",
           "parse_spec", "plan_blocks"]


def __getattr__(name):
    # what running produces moved to graphrnn.runtime; the old names still resolve (lazily, so the
    # notation never imports the runtime when it is loaded)
    if name in ("Run", "NodeMap", "run"):
        from .. import runtime

        return getattr(runtime, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
