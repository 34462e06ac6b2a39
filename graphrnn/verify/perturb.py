"""Evaluate an unrolled recurrence with one value nudged, and take central differences.

:class:`Perturbed` evaluates the unrolled graph of a recurrence once (in float64,
without recording a graph) and then answers "how does the loss change when this
node's value is moved by ε?" for any node of the unrolled graph: a per-step
variable such as ``h[3]`` (its value is replaced *after* it is computed, so every
node downstream sees the new value), a parameter ``W`` (every use), or one dummy
copy ``W^(3)`` (the use at step 3 only, §10.2.2).  Only the nodes downstream of
the nudged one are recomputed, and the loss change is summed over the per-step
losses they reach, so the unchanged terms cancel exactly instead of costing digits.

It also evaluates a *single* node's equation with one of its inputs nudged, which
gives a local Jacobian (∂w/∂v[t] of one equation) by finite differences.

This module reuses the evaluation plan and the expression compiler of
:mod:`graphrnn.recurrence.unroll`; the one thing it adds is the override.

>>> import graphrnn as gr
>>> from graphrnn.verify.perturb import Perturbed
>>> rec = gr.load("fig10_3", sizes={"H": 3})
>>> inputs, params = rec.random_inputs(3, batch=1), rec.init_params(seed=0)
>>> ev = Perturbed(rec, inputs, params, T=3)
>>> run = rec.run(inputs, params=params, T=3)
>>> bool(abs(ev.gradient("h[2]") - run.grads["h[2]"]).max() < 1e-8)
True
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from .. import engine as E
from ..engine.tensor import Tensor
from ..errors import SpecError
from ..runtime import StepContext as _Context, check_data as _check_data, check_params as _check_params
from ..runtime import compile_expression as _compile
from ..recurrence.unroll import evaluation_order, key
from ..recurrence.spec import walk, Call

#: the default step of the central differences (float64 throughout)
EPS = 1e-5


class _OverridingContext(_Context):
    """A run's context where one dummy copy W^(t) can stand in for W at step t."""

    copy_override: tuple | None = None  # (param, step, Tensor)

    def param(self, name: str, t: int) -> Tensor:
        over = self.copy_override
        if over is not None and over[0] == name and over[1] == t:
            return over[2]
        return self.params[name]


def parse_key(node: str) -> tuple[str, int | None]:
    """``"h[3]"`` -> ``("h", 3)``; ``"W"`` -> ``("W", None)``; ``"W^(3)"`` -> ``("W", 3)``."""
    if node.endswith("]") and "[" in node:
        name, _, step = node[:-1].partition("[")
        return name, int(step)
    if node.endswith(")") and "^(" in node:
        name, _, step = node[:-1].partition("^(")
        return name, int(step)
    return node, None


class Perturbed:
    """The unrolled graph of ``rec`` on fixed data and parameters, evaluated with overrides.

    Parameters and data are taken *as given* (a float32 array is widened to float64
    exactly), so the differences measure the very function the engine differentiated.
    """

    def __init__(self, rec, inputs, params, T: int, mode: str = "teacher", seed: int = 0, p: float = 0.5,
                 eps: float = EPS):
        if not rec.losses:
            raise SpecError(f"{rec.name} has no loss, so there is no gradient to check")
        dtype = np.dtype(np.float64)
        self.rec, self.T, self.mode, self.eps = rec, T, mode, eps
        self.seed, self.p = seed, p
        self.data = _check_data(rec, inputs, dtype)
        self.params = {n: Tensor(a) for n, a in _check_params(rec, params, dtype).items()}
        self.plan = evaluation_order(rec, T, mode)
        self.unrolled = rec.unroll(T, mode)
        eqs = rec.mode_equations(mode)
        self.compiled = {name: _compile(eq.expr, rec, name) for name, eq in eqs.items()}
        self.losses = set(rec.losses)
        self.learned = rec.learned_inits()
        # Scheduled sampling and `sample()` draw random numbers in plan order: a partial
        # re-evaluation would draw different ones, so those runs are redone in full.
        self.partial = not (mode == "scheduled" or any(
            isinstance(n, Call) and n.fn == "sample" for eq in eqs.values() for n in walk(eq.expr)))
        self.ctx = self._fresh_context()
        with E.no_grad():
            for name, t in self.plan:
                self.ctx.values[(name, t)] = self._compute(self.ctx, name, t)
        self.base = dict(self.ctx.values)
        self.evaluations = 0
        self._memo: dict = {}
        self._base_total: float | None = None

    # ------------------------------------------------------------------ evaluation
    def _fresh_context(self) -> _OverridingContext:
        # the context gets its own dict of parameters: overrides go there, self.params stays intact
        return _OverridingContext(self.rec, self.T, self.data, dict(self.params), np.dtype(np.float64), mode=self.mode,
                                  p=self.p, rng=np.random.default_rng(self.seed))

    def _compute(self, ctx, name: str, t: int) -> Tensor:
        value = self.compiled[name](ctx, t)
        if not isinstance(value, Tensor):
            value = Tensor(np.full((1, 1), value, dtype=np.float64))
        return value

    def value(self, node: str) -> np.ndarray:
        """The unperturbed value of a node (``"h[3]"``, ``"W"``)."""
        name, t = parse_key(node)
        if t is None or "^(" in node:
            return self.params[name].data
        got = self.base.get((name, t))
        if got is None:
            got = self.ctx.ref(name, t, node)
        return got.data

    def downstream(self, node: str) -> list[tuple[str, int]]:
        """The plan entries a change of ``node`` reaches (itself excluded), in plan order."""
        memo = self._memo.get(("down", node))
        if memo is not None:
            return memo
        un = self.unrolled
        name, t = parse_key(node)
        if "^(" in node:  # the copy W^(t): the nodes of step t that use W
            starts = {n for n in un.successors(name) if un.nodes[n].get("t") == t}
        elif t is None:  # a parameter: every use, and the initial values it holds
            starts = set(un.successors(name)) if name in un else set()
            for n, d in un.nodes(data=True):
                if d.get("kind") == "initial" and d.get("learned") == name:
                    starts |= set(un.successors(n))
        else:
            starts = set(un.successors(node)) if node in un else set()
        reached = set(starts)
        for s in starts:
            reached |= nx.descendants(un, s)
        order = [(n, s) for n, s in self.plan if key(n, s) in reached]
        self._memo[("down", node)] = order
        return order

    def loss_change(self, node: str, delta: np.ndarray) -> float:
        """Σ_t L^(t) with ``node`` moved by ``delta``, minus the same without (float64)."""
        name, t = parse_key(node)
        is_copy = "^(" in node
        ctx = self.ctx
        with E.no_grad():
            if not self.partial:
                if self._base_total is None:
                    self._base_total = self._full(node, None)
                return self._full(node, delta) - self._base_total
            affected = self.downstream(node)
            saved_initials = None
            if is_copy:
                ctx.copy_override = (name, t, Tensor(self.params[name].data + delta))
            elif t is None:
                ctx.params[name] = Tensor(self.params[name].data + delta)
                saved_initials, ctx.initials = ctx.initials, {}
            else:
                ctx.values[(name, t)] = Tensor(self.base[(name, t)].data + delta)
            try:
                for n, s in affected:
                    ctx.values[(n, s)] = self._compute(ctx, n, s)
                change = 0.0
                for n, s in affected:
                    if n in self.losses:
                        change += float(np.sum(ctx.values[(n, s)].data, dtype=np.float64)) - float(
                            np.sum(self.base[(n, s)].data, dtype=np.float64))
                if t is not None and not is_copy and name in self.losses:
                    change += float(np.sum(delta))
            finally:
                ctx.copy_override = None
                if t is None and not is_copy:
                    ctx.params[name] = self.params[name]
                    ctx.initials = saved_initials
                for n, s in affected:
                    ctx.values[(n, s)] = self.base[(n, s)]
                if t is not None and not is_copy:
                    ctx.values[(name, t)] = self.base[(name, t)]
        self.evaluations += 1
        return change

    def _full(self, node: str, delta) -> float:
        """The whole loss, evaluated from scratch (runs that draw random numbers)."""
        name, t = parse_key(node)
        is_copy = "^(" in node
        params = dict(self.params)
        if delta is not None and t is None:
            params[name] = Tensor(self.params[name].data + delta)
        ctx = _OverridingContext(self.rec, self.T, self.data, params, np.dtype(np.float64), mode=self.mode, p=self.p,
                                 rng=np.random.default_rng(self.seed))
        if delta is not None and is_copy:
            ctx.copy_override = (name, t, Tensor(self.params[name].data + delta))
        total = 0.0
        for n, s in self.plan:
            value = self._compute(ctx, n, s)
            if delta is not None and not is_copy and t is not None and (n, s) == (name, t):
                value = Tensor(value.data + delta)
            ctx.values[(n, s)] = value
            if n in self.losses:
                total += float(np.sum(value.data, dtype=np.float64))
        self.evaluations += 1
        return total

    def gradient(self, node: str, progress=None) -> np.ndarray:
        """∂(Σ_t L^(t)) / ∂node by central differences, entry by entry (memoised)."""
        memo = self._memo.get(("grad", node))
        if memo is not None:
            return memo
        base = self.value(node)
        out = np.zeros(base.shape, dtype=np.float64)
        delta = np.zeros(base.shape, dtype=np.float64)
        eps = self.eps
        for i in np.ndindex(base.shape):
            delta[i] = eps
            plus = self.loss_change(node, delta)
            delta[i] = -eps
            minus = self.loss_change(node, delta)
            delta[i] = 0.0
            out[i] = (plus - minus) / (2 * eps)
            if progress is not None:
                progress.update(2)
        self._memo[("grad", node)] = out
        return out

    # ------------------------------------------------------------------ local Jacobians
    def local_vjp(self, node: str, consumer: str, g: np.ndarray, progress=None) -> np.ndarray:
        """(∂consumer/∂node)ᵀ g, with ∂consumer/∂node found by central differences of the
        consumer's own equation alone (every other input held at its value)."""
        name, t = parse_key(node)
        cname, cstep = parse_key(consumer)
        is_copy = "^(" in node
        ctx = self.ctx
        base = self.value(node)
        out = np.zeros(base.shape, dtype=np.float64)
        g = np.asarray(g, dtype=np.float64)
        eps = self.eps
        learned_of = [v for v, p in self.learned.items() if p == name] if t is None and not is_copy else []

        def evaluate(value: np.ndarray) -> np.ndarray:
            tensor = Tensor(value)
            if is_copy:
                ctx.copy_override = (name, t, tensor)
            elif t is None:
                ctx.params[name] = tensor
                for v in learned_of:
                    for k in [k for k in ctx.initials if k[0] == v]:
                        del ctx.initials[k]
            else:
                ctx.values[(name, t)] = tensor
            try:
                rng_state = ctx.rng.bit_generator.state
                result = self._compute(ctx, cname, cstep).data
                ctx.rng.bit_generator.state = rng_state
            finally:
                ctx.copy_override = None
                if t is None and not is_copy:
                    ctx.params[name] = self.params[name]
                    for v in learned_of:
                        for k in [k for k in ctx.initials if k[0] == v]:
                            del ctx.initials[k]
                elif not is_copy:
                    ctx.values[(name, t)] = self.base[(name, t)]
            return np.asarray(result, dtype=np.float64)

        with E.no_grad():
            for i in np.ndindex(base.shape):
                plus = base.astype(np.float64, copy=True)
                plus[i] += eps
                minus = base.astype(np.float64, copy=True)
                minus[i] -= eps
                column = (evaluate(plus) - evaluate(minus)) / (2 * eps)
                out[i] = float(np.sum(column * g))
                if progress is not None:
                    progress.update(2)
        return out


def forward_graph(rec, inputs, params, T: int, mode: str = "teacher", seed: int = 0, p: float = 0.5,
                  dtype=np.float64) -> dict[str, Tensor]:
    """Evaluate the unrolled graph recording the engine graph, and keep it (unlike
    :func:`~graphrnn.recurrence.evaluate.run`, whose backward pass frees it), so that
    gradients of any node with respect to any other can be taken afterwards with
    :func:`graphrnn.grad`.  Returns the tensors keyed ``"h[3]"`` (and the parameters)."""
    dtype = np.dtype(dtype)
    data = _check_data(rec, inputs, dtype)
    leaves = {n: Tensor(a, requires_grad=True, name=n) for n, a in _check_params(rec, params, dtype).items()}
    ctx = _Context(rec, T, data, leaves, dtype, mode=mode, p=p, rng=np.random.default_rng(seed))
    compiled = {name: _compile(eq.expr, rec, name) for name, eq in rec.mode_equations(mode).items()}
    out: dict[str, Tensor] = dict(leaves)
    with E.enable_grad():
        for name, t in evaluation_order(rec, T, mode):
            value = compiled[name](ctx, t)
            if not isinstance(value, Tensor):
                value = Tensor(np.full((1, 1), value, dtype=dtype))
            ctx.values[(name, t)] = value
            out[key(name, t)] = value
    return out
