"""The fast path of a run: every variable no cycle passes through, for all steps at once.

The unrolled graph shows which computations do not depend on the recurrence: the
output layer and the loss of every step (``o[t] = c + V @ h[t]``), and the input
projections inside a recurrent equation (``U @ x[t]`` in ``tanh(b + W @ h[t-1] +
U @ x[t])``).  Because every operation of the notation treats the columns of a
batch independently, such a variable can be computed for all T steps in one go by
laying the steps side by side as columns: ``V @ [h[1] ... h[T]]`` is one matrix
product instead of T, and so is its gradient ``∇V`` (one product over the stacked
steps instead of T outer products).

Two pieces:

* :func:`fast_equations` moves the terms of a recurrent equation that read only
  data and parameters (``b + U @ x[t]``) into a variable of their own (named
  ``h:in``), which is not recurrent;
* :func:`batched_members` picks the variables that may be computed for all steps
  at once: not on a cycle, defined at every step, and combining per-step losses
  only linearly (a loss per step is the sum of one loss per column).

Values and gradients are the same as the step-by-step evaluation (the sums are
only associated differently, so they agree to rounding).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .. import engine as E
from ..engine.tensor import Tensor
from .spec import LOSSES, Bin, Call, Equation, Num, Ref, Unary, references, walk


def _terms(expr, sign=1):
    """Flatten a chain of + and - into (sign, term) pairs."""
    if isinstance(expr, Bin) and expr.op in "+-" and len(expr.op) == 1:
        return _terms(expr.left, sign) + _terms(expr.right, sign if expr.op == "+" else -sign)
    if isinstance(expr, Unary) and expr.op == "-":
        return _terms(expr.operand, -sign)
    return [(sign, expr)]


def _join(terms, like):
    out = None
    for sign, term in terms:
        if out is None:
            out = term if sign > 0 else Unary(like.line, like.col, "-" + term.text, "-", term)
        else:
            out = Bin(like.line, like.col, f"{out.text} {'+' if sign > 0 else '-'} {term.text}",
                      "+" if sign > 0 else "-", out, term)
    return out


def _static(expr, data: set[str]) -> bool:
    """True when ``expr`` reads only data, contexts, parameters and numbers."""
    return all(n.name in data for n in walk(expr) if isinstance(n, Ref))


def _has_matmul(expr) -> bool:
    return any(isinstance(n, Bin) and n.op == "@" for n in walk(expr))


def fast_equations(rec, mode: str) -> dict[str, Equation]:
    """The mode's equations with the static terms of each recurrent equation split off."""
    cache = rec.__dict__.setdefault("_fast_equations", {})
    if mode in cache:
        return cache[mode]
    eqs = dict(rec.mode_equations(mode))
    data = {n for n, v in rec.variables.items() if v.kind in ("input", "target")}
    recurrent = {name for name, eq in eqs.items() if any(r.name in eqs for r in references(eq.expr))}
    out: dict[str, Equation] = {}
    for name, eq in eqs.items():
        if name not in recurrent or eq.anchor != "t":
            out[name] = eq
            continue
        hoisted: list[Equation] = []

        def split(e):
            if isinstance(e, Bin) and e.op in ("+", "-"):
                terms = _terms(e)
                static = [(s, t) for s, t in terms if _static(t, data)]
                dynamic = [(s, t) for s, t in terms if not _static(t, data)]
                if dynamic and static and any(_has_matmul(t) for _, t in static):
                    new = f"{name}:in{len(hoisted) or ''}"
                    hoisted.append(Equation(new, "t", _join(static, e), eq.line, eq.text))
                    dynamic = [(s, split(t)) for s, t in dynamic]
                    ref = Ref(e.line, e.col, f"{new}[t]", new, 0, "t")
                    return _join(dynamic + [(1, ref)], e)
                return _join([(s, split(t)) for s, t in terms], e)
            if isinstance(e, Call) and e.fn not in LOSSES:
                return replace(e, args=tuple(split(a) for a in e.args))
            if isinstance(e, Unary):
                return replace(e, operand=split(e.operand))
            if isinstance(e, Bin):
                return replace(e, left=split(e.left), right=split(e.right))
            return e

        expr = split(eq.expr)
        for h in hoisted:
            out[h.name] = h
        out[name] = replace(eq, expr=expr)
    cache[mode] = out
    return out


def _loss_valued(expr) -> bool:
    return isinstance(expr, Call) and expr.fn in LOSSES


def _linear_in_losses(expr) -> bool:
    """Losses (one number per step) may only be added, subtracted, negated or scaled by numbers."""
    def scalar(e):  # does e evaluate to one number per step?
        if _loss_valued(e):
            return True
        if isinstance(e, Num):
            return True
        if isinstance(e, Unary):
            return scalar(e.operand)
        if isinstance(e, Bin):
            return scalar(e.left) and scalar(e.right)
        return False

    def ok(e):
        if _loss_valued(e):
            return True
        if isinstance(e, Unary):
            return ok(e.operand)
        if isinstance(e, Bin):
            if e.op in "+-" and len(e.op) == 1:
                both = scalar(e.left) and scalar(e.right)
                if not both:
                    return not (scalar(e.left) or scalar(e.right))
                return not isinstance(e.left, Num) and not isinstance(e.right, Num) and ok(e.left) and ok(e.right)
            if e.op in ("*", "/"):
                if scalar(e.left) or scalar(e.right):
                    return isinstance(e.right, Num) and ok(e.left) or (e.op == "*" and isinstance(e.left, Num) and ok(e.right))
            return True
        return True

    return ok(expr)


def batched_members(rec, eqs: dict[str, Equation], blocks) -> set[str]:
    """The variables to compute for all steps at once."""
    scalar_vars = {n for n, v in rec.variables.items() if v.shape == ()}
    chosen = set()
    for block in blocks:
        if block.cyclic or len(block.members) != 1:
            continue
        name = block.members[0]
        eq = eqs[name]
        if eq.anchor != "t" or not _linear_in_losses(eq.expr):
            continue
        reads = {r.name for r in references(eq.expr)}
        if any(r in scalar_vars for r in reads):
            continue  # a per-step number is not a column per sequence
        chosen.add(name)
    # a per-step loss computed for all steps at once holds one number per column: only the
    # total and other batched variables may read it
    readers: dict[str, set[str]] = {}
    for name, eq in eqs.items():
        for r in references(eq.expr):
            readers.setdefault(r.name, set()).add(name)
    changed = True
    while changed:
        changed = False
        for name in list(chosen):
            if name in scalar_vars and not readers.get(name, set()) <= chosen:
                chosen.discard(name)
                changed = True
    return chosen


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
