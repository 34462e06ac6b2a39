"""What the runtime keeps on a :class:`~graphrnn.Recurrence` between runs.

Planning a run (rewriting the equations, ordering the blocks, compiling the
expressions, compiling a program with its buffers) costs more than a short run, and
it depends only on the recurrence and on the kind of run.  So it is done once and
kept, in one slot of the recurrence (``rec.__dict__["_runtime"]``), which the
notation layer never reads; :func:`release_buffers` empties its programs.

>>> import graphrnn as gr
>>> rec = gr.load("fig10_3", sizes={"H": 3})
>>> run = rec.run(rec.random_inputs(4), copies=False)
>>> release_buffers(rec) > 0, release_buffers(rec)
(True, 0)
"""

from __future__ import annotations

from ..recurrence.unroll import plan_blocks
from .equations import fast_equations

#: compiled programs kept per recurrence (the most recently used ones)
PROGRAMS_KEPT = 8


def _slot(rec) -> dict:
    return rec.__dict__.setdefault("_runtime", {"equations": {}, "blocks": {}, "compiled": {}, "programs": {}})


def equations(rec, mode: str, fast: bool) -> dict:
    """The equations a run of ``mode`` evaluates: with the data-only terms split off when ``fast``."""
    got = _slot(rec)["equations"]
    if (mode, fast) not in got:
        got[(mode, fast)] = fast_equations(rec, mode) if fast else rec.mode_equations(mode)
    return got[(mode, fast)]


def blocks(rec, eqs: dict, T: int, tag) -> list:
    """The blocks of the unrolled graph (:func:`~graphrnn.recurrence.unroll.plan_blocks`) of ``eqs`` over T steps."""
    cache = _slot(rec)["blocks"]
    got = cache.get((tag, T))
    if got is None:
        if len(cache) > 16:
            cache.clear()
        got = cache[(tag, T)] = plan_blocks(eqs, T)
    return got


def compiled(rec, eqs: dict, tag, compile_expression) -> dict:
    """Each equation of ``eqs`` as a function ``(context, t) -> Tensor`` (see :mod:`.taped`)."""
    cache = _slot(rec)["compiled"]
    got = cache.get(tag)
    if got is None:
        got = cache[tag] = {name: compile_expression(eq.expr, rec, name) for name, eq in eqs.items()}
    return got


def program(plan, build):
    """The compiled program for this kind of run (``build(plan)``, or None when it cannot be compiled).

    Kept per (mode, T, batch, dtype, lean, data shapes); the most recently used last."""
    cache = _slot(plan.rec)["programs"]
    tag = (plan.mode, plan.T, plan.batch, plan.dtype.str, plan.lean,
           tuple(sorted((n, a.shape) for n, a in plan.data.items())))
    if tag in cache:
        cache[tag] = cache.pop(tag)
        return cache[tag]
    got = build(plan)
    while len(cache) >= PROGRAMS_KEPT:
        cache.pop(next(iter(cache)))
    cache[tag] = got
    return got


def release_buffers(rec) -> int:
    """Drop the compiled programs of ``rec`` and the buffers they keep for the next run; returns the
    bytes released.  They are rebuilt when needed."""
    programs = _slot(rec)["programs"]
    released = sum(p.kept_bytes() for p in programs.values() if p is not None)
    programs.clear()
    return released
