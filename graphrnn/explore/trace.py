"""What the explorer shows, computed once in Python: one run's forward and backward pass, node by node.

A :class:`Trace` holds a run of a recurrence on random data (``rec.run`` with its
dummy copies, the default), the order in which the forward pass evaluates the
nodes of the unrolled graph and the order in which the backward pass completes
their gradients (the reverse), the gradient each edge carries back (the same
numbers as the gradient-path drawings, :func:`graphrnn.render.variable_flow`),
the step at which each dummy copy ``W^(t)`` receives its share of ∇W (§10.2.2),
and, for every gradient, a check of one entry: the engine's number beside a
central finite difference of the loss (:class:`graphrnn.verify.Perturbed`) and,
when :mod:`graphrnn.derive` is there, the derived equation's number.

The page (:mod:`.page`) only displays these numbers; it computes none.

>>> import graphrnn as gr
>>> tr = build_trace(gr.load("fig10_3"), steps=3, batch=2, seed=0)
>>> tr.forward[:4], tr.backward[-1]
(['h[1]', 'h[2]', 'h[3]', 'o[1]'], 'h[1]')
>>> sorted(tr.received["h[2]"])
[('U', 2), ('W', 2), ('b', 2)]
>>> all(c.ok for c in tr.checks.values())
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import GraphrnnError
from ..render.flow import VariableFlow, variable_flow
from ..verify import Perturbed
from .equations import attach_derivation

#: the longest unroll the page draws: every step is a column of the drawing and a row of its data
MAX_STEPS = 50

#: a finite difference agrees with the engine within ATOL + RTOL·|engine| (float64, ε = 1e-5: the
#: central difference's own error is about 1e-10 here; these bounds are loose by orders of magnitude)
ATOL, RTOL = 1e-6, 1e-5


class ExploreError(GraphrnnError, ValueError):
    """An explorer page that cannot be made (too many steps, no loss, bad options)."""


@dataclass
class Check:
    """One entry of one gradient, three ways: the engine, the derived equation (if any), finite differences."""

    key: str  # "h[3]", "W^(3)" (a dummy copy) or "W" (a parameter's total)
    entry: tuple  # the entry compared (the largest in size)
    engine: float
    fd: float
    derived: float | None = None  # from graphrnn.derive, when it is available
    equation: str | None = None  # the derived equation of this gradient, as text
    plugged: str | None = None  # the same with the numbers of `entry` written in

    def error(self, other: float | None) -> float | None:
        return None if other is None else abs(self.engine - other)

    def agrees(self, other: float | None) -> bool | None:
        if other is None:
            return None
        return abs(self.engine - other) <= ATOL + RTOL * abs(self.engine)

    @property
    def ok(self) -> bool:
        return self.agrees(self.fd) is True and self.agrees(self.derived) is not False


@dataclass
class Trace:
    """A run laid out for stepping through (see the module's doc)."""

    rec: object
    run: object
    inputs: dict
    params: dict
    seed: int
    forward: list  # keys in evaluation order: "h[1]", "h[2]", ...
    backward: list  # keys in the order their gradient is complete: the reverse of `forward`
    inputs_of: dict  # key -> the keys (not parameters) its equation reads at that step
    params_of: dict  # key -> the parameters its equation uses at that step
    flow: VariableFlow
    received: dict  # backward key -> [(param, t)]: the dummy copies W^(t) complete once that key is done
    checks: dict = field(default_factory=dict)  # key -> Check (per-step variables)
    copy_checks: dict = field(default_factory=dict)  # (param, t) -> Check
    param_checks: dict = field(default_factory=dict)  # param -> Check (the total ∇W)
    derivation: object = None  # the graphrnn.derive Derivation, when available
    derive_note: str = ""  # why there is no derived equation, when there is none
    derive_missing: list = field(default_factory=list)  # gradients the derivation gives no equation for

    @property
    def T(self) -> int:
        return self.run.T

    @property
    def batch(self) -> int:
        return max((np.shape(a)[-1] for a in self.inputs.values() if np.ndim(a)), default=1)

    def all_checks(self) -> list:
        return list(self.checks.values()) + list(self.copy_checks.values()) + list(self.param_checks.values())


def _whole(value, what: str, least: int, most: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ExploreError(f"{what} must be a whole number of at least {least}, not {value!r}")
    if most is not None and value > most:
        raise ExploreError(f"{what} = {value} is too many for the explorer: it draws every step as a column and "
                           f"stores every value in the page, so it takes at most {most} steps. Use --steps {most} or "
                           f"fewer (for long sequences, `graphrnn render ARCH --unrolled --steps T --window K` draws "
                           f"a window and `graphrnn verify` checks BPTT at any length)")
    return int(value)


def _largest(a: np.ndarray) -> tuple:
    a = np.asarray(a)
    if a.ndim == 0:
        return ()
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(np.abs(a))), a.shape))


def _fd_entry(ev: Perturbed, node: str, shape: tuple, entry: tuple) -> float:
    """∂L/∂node[entry] by a central difference of the loss with that one entry moved (float64)."""
    delta = np.zeros(shape, dtype=np.float64)
    delta[entry] = ev.eps
    plus = ev.loss_change(node, delta)
    delta[entry] = -ev.eps
    minus = ev.loss_change(node, delta)
    return (plus - minus) / (2 * ev.eps)


def build_trace(rec, steps: int = 5, batch: int = 2, seed: int = 0, checks: bool = True) -> Trace:
    """Run ``rec`` for ``steps`` steps on random data (``seed``) and lay the run out for the page."""
    T = _whole(steps, "steps", 1, MAX_STEPS)
    B = _whole(batch, "batch", 1, None)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ExploreError(f"seed must be a whole number, not {seed!r}")
    if not rec.losses:
        raise ExploreError(f"{rec.name} has no loss, so it has no backward pass to step through; add an output and "
                           f"a loss, e.g. `o[t] = c + V @ h[t]`, `L[t] = cross_entropy(o[t], y[t])` and `loss L`")
    inputs = rec.random_inputs(T, batch=B, seed=seed)
    params = rec.init_params(seed=seed)
    run = rec.run(inputs, params=params, T=T)  # copies=True: every W^(t) is its own node (§10.2.2)
    un = rec.unroll(T)
    forward = list(un.order)
    backward = [k for k in reversed(forward) if k in run.grads]
    inputs_of, params_of = {}, {}
    for k in forward:
        inputs_of[k] = [p for p in un.predecessors(k) if un.nodes[p].get("kind") != "parameter"]
        params_of[k] = sorted(p for p in un.predecessors(k) if un.nodes[p].get("kind") == "parameter")
    flow = variable_flow(run, "L")
    position = {k: i for i, k in enumerate(backward)}
    received: dict = {k: [] for k in backward}
    for param, per in run.copy_grads.items():
        for t in per:
            users = [k for k in forward if param in params_of[k] and un.nodes[k].get("t") == t and k in position]
            # the copy is complete once the last of its users (in backward order) is done; one no per-step
            # node uses (a learned initial state's parameter) is complete at the end
            done_at = max(users, key=position.get) if users else backward[-1]
            received[done_at].append((param, t))
    trace = Trace(rec, run, inputs, params, seed, forward, backward, inputs_of, params_of, flow, received)
    if checks:
        _check(trace)
    attach_derivation(trace)
    return trace


def _check(trace: Trace) -> None:
    run = trace.run
    ev = Perturbed(trace.rec, trace.inputs, trace.params, trace.T)

    def check(key: str, g) -> Check:
        g = np.asarray(g, dtype=np.float64)
        e = _largest(g)
        return Check(key, e, float(g[e]), _fd_entry(ev, key, g.shape, e))

    for k in trace.backward:
        trace.checks[k] = check(k, run.grads[k])
    for param, per in run.copy_grads.items():
        for t, g in per.items():
            trace.copy_checks[(param, t)] = check(f"{param}^({t})", g)
    for param in trace.rec.all_param_shapes():  # every parameter, a learned initial state's too
        if param in run.grads:
            trace.param_checks[param] = check(param, run.grads[param])
