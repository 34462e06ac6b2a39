"""The equations a run evaluates, rewritten for speed, and what they allow.

Notation in, notation out: nothing here runs anything.

* :func:`fast_equations` moves the terms of a recurrent equation that read only data
  and parameters (``b + U @ x[t]`` in ``h[t] = tanh(b + W @ h[t-1] + U @ x[t])``) into
  a variable of their own (``h:in``), which is not recurrent and so can be computed
  for many steps at once (the steps side by side as columns: every operation of the
  notation treats the columns of a batch independently);
* :func:`batched_members` picks the variables that may be computed for all steps at
  once: not on a cycle, defined at every step, combining per-step losses only
  linearly (a loss per step is the sum of one loss per column);
* :func:`read_delays`, :func:`check_segmentable` and :func:`feeding_names` say what
  checkpointed and truncated BPTT (:mod:`.segments`) need to carry between segments.

>>> import graphrnn as gr
>>> rec = gr.load("fig10_3")
>>> sorted(fast_equations(rec, "teacher"))
['L', 'h', 'h:in', 'o']
>>> read_delays(fast_equations(rec, "teacher"))
{'h': 1}
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import SpecError
from ..recurrence.spec import LOSSES, Bin, Call, Equation, Num, Ref, Unary, references, walk


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
    return out


def _loss_valued(expr) -> bool:
    return isinstance(expr, Call) and expr.fn in LOSSES


def _linear_in_losses(expr) -> bool:
    """Losses (one number per step) may only be added, subtracted, negated or scaled by numbers."""
    if not any(_loss_valued(n) for n in walk(expr)):
        return True  # no loss in it: nothing to keep linear (`-1.5 * (U @ x[t])` is fine)
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
    """The variables to compute for all steps at once (remembered on the recurrence for the same
    equations and blocks, which its runtime cache hands out again run after run)."""
    slot = rec.__dict__.setdefault("_runtime", {"equations": {}, "blocks": {}, "compiled": {}, "programs": {}})
    memo = slot.setdefault("batched", {})  # the runtime's slot on the recurrence (cache.py)
    got = memo.get((id(eqs), id(blocks)))
    if got is not None and got[0] is eqs and got[1] is blocks:
        return set(got[2])
    if len(memo) > 16:
        memo.clear()
    chosen = _batched_members(rec, eqs, blocks)
    memo[(id(eqs), id(blocks))] = (eqs, blocks, frozenset(chosen))
    return chosen


def _batched_members(rec, eqs, blocks) -> set[str]:
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



# ------------------------------------------------------------------------------ segments


def read_delays(eqs: dict) -> dict[str, int]:
    """For each computed variable, the largest delay with which an equation reads it."""
    delays: dict[str, int] = {}
    for eq in eqs.values():
        for ref in references(eq.expr):
            if ref.name in eqs and ref.anchor == "t" and ref.delay > 0:
                delays[ref.name] = max(delays.get(ref.name, 0), ref.delay)
    return delays


def segmentable(rec, eqs: dict, mode: str) -> bool:
    """Whether the steps can be evaluated in consecutive segments, with the same results."""
    try:
        check_segmentable(rec, eqs, mode, "")
    except SpecError:
        return False
    return True


def check_segmentable(rec, eqs: dict, mode: str, what: str) -> None:
    for name, eq in eqs.items():
        for ref in references(eq.expr):
            if ref.name in eqs and ref.delay < 0:
                raise SpecError(f"{what} runs forwards in time, but `{ref.text}` in the equation of {name} reads a "
                                f"later step; run this recurrence without {what}", eq.line, variable=ref.name)
        if any(isinstance(n, Call) and n.fn == "sample" for n in walk(eq.expr)):
            raise SpecError(f"{what} recomputes the forward pass, which would draw new samples for "
                            f"`sample(...)` in the equation of {name}", eq.line, variable=name)
    if mode == "scheduled":
        raise SpecError(f"{what} recomputes the forward pass, which would toss new coins for scheduled "
                        f"sampling; use mode 'teacher' or 'free'")



def feeding_names(eqs: dict, delays: dict) -> set[str]:
    """The variables the carried values depend on (the rest, such as the outputs and the
    losses, need not run in the first pass)."""
    needed, stack = set(), list(delays)
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        stack.extend(r.name for r in references(eqs[name].expr) if r.name in eqs)
    return needed

