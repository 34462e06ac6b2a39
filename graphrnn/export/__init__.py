"""A recurrence as standalone PyTorch or JAX code, with graphrnn's loss and gradients.

>>> import graphrnn as gr
>>> source = gr.export.to_torch(gr.load("fig10_3"))
>>> "def make_model(params)" in source and "import graphrnn" not in source
True

``to_torch(rec)`` writes a file defining ``make_model(params) -> torch.nn.Module`` whose ``forward(inputs)``
returns the total loss; ``to_jax(rec)`` one defining ``loss_fn(params, inputs)`` on ``jax.lax.scan``.  Both
read the notation only (:mod:`.ir` lowers it to loops over time; one printer per target prints them).
"""

from __future__ import annotations

from .ir import ExportError, Program, lower


def to_torch(rec, mode: str = "teacher") -> str:
    """The PyTorch source of ``rec`` (``mode`` "teacher", or "free" for a spec with `feedback` lines)."""
    from .torch_target import to_torch as _print

    return _print(lower(rec, mode))


def to_jax(rec, mode: str = "teacher") -> str:
    """The JAX source of ``rec``: ``loss_fn(params, inputs)`` built on ``jax.lax.scan`` (jittable)."""
    from .jax_target import to_jax as _print

    return _print(lower(rec, mode))


__all__ = ["ExportError", "Program", "lower", "to_jax", "to_torch"]
