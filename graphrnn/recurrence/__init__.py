"""Recurrences in the book's notation: parse, fold, unroll, run."""

from .recurrence import MODES, Recurrence, Variable
from .spec import FUNCTIONS, parse_spec
from .evaluate import NodeMap, Run, run
from .unroll import Unrolled, evaluation_order, key, plan_blocks

__all__ = ["FUNCTIONS", "MODES", "NodeMap", "Recurrence", "Run", "Unrolled", "Variable", "evaluation_order", "key",
           "parse_spec", "plan_blocks", "run"]
