"""graphrnn: see and check how recurrent networks learn.

Chapter 10 of Goodfellow, Bengio and Courville's *Deep Learning*, executable:
a small autodiff engine with explicit graphs, recurrences written in the book's
notation, unrolled in time, drawn and checked step by step.
"""

from .engine import *  # noqa: F401,F403 - the engine's public names
from .engine import __all__ as _engine_all
from .errors import (
    AnomalyError, BackwardError, DataError, GradcheckError, GraphrnnError, GraphrnnWarning, InputError, NameWarning,
    RenderError, ShapeError, SpecError, UnusedWarning,
)
from .recurrence import Recurrence, Unrolled
from .runtime import Run
from .runtime import encdec as _encdec_runtime  # noqa: F401  (EncoderDecoder.run reaches it through _runtime())
from .zoo import load
from .derive import Derivation, derive
from . import render, verify  # noqa: E402  (drawings and checks, as gr.render / gr.verify)
from . import export  # noqa: E402  (standalone PyTorch / JAX code, as gr.export.to_torch / to_jax)
from . import train  # noqa: E402  (optimizers, clipping, the trainer, tasks, generation: gr.train)

__version__ = "0.1.0"
__all__ = list(_engine_all) + [
    "AnomalyError", "BackwardError", "DataError", "GradcheckError", "GraphrnnError", "InputError",
    "RenderError", "ShapeError", "SpecError", "GraphrnnWarning", "UnusedWarning", "NameWarning", "Recurrence",
    "Run", "Unrolled", "load", "Derivation", "derive",
]
from .explore import explore  # noqa: E402  (gr.explore: the page that steps through BPTT in a browser)
__all__.append("explore")
