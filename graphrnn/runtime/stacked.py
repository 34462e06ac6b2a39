"""A chunk of steps seen as one wide step: the engine's batched evaluation (taped, ``copies=False``).

On the taped strategy without dummy copies, a variable no cycle passes through
(:func:`.equations.batched_members`) is computed for steps ``a..b`` at once by
evaluating its equation in a :class:`Stacked` context, where a reference means those
steps side by side as columns.
"""

from __future__ import annotations

import numpy as np

from .. import engine as E
from ..engine.tensor import Tensor


class Stacked:
    """A view of a run's context in which a reference means steps ``a..b`` side by side."""

    stacked_mode = True

    def __init__(self, ctx, needed_by: str, a: int, b: int):
        self.ctx, self.needed_by, self.a, self.b = ctx, needed_by, a, b
        self.lean = ctx.lean
        self.T, self.dtype, self.rng, self.p = ctx.T, ctx.dtype, ctx.rng, ctx.p
        self.batch = ctx.batch * (b - a + 1)

    def param(self, name, t):
        return self.ctx.params[name]

    def context(self, name):
        key = (name, "context", self.a, self.b)
        got = self.ctx.stacked.get(key)
        if got is None:
            got = Tensor(np.tile(self.ctx.data[name], (1, self.b - self.a + 1)), name=name)
            self.ctx.stacked[key] = got
        return got

    def ref(self, name, offset, needed_by):
        ctx, a, b = self.ctx, self.a, self.b
        parts = ctx.batched.get(name)
        if offset == 0 and parts and parts[-1][1:] == (a, b):
            return parts[-1][0]
        key = (name, offset, a, b)
        got = ctx.stacked.get(key)
        if got is not None:
            return got
        var = ctx.rec.variables.get(name)
        if (var is not None and var.kind in ("input", "target") and a + offset >= 1
                and b + offset <= len(ctx.data[name])):
            series = ctx.data[name][a - 1 + offset:b + offset]
            arr = series.reshape(-1) if var.is_label else np.moveaxis(series, 0, 1).reshape(series.shape[1], -1)
            got = Tensor(arr, name=f"{name}[{a + offset}..{b + offset}]")
        else:
            pieces = [ctx.ref(name, t + offset, f"{self.needed_by}[{t}]") for t in range(a, b + 1)]
            if var is None or not var.is_label:
                # a learned initial value is one column shared by the batch: give it the batch's width
                width = ctx.batch
                pieces = [E.add(p, np.zeros((p.shape[0], width), dtype=p.dtype)) if p.ndim == 2 and
                          p.shape[1] != width else p for p in pieces]
            if all(not p.requires_grad for p in pieces):
                got = Tensor(np.concatenate([p.data for p in pieces], axis=-1))
            else:
                got = E.concat(pieces, axis=-1)
        ctx.stacked[key] = got
        return got


_GETITEM = E.REGISTRY["getitem"]


def step_slice(whole: Tensor, i: int, batch: int) -> Tensor:
    """The ``i``-th step's columns (counting from 0) of a variable computed for several steps at once."""
    return E.apply(_GETITEM, whole, index=(Ellipsis, slice(i * batch, (i + 1) * batch)))
