"""Running a recurrence: values, the loss and every gradient (see docs/internals.md).

The notation (:mod:`graphrnn.recurrence`) says *what* a recurrence computes; this
package computes it.  :func:`run` is the one entry point (``Recurrence.run`` and
``Unrolled.run`` delegate to it); it checks the call, plans it once (a
:class:`RunPlan`) and picks a strategy from what the call asks for:

* taped (:mod:`.taped`): engine nodes step by step, with the book's dummy copies
  ``W^(t)``; also overrides, ``retain_graph``, anomaly mode, gradient-path drawings;
* compiled (:mod:`.program`): ``copies=False``, a program fixed once with reused
  buffers and generated step code;
* segments (:mod:`.segments`): ``checkpoint=`` or ``truncate=``, the compiled program
  (or the taped engine) over consecutive segments.

The public pieces other packages use: :func:`run`, :class:`Run`, :func:`check_data` and
:func:`check_params` (the same checks as a run), :class:`StepContext` and
:func:`compile_expression` (evaluate single nodes, as the step-by-step check does), and
:func:`release_buffers`.

>>> import graphrnn as gr
>>> rec = gr.load("fig10_3", sizes={"H": 3})
>>> run(rec, rec.random_inputs(4), copies=False).grads["W"].shape
(3, 3)
"""

from .cache import release_buffers
from .data import check_data, check_params
from .result import NodeMap, Run, StepLosses
from .runner import RunPlan, run
from .taped import StepContext, compile_expression

__all__ = ["NodeMap", "Run", "RunPlan", "StepContext", "StepLosses", "check_data", "check_params",
           "compile_expression", "release_buffers", "run"]
