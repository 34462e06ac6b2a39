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

Both are run by :func:`run_segments` as compiled programs of the segments'
lengths when they can (:func:`program_segments`), on the taped engine otherwise.
Both need a recurrence whose computed values depend only on the past (no
``g[t+1]``), and no random draws (which a recomputation would not repeat).
"""

from __future__ import annotations

import math

import numpy as np

from .. import engine as E
from ..engine.tensor import Tensor
from ..errors import DataError
from ..recurrence.spec import references
from .equations import check_segmentable, feeding_names, read_delays
from .data import state_delays, state_of
from .result import NodeMap, Run, StepLosses
from .taped import StepContext, evaluate_steps, no_cyclic_gc


def tau_reads(eqs: dict) -> list[tuple[str, int]]:
    """The computed values the equations at tau read, as (variable, offset from tau)."""
    return [(r.name, r.offset) for eq in eqs.values() if eq.anchor == "tau" for r in references(eq.expr)
            if r.name in eqs]


def _uncovered(span, T: int, reads, delays) -> list[str]:
    """What the equations at tau read from before the segment ``span`` (ending at T) and that is not
    carried into it (the states read k steps back carry their last k values)."""
    a, b = span
    return [f"{u}[tau{k}]" for u, k in reads if b == T and b - a + 1 + k < 1 - delays.get(u, 0) and T + k >= 1]


def _check_tau_window(plan, delays) -> None:
    """Truncated BPTT keeps, before a window, only the states as constants; an equation at tau reading
    another value from before its window would need more than that: refused, with the way out."""
    reads = tau_reads(plan.eqs)
    for a, e, _ in _spans(plan.T, None, plan.truncate):
        missing = _uncovered((a, e), plan.T, reads, delays)
        if missing:
            raise ValueError(f"truncated BPTT's last window (steps {a}..{e}) does not reach {missing[0]}, which "
                             f"an equation at tau reads; make k2 at least {1 + max(-k for _, k in reads)} or use checkpoint=")


def segment_length(checkpoint, T: int) -> int | None:
    """The checkpoint segment's length asked for (``True``: about √T), or None for no checkpointing."""
    if not checkpoint:
        return None
    segment = default_segment(T) if checkpoint is True else int(checkpoint)
    if segment < 1:
        raise ValueError(f"the checkpoint segment must be at least 1 step, not {checkpoint}")
    return segment


def check_request(checkpoint, truncate, overrides, backward: bool) -> None:
    """Reject what segments cannot do, with the reason (before any work is done)."""
    if not (checkpoint or truncate):
        return
    if checkpoint and truncate:
        raise ValueError("choose checkpoint or truncate, not both")
    what = "checkpointed BPTT" if checkpoint else "truncated BPTT"
    if not backward:
        raise ValueError(f"{what} is a way to compute gradients; with backward=False, run normally")
    if overrides:
        raise ValueError(f"overrides replace nodes of the whole unrolled graph, which {what} never holds; "
                         f"run without {'checkpoint' if checkpoint else 'truncate'}")
    if truncate:
        k1, k2 = truncate
        if not (isinstance(k1, int) and isinstance(k2, int) and 1 <= k1 <= k2):
            raise ValueError(f"truncate=(k1, k2) needs whole numbers with 1 <= k1 <= k2 (every k1 steps, "
                             f"back-propagate k2 steps); got {truncate!r}")


def run_segments(plan) -> Run:
    """Checkpointed or truncated BPTT of ``plan`` (a :class:`~.runner.RunPlan` asking for one of them)."""
    rec = plan.rec
    what = "checkpointed BPTT" if plan.checkpoint else "truncated BPTT"
    check_segmentable(rec, plan.eqs, plan.mode, what)
    delays = read_delays(plan.eqs)
    if plan.truncate:
        _check_tau_window(plan, delays)
    got = program_segments(plan, delays) if plan.compilable else None
    # on the engine, a segment also keeps what the equations at tau read from before it (o[tau-2])
    for u, k in tau_reads(plan.eqs):
        delays[u] = max(delays.get(u, 0), -k)
    leaves = plan.leaves()
    contexts = {n for n, v in rec.variables.items() if v.kind == "context" and plan.data[n].dtype.kind == "f"}
    if got is not None:
        loss, per_step, grads, final = got
        # a loss only at the last step (L[tau]) has that step alone
        first = min((plan.T if plan.eqs[n].anchor == "tau" else 1 for n in rec.losses if n in plan.eqs), default=1)
        step_losses = StepLosses(per_step, first) if rec.losses else {}
    else:
        step_losses = {}
        context_grads = {n: np.zeros_like(plan.data[n]) for n in contexts}
        with no_cyclic_gc():
            if plan.checkpoint:
                loss, final = _checkpointed(plan, leaves, delays, (step_losses, context_grads))
            else:
                loss, final = _truncated(plan, leaves, delays, (step_losses, context_grads))
        grads = {name: leaf.grad if leaf.grad is not None else np.zeros_like(leaf.data)
                 for name, leaf in leaves.items()}
        grads.update(context_grads)
    context_grads = {n: grads.pop(n) for n in contexts}
    if not np.isfinite(loss):
        raise DataError("the forward pass produced a non-finite loss; the parameters or data are too large "
                        "(try smaller weights, or gr.detect_anomaly() to find the op)")
    run = Run(rec, plan.T, plan.mode, loss, NodeMap(dict(plan.params), {}), NodeMap(grads, {}), {}, step_losses,
              dict(leaves), None, {}, context_grads=context_grads)
    run._final_state = state_of(final.__getitem__, state_delays(rec, plan.eqs), plan.T)
    return run


# ------------------------------------------------------------------------------ on the taped engine


def _context(plan, leaves) -> StepContext:
    """A fresh taped context for one segment (lean: no dummy copies, temporaries released)."""
    ctx = StepContext(plan.rec, plan.T, plan.data, leaves, plan.dtype, mode=plan.mode, p=plan.p,
                      rng=np.random.default_rng(plan.seed))
    ctx.lean, ctx.eqs, ctx.wants_grads = True, plan.eqs, True
    ctx.start_from(plan.initial)
    return ctx


def _boundary(delays: dict[str, int], a: int) -> list[tuple[str, int]]:
    """The values from before step ``a`` that steps ``a`` and later read."""
    return [(u, s) for u, d in delays.items() for s in range(max(1, a - d), a)]


def _reset(ctx, carried: dict) -> None:
    """Forget every value of the context but the ``carried`` ones (a new segment starts)."""
    for store in (ctx.values, ctx.data_tensors):
        store.clear()
    ctx.values.update(carried)


def _forward_pass(ctx, plan, blocks, starts: list[int], delays, step_losses) -> tuple[float, dict]:
    """Run forward without a graph, segment by segment; return the loss and, for every
    segment start (and for T + 1: the final state), the boundary values it reads from before it."""
    loss = 0.0
    checkpoints: dict[int, dict] = {}
    with E.no_grad():
        for i, a in enumerate(starts):
            b = starts[i + 1] - 1 if i + 1 < len(starts) else ctx.T
            total = evaluate_steps(ctx, plan, (a, b), step_losses, blocks=blocks)
            if total is not None:
                loss += float(total.data)
            if b < ctx.T:
                saved = {vs: ctx.ref(vs[0], vs[1], "").data for vs in _boundary(delays, b + 1)}
                checkpoints[b + 1] = saved
                _reset(ctx, {vs: Tensor(v) for vs, v in saved.items()})
            else:  # the final state: also the values before step 1 when the run is shorter than a delay
                checkpoints[b + 1] = {(u, s): _columns(ctx.ref(u, s, "").data, ctx.batch) for u, d in delays.items()
                                      for s in range(b + 1 - d, b + 1)}
    return loss, checkpoints


def _columns(value, batch: int):
    """A value as one column per sequence (a learned initial state is one column shared by the batch)."""
    if value.ndim == 2 and value.shape[1] != batch:
        return np.repeat(value, batch, axis=1)
    return value


def default_segment(T: int) -> int:
    """About √T steps a segment: √T boundaries kept, and one segment's graph."""
    return max(1, math.isqrt(T - 1) + 1) if T > 1 else 1


def _add_context_grads(ctx, into: dict) -> None:
    """Add what a segment's backward pass sent to each context (its own leaf) to ``into``."""
    for (name, s), leaf in ctx.data_tensors.items():
        if s == 0 and name in into and leaf.grad is not None:
            into[name] += leaf.grad


def _checkpointed(plan, leaves, delays, out) -> tuple[float, dict]:
    """Gradients of the whole loss, keeping ``T / segment`` boundaries and one segment's graph;
    returns the loss and the final state (``{(state, step): array}``).  ``out``: the dicts the step
    losses and the contexts' gradients are added to."""
    step_losses, context_grads = out
    T = plan.T
    starts = list(range(1, T + 1, plan.checkpoint))
    # the first pass only carries the state forward; the losses are computed in the second
    needed = feeding_names(plan.eqs, delays)
    feeding = [b for b in plan.blocks if needed.intersection(b.members)]
    _, checkpoints = _forward_pass(_context(plan, leaves), plan, feeding, starts, delays, {})
    loss = 0.0
    sent_back: dict = {}  # (variable, step) -> gradient, from the segment after this one
    for i in reversed(range(len(starts))):
        a = starts[i]
        b = starts[i + 1] - 1 if i + 1 < len(starts) else T
        ctx = _context(plan, leaves)
        boundary = {}
        for vs, value in checkpoints.get(a, {}).items():
            leaf = Tensor(value, requires_grad=value.dtype.kind == "f")
            ctx.values[vs] = boundary[vs] = leaf
        objective = evaluate_steps(ctx, plan, (a, b), step_losses)
        if objective is not None:
            loss += float(objective.data)
        for (u, s), g in sent_back.items():
            # the later segments' dependence on this value, as a term whose gradient is g
            term = E.sum(ctx.ref(u, s, "") * Tensor(g))
            objective = term if objective is None else objective + term
        if objective is not None and objective.requires_grad:
            objective.backward()
            _add_context_grads(ctx, context_grads)
        sent_back = {vs: leaf.grad for vs, leaf in boundary.items() if leaf.grad is not None}
    return loss, checkpoints[T + 1]


def _truncated(plan, leaves, delays, out) -> tuple[float, dict]:
    """BPTT(k1, k2): the summed gradients of each chunk of k1 losses through at most k2 steps;
    returns the loss and the final state (``{(state, step): array}``); ``out`` as for
    :func:`_checkpointed`."""
    step_losses, context_grads = out
    chunks = [(a, first_loss, e) for a, e, first_loss in _spans(plan.T, None, plan.truncate)]
    starts = sorted({1} | {a for a, _, _ in chunks})
    loss, checkpoints = _forward_pass(_context(plan, leaves), plan, plan.blocks, starts, delays, step_losses)
    for a, first_loss, e in chunks:
        ctx = _context(plan, leaves)
        for vs, value in checkpoints.get(a, {}).items():
            ctx.values[vs] = Tensor(value)  # the truncation: a constant, no gradient flows past it
        objective = evaluate_steps(ctx, plan, (a, e), {}, loss_from=first_loss)
        if objective is not None and objective.requires_grad:
            objective.backward()
            _add_context_grads(ctx, context_grads)
    return loss, checkpoints[plan.T + 1]


# ------------------------------------------------------------------------------ with compiled programs


def program_segments(plan, delays):
    """Checkpointed or truncated BPTT with each segment run by a compiled program (program.py).

    Returns ``(loss, the loss of each step, parameter gradients, the final state as
    {(state, step): array})``, or None when a segment cannot be compiled (then the caller
    runs the segments on the engine).  The first segment starts from ``plan.initial``."""
    rec, eqs, T, data, params = plan.rec, plan.eqs, plan.T, plan.data, plan.params
    checkpoint, truncate = plan.checkpoint, plan.truncate
    spans = _spans(T, checkpoint, truncate)
    if checkpoint:
        pieces = [(a, b) for a, b, _ in spans]
    else:  # the forward pass stops at every window's start
        starts = sorted({a for a, _, _ in spans})
        pieces = [(a, starts[i + 1] - 1 if i + 1 < len(starts) else T) for i, a in enumerate(starts)]
    lengths = {b - a + 1 for a, b in pieces} | {b - a + 1 for a, b, _ in spans}
    # o[tau] is the sequence's last step: it runs in the segments that end at T (and only there), which
    # must hold every computed value it reads, in their steps or in the values carried in before them
    # (q[tau] = Q @ g[tau-2] with g read one step back needs a last segment of 2 steps)
    reads = tau_reads(eqs)
    if any(_uncovered(span, T, reads, delays) for span in pieces + [(a, b) for a, b, _ in spans]):
        return None
    # a segment shorter than a delay reads values from two segments back: they are in the columns before
    # its step 1, where the carry put them (boundary() reads those too), and their gradients go back there
    programs = {}
    for n in sorted(lengths):
        programs[n] = plan.segment(n).program()
        if programs[n] is None:
            return None

    held = []

    def run(a, b, backward, **kwargs):
        """One segment; the workspace of the segment before it is released (its values were copied)."""
        while held:
            held.pop().release()
        # the whole data, read from step a on: a segment may read data beside it (x[t+1], x[t-1])
        got = programs[b - a + 1].run(params, data, backward, shift=a - 1, skip_tau=b < T, **kwargs)
        held.append(got[0])
        return got

    def boundary(ws, a, b, shift=0):
        """The values the steps after b read from steps up to b, named by their steps after b
        (``shift=b``: by their own steps)."""
        return {(u, s - b + shift): ws.steps(u, s - a + 1, s - a + 1).copy() for u, d in delays.items()
                for s in range(b - d + 1, b + 1)}

    grads = programs[max(lengths)].zero_grads()  # the parameters' and the contexts'
    step_losses = np.zeros(T)
    feeding = feeding_names(eqs, delays)
    if checkpoint:
        # first pass: carry the state forward, keeping it at every segment's start
        checkpoints = {1: plan.initial or None}
        carry = checkpoints[1]
        for a, b in pieces[:-1]:
            ws, _, _ = run(a, b, False, carry=carry, only=feeding)
            carry = checkpoints[b + 1] = boundary(ws, a, b)
        loss = 0.0
        sent_back = None
        for a, b, _ in reversed(spans):
            program = programs[b - a + 1]
            seed = None if sent_back is None else {(u, s + b - a + 1): g for (u, s), g in sent_back.items()}
            ws, part, got = run(a, b, True, carry=checkpoints[a], seed=seed)
            if b == T:
                final = boundary(ws, a, b, shift=T)
            loss += part
            step_losses[a - 1:b] = program.step_losses(ws)
            for n in grads:
                grads[n] += got[n]
            sent_back = program.boundary_grads(ws, delays) if a > 1 else None
        while held:
            held.pop().release()
        return loss, step_losses, grads, final
    # truncated: a forward pass for the losses and the states at the windows' starts, then each window
    checkpoints, carry, loss = {1: plan.initial or None}, plan.initial or None, 0.0
    for a, b in pieces:
        ws, part, _ = run(a, b, False, carry=carry)
        loss += part
        step_losses[a - 1:b] = programs[b - a + 1].step_losses(ws)
        if b < T:
            carry = checkpoints[b + 1] = boundary(ws, a, b)
        else:
            final = boundary(ws, a, b, shift=T)
    for a, e, first_loss in spans:
        # the truncation makes the computed values before a window constants; a value from before step 1
        # (a window shorter than a delay) is the initial one, and a learned one still gets its gradient
        carry = {(u, s): v for (u, s), v in (checkpoints[a] or {}).items()
                 if a - 1 + s >= 1 or (u, a - 1 + s) in plan.initial}
        _, _, got = run(a, e, True, carry=carry or None, loss_from=first_loss - a + 1)
        for n in grads:
            grads[n] += got[n]
    while held:
        held.pop().release()
    return loss, step_losses, grads, final

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

