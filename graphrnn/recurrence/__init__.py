"""Recurrences in the book's notation: parse, fold, unroll, run."""

from .recurrence import MODES, Recurrence, Variable
from .spec import FUNCTIONS, parse_spec
from .unroll import Run, Unrolled, evaluation_order, key, run

__all__ = ["FUNCTIONS", "MODES", "Recurrence", "Run", "Unrolled", "Variable", "evaluation_order", "key",
           "parse_spec", "run"]
