"""Back-propagation through time in bounded memory: checkpointed and truncated BPTT.

Both split the unrolled graph into segments of consecutive steps and evaluate
one segment's graph at a time.  A first pass runs forward without recording a
graph and keeps, at each segment's start, only the values the segment reads from
before it (``h[a-1]`` for a one-step delay; more for longer delays).

* **Checkpointed** (Chen et al. 2016; Gruslys et al. 2016): segments of about √T
  steps are recomputed in reverse order, each with its boundary values as leaves,
  and back-propagated with the gradient that the later segments sent back to
  those values.  The gradients are those of the whole graph; memory holds √T
  boundaries and one segment's graph instead of T steps.
* **Truncated** BPTT(k1, k2) (Williams and Peng 1990): every k1 steps, the losses
  of those k1 steps are back-propagated through at most k2 steps, the state
  before that being taken as a constant.  Its gradient is that of the explicitly
  truncated graph, summed over the chunks.

Both need a recurrence whose computed values depend only on the past (no
``g[t+1]``), and no random draws (which a recomputation would not repeat).
"""

from __future__ import annotations

import math

import numpy as np

from .. import engine as E
from ..engine.tensor import Tensor
from ..errors import SpecError
from .spec import walk, Call, references


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


def _boundary(delays: dict[str, int], a: int) -> list[tuple[str, int]]:
    """The values from before step ``a`` that steps ``a`` and later read."""
    return [(u, s) for u, d in delays.items() for s in range(max(1, a - d), a)]


def _reset(ctx, carried: dict) -> None:
    """Forget every value of the context but the ``carried`` ones (a new segment starts)."""
    for store in (ctx.values, ctx.batched, ctx.slices, ctx.stacked, ctx.data_tensors, ctx.scans):
        store.clear()
    ctx.values.update(carried)


def _feeding_names(eqs: dict, delays: dict) -> set[str]:
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


def _feeding(blocks, eqs: dict, delays: dict) -> list:
    """The blocks the carried values depend on."""
    needed = _feeding_names(eqs, delays)
    return [b for b in blocks if needed.intersection(b.members)]


def forward_pass(ctx, blocks, batched, compiled, starts: list[int], delays, step_losses) -> tuple[float, dict]:
    """Run forward without a graph, segment by segment; return the loss and, for every
    segment start, the boundary values it reads from before it."""
    from .evaluate import evaluate_steps

    loss = 0.0
    checkpoints: dict[int, dict] = {}
    with E.no_grad():
        for i, a in enumerate(starts):
            b = starts[i + 1] - 1 if i + 1 < len(starts) else ctx.T
            total = evaluate_steps(ctx, blocks, batched, compiled, a, b, step_losses)
            if total is not None:
                loss += float(total.data)
            if b < ctx.T:
                saved = {vs: ctx.ref(vs[0], vs[1], "").data for vs in _boundary(delays, b + 1)}
                checkpoints[b + 1] = saved
                _reset(ctx, {vs: Tensor(v) for vs, v in saved.items()})
    return loss, checkpoints


def default_segment(T: int) -> int:
    return max(1, math.isqrt(T - 1) + 1) if T > 1 else 1


def checkpointed(ctx_factory, blocks, batched, compiled, compiled_eqs, T: int, segment: int, delays,
                 step_losses) -> float:
    """Gradients of the whole loss, keeping ``T / segment`` boundaries and one segment's graph."""
    from .evaluate import evaluate_steps

    starts = list(range(1, T + 1, segment))
    # the first pass only carries the state forward; the losses are computed in the second
    _, checkpoints = forward_pass(ctx_factory(), _feeding(blocks, compiled_eqs, delays), batched, compiled, starts,
                                  delays, {})
    loss = 0.0
    sent_back: dict = {}  # (variable, step) -> gradient, from the segment after this one
    for i in reversed(range(len(starts))):
        a = starts[i]
        b = starts[i + 1] - 1 if i + 1 < len(starts) else T
        ctx = ctx_factory()
        leaves = {}
        for vs, value in checkpoints.get(a, {}).items():
            leaf = Tensor(value, requires_grad=value.dtype.kind == "f")
            ctx.values[vs] = leaves[vs] = leaf
        objective = evaluate_steps(ctx, blocks, batched, compiled, a, b, step_losses)
        if objective is not None:
            loss += float(objective.data)
        for (u, s), g in sent_back.items():
            # the later segments' dependence on this value, as a term whose gradient is g
            term = E.sum(ctx.ref(u, s, "") * Tensor(g))
            objective = term if objective is None else objective + term
        if objective is not None and objective.requires_grad:
            objective.backward()
        sent_back = {vs: leaf.grad for vs, leaf in leaves.items() if leaf.grad is not None}
    return loss


def truncated(ctx_factory, blocks, batched, compiled, T: int, k1: int, k2: int, delays, step_losses) -> float:
    """BPTT(k1, k2): the summed gradients of each chunk of k1 losses through at most k2 steps."""
    from .evaluate import evaluate_steps

    chunks = [(a, first_loss, e) for a, e, first_loss in _spans(T, None, (k1, k2))]
    starts = sorted({1} | {a for a, _, _ in chunks})
    loss, checkpoints = forward_pass(ctx_factory(), blocks, batched, compiled, starts, delays, step_losses)
    for a, first_loss, e in chunks:
        ctx = ctx_factory()
        for vs, value in checkpoints.get(a, {}).items():
            ctx.values[vs] = Tensor(value)  # the truncation: a constant, no gradient flows past it
        objective = evaluate_steps(ctx, blocks, batched, compiled, a, e, {}, loss_from=first_loss)
        if objective is not None and objective.requires_grad:
            objective.backward()
    return loss


# ------------------------------------------------------------------------------ with compiled programs


def program_segments(rec, eqs, T: int, data: dict, params: dict, mode: str, dtype, segment_programs,
                     checkpoint, truncate, delays):
    """Checkpointed or truncated BPTT with each segment run by a compiled program (program.py).

    ``segment_programs(length)`` gives the program of a segment of that many steps, or
    None; then this returns None and the caller runs the segments on the engine.
    Returns ``(loss, the loss of each step, parameter gradients)``."""
    if any(ref.name not in eqs and ref.offset != 0 for eq in eqs.values() for ref in references(eq.expr)):
        return None  # data read at other steps than t: a segment would need data from beside it
    spans = _spans(T, checkpoint, truncate)
    if checkpoint:
        pieces = [(a, b) for a, b, _ in spans]
    else:  # the forward pass stops at every window's start
        starts = sorted({a for a, _, _ in spans})
        pieces = [(a, starts[i + 1] - 1 if i + 1 < len(starts) else T) for i, a in enumerate(starts)]
    lengths = {b - a + 1 for a, b in pieces} | {b - a + 1 for a, b, _ in spans}
    if min(lengths) < max(delays.values(), default=0):
        return None  # a segment shorter than a delay would read values from two segments back
    programs = {}
    for n in sorted(lengths):
        programs[n] = segment_programs(n)
        if programs[n] is None:
            return None
    sliced = {n: d for n, d in data.items() if rec.variables[n].kind == "context"}

    held = []

    def run(a, b, backward, **kwargs):
        """One segment; the workspace of the segment before it is released (its values were copied)."""
        while held:
            held.pop().release()
        part = dict(sliced)
        part.update({n: d[a - 1:b] for n, d in data.items() if n not in sliced})
        got = programs[b - a + 1].run(params, part, backward, **kwargs)
        held.append(got[0])
        return got

    def boundary(ws, a, b):
        """The values the steps after b read from steps up to b, named by their steps after b."""
        return {(u, s - b): ws.steps(u, s - a + 1, s - a + 1).copy() for u, d in delays.items()
                for s in range(b - d + 1, b + 1)}

    grads = {n: np.zeros_like(p) for n, p in params.items()}
    step_losses = np.zeros(T)
    feeding = _feeding_names(eqs, delays)
    if checkpoint:
        # first pass: carry the state forward, keeping it at every segment's start
        checkpoints = {1: None}
        carry = None
        for a, b in pieces[:-1]:
            ws, _, _ = run(a, b, False, carry=carry, only=feeding)
            carry = checkpoints[b + 1] = boundary(ws, a, b)
        loss = 0.0
        sent_back = None
        for a, b, _ in reversed(spans):
            program = programs[b - a + 1]
            seed = None if sent_back is None else {(u, s + b - a + 1): g for (u, s), g in sent_back.items()}
            ws, part, got = run(a, b, True, carry=checkpoints[a], seed=seed)
            loss += part
            step_losses[a - 1:b] = program.step_losses(ws)
            for n in grads:
                grads[n] += got[n]
            sent_back = program.boundary_grads(ws, delays) if a > 1 else None
        while held:
            held.pop().release()
        return loss, step_losses, grads
    # truncated: a forward pass for the losses and the states at the windows' starts, then each window
    checkpoints, carry, loss = {1: None}, None, 0.0
    for a, b in pieces:
        ws, part, _ = run(a, b, False, carry=carry)
        loss += part
        step_losses[a - 1:b] = programs[b - a + 1].step_losses(ws)
        if b < T:
            carry = checkpoints[b + 1] = boundary(ws, a, b)
    for a, e, first_loss in spans:
        _, _, got = run(a, e, True, carry=checkpoints[a], loss_from=first_loss - a + 1)
        for n in grads:
            grads[n] += got[n]
    while held:
        held.pop().release()
    return loss, step_losses, grads


def _spans(T: int, checkpoint, truncate):
    """The segments ``(first step, last step, first step whose loss counts)`` to run backward."""
    if checkpoint:
        segment = default_segment(T) if checkpoint is True else int(checkpoint)
        return [(a, min(a + segment - 1, T), a) for a in range(1, T + 1, segment)]
    k1, k2 = truncate
    ends = list(range(k1, T + 1, k1))
    if not ends or ends[-1] != T:
        ends.append(T)
    spans, previous = [], 0
    for e in ends:
        spans.append((max(1, e - k2 + 1), e, previous + 1))
        previous = e
    return spans
