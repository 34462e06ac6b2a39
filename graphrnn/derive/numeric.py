"""The derived equations evaluated with numpy: BPTT's numbers, independently of the engine.

:func:`evaluate` reads a run's forward values (``run.values``: the per-step values,
the data and the parameters) and nothing else: no engine tensor, no VJP rule.
Each gradient ∇_{u^(s)} L is the sum of the terms of u's derived equation that
exist at step s, computed in an order where every consumer's gradient is ready
(BPTT's order: from τ back to 1, and forwards for a state that runs backwards in
time).  The forward functions (tanh, softmax, ...) are evaluated here with numpy
too, in float64 whatever the run's precision.

>>> import graphrnn as gr, numpy as np
>>> rec = gr.load("fig10_3")
>>> run = rec.run(rec.random_inputs(4, batch=2), T=4)
>>> grads = gr.derive(rec).evaluate(run)
>>> bool(np.allclose(grads["h[2]"], run.grads["h[2]"])), bool(np.allclose(grads["W"], run.grads["W"]))
(True, True)
"""

from __future__ import annotations

import networkx as nx
import numpy as np

from . import symbols as S
from .derivation import DeriveError, Term


class Gradients(dict):
    """Gradients keyed as ``Run.grads`` is (``"h[3]"``, ``"W"``), from the derived equations.

    ``copies[P][t]`` is the dummy copy's term ∇_{P^(t)} L (eqs. 10.22–10.28); :meth:`terms`
    gives, for a variable at a step (or a parameter's copy at a step), each term of its
    equation with its value, for showing the equations with the numbers plugged in.
    """

    def __init__(self, derivation, T: int):
        super().__init__()
        self.derivation, self.T = derivation, T
        self.copies: dict[str, dict[int, np.ndarray]] = {}
        self._terms: dict[tuple[str, int | None], list[tuple[Term, np.ndarray]]] = {}

    def terms(self, name: str, t: int | None = None) -> list[tuple[Term, np.ndarray]]:
        """``[(term, value), ...]`` summed in ∇ of ``name`` at step ``t`` (a parameter: its copy at t)."""
        got = self._terms.get((name, t))
        if got is None:
            raise DeriveError(f"no derived terms for {name!r}" + (f" at step {t}" if t is not None else "")
                              + f" in this {self.T}-step run")
        return got

    def equation(self, name: str, t: int | None = None):
        """The derived equation that gave ∇ of ``name`` at ``t``."""
        return self.derivation.equation_for(name, t, self.T)


def _softmax(x):
    e = np.exp(x - np.max(x, axis=0, keepdims=True))
    return e / np.sum(e, axis=0, keepdims=True)


def _log_softmax(x):
    shifted = x - np.max(x, axis=0, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=0, keepdims=True))


def _sigmoid(x):
    out = np.empty_like(x, dtype=np.float64)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def _one_hot(labels, classes):
    labels = np.asarray(labels).astype(np.intp)
    out = np.zeros((classes,) + labels.shape)
    np.put_along_axis(out, labels[None], 1.0, axis=0)
    return out


def unbroadcast(g, shape) -> np.ndarray:
    """Sum ``g`` down to ``shape`` (a bias's terms summed over the batch's columns)."""
    g = np.asarray(g, dtype=np.float64)
    if g.shape == tuple(shape):
        return g
    if g.ndim == 0:
        return np.full(shape, float(g))
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return np.broadcast_to(g, shape).copy() if g.shape != tuple(shape) else g


class _Evaluator:
    """Numbers for the symbols at concrete steps, from a run's values."""

    def __init__(self, derivation, run, downstream=None):
        self.d, self.rec, self.T = derivation, derivation.rec, run.T
        self.downstream = downstream
        self.values = run.values
        self.learned = self.rec.learned_inits()
        self.grads: dict[tuple[str, int], np.ndarray] = {}
        self.memo: dict = {}
        self.batch = self._batch()

    def _batch(self) -> int:
        for name, var in self.rec.variables.items():
            if var.kind in ("input", "target") and f"{name}[1]" in self.values:
                return np.shape(self.values[f"{name}[1]"])[-1]
            if var.kind == "context" and name in self.values:
                return np.shape(self.values[name])[-1]
        for name, var in self.rec.variables.items():
            if var.kind == "computed" and var.rows is not None and f"{name}[{self.T}]" in self.values:
                return np.shape(self.values[f"{name}[{self.T}]"])[-1]
        return 1

    # ------------------------------------------------------------------ values
    def var(self, name: str, s: int):
        key = f"{name}[{s}]"
        var = self.rec.variables[name]
        if key in self.values:
            value = np.asarray(self.values[key])
            return value.astype(np.float64) if value.dtype.kind == "f" else value
        if var.init == "learned":  # the value before the first step (or after the last) is a parameter
            return np.asarray(self.values[self.learned[name]], dtype=np.float64)
        if var.is_label:
            return np.zeros(self.batch, dtype=np.intp)
        if var.init == "zero" or var.kind == "computed":
            return np.zeros((var.rows, self.batch))
        raise DeriveError(f"the run has no value for {key}, which the derived equations read")

    def param(self, name: str):
        if name not in self.values:
            raise DeriveError(f"the run has no value for parameter or context {name!r}")
        return np.asarray(self.values[name], dtype=np.float64)

    # ------------------------------------------------------------------ expressions
    def eval(self, node, t: int):
        k = (id(node), t)
        got = self.memo.get(k)
        if got is None:
            got = self.memo[k] = getattr(self, f"_{type(node).__name__}")(node, t)
        return got

    def _Num(self, n, t):
        return np.float64(n.value)

    def _Var(self, n, t):
        return self.var(n.name, n.step.value(t, self.T))

    def _Param(self, n, t):
        return self.param(n.name)

    def _Grad(self, n, t):
        s = n.step.value(t, self.T)
        if self.downstream is not None:  # the consumers' gradients given (verify's local check)
            return np.asarray(self.downstream[f"{n.name}[{s}]"], dtype=np.float64)
        got = self.grads.get((n.name, s))
        if got is None:
            raise DeriveError(f"∇{n.name}[{s}] is needed before it was computed (an ordering bug)")
        return got

    def _JacobianT(self, n, t):
        raise DeriveError("a Jacobian written as (∂v/∂u)ᵀ is for reading, not evaluating")

    _UNARY = {"tanh": np.tanh, "sigmoid": _sigmoid, "relu": lambda x: np.maximum(x, 0.0), "exp": np.exp,
              "log": np.log, "softmax": _softmax, "log_softmax": _log_softmax,
              "argmax": lambda x: np.argmax(x, axis=0)}

    def _Func(self, n, t):
        args = [self.eval(a, t) for a in n.args]
        if n.fn in self._UNARY:
            return self._UNARY[n.fn](args[0])
        if n.fn == "one_hot":
            return _one_hot(args[0], n.classes)
        if n.fn == "cross_entropy":
            return -np.sum(np.take_along_axis(_log_softmax(args[0]), np.asarray(args[1]).astype(np.intp)[None],
                                              axis=0))
        if n.fn == "mse":
            d = args[0] - args[1]
            return np.sum(d * d) / (d.shape[0] if d.ndim == 2 else 1)
        if n.fn == "bce_with_logits":
            x, z = args
            return np.sum(np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x))))
        raise DeriveError(f"the value of {n.fn}(...) inside an expression cannot be recomputed from the run (it "
                          f"draws random numbers or is fed back); make it a variable of its own, e.g. "
                          f"`p[t] = {n.fn}(...)`, so that the run keeps its value")

    def _Prediction(self, n, t):
        return _softmax(self.eval(n.logits, t))

    def _OneHot(self, n, t):
        return _one_hot(self.eval(n.label, t), n.classes)

    def _Positive(self, n, t):
        return (self.eval(n.arg, t) > 0).astype(np.float64)

    def _Transpose(self, n, t):
        x = self.eval(n.arg, t)
        return x.T if np.ndim(x) == 2 else x

    def _Diag(self, n, t):
        return self.eval(n.arg, t)  # the vector; a product with it is elementwise (see _MatMul)

    def _MatMul(self, n, t):
        if isinstance(n.left, S.Diag):
            return self.eval(n.left.arg, t) * self.eval(n.right, t)
        if isinstance(n.right, S.Diag):
            raise DeriveError("a product ending in diag(·) is not written by the derivation")
        a, b = self.eval(n.left, t), self.eval(n.right, t)
        if np.ndim(a) == 0 or np.ndim(b) == 0:
            return a * b
        if a.shape[1] != b.shape[0] and b.shape[0] == 1:
            # g vᵀ where v was one column broadcast over the batch (a learned h[0], or a value made from
            # parameters alone): its gradient is the sum over the batch's columns
            a = a.sum(axis=1, keepdims=True)
        return a @ b

    def _Mul(self, n, t):
        return self.eval(n.left, t) * self.eval(n.right, t)

    def _Div(self, n, t):
        return self.eval(n.left, t) / self.eval(n.right, t)

    def _Power(self, n, t):
        return self.eval(n.arg, t) ** n.p

    def _Scale(self, n, t):
        return n.k * self.eval(n.arg, t)

    def _Add(self, n, t):
        total = self.eval(n.terms[0], t)
        for term in n.terms[1:]:
            total = total + self.eval(term, t)
        return total

    def _SoftmaxVJP(self, n, t):
        s, g = self.eval(n.s, t), self.eval(n.g, t)
        return s * (g - np.sum(s * g, axis=0, keepdims=True))

    def _LogSoftmaxVJP(self, n, t):
        g = self.eval(n.g, t)
        return g - _softmax(self.eval(n.x, t)) * np.sum(g, axis=0, keepdims=True)

    def _Only(self, n, t):
        return self.eval(n.body, t) if n.holds(t, self.T) else np.float64(0.0)

    def _StepSum(self, n, t):
        lo, hi = n.lo.value(t, self.T), n.hi.value(t, self.T)
        total = np.float64(0.0)
        for s in range(lo, hi + 1):
            total = total + self.eval(n.body, s)
        if n.batch and np.ndim(total) == 2:
            total = total.sum(axis=1, keepdims=True)
        return total

    # ------------------------------------------------------------------ which gradients each term reads
    def reads(self, node, t: int) -> set:
        out = set()
        stack = [(node, t, False)]
        while stack:
            n, s, every = stack.pop()
            if isinstance(n, S.Grad) and n.step is not None:
                if every:
                    out |= {(n.name, v) for v in range(1, self.T + 1)}
                else:
                    out.add((n.name, n.step.value(s, self.T)))
            elif isinstance(n, S.StepSum):
                stack.append((n.body, s, True))
            else:
                stack.extend((c, s, every) for c in S.children(n))
        return out


def _steps(rec, name: str, T: int) -> list[int]:
    return [T] if rec.variables[name].anchor == "tau" else list(range(1, T + 1))


def evaluate(derivation, run, downstream=None) -> Gradients:
    """∂loss/∂(every parameter and computed per-step variable) of ``run``, from the derived equations.

    With ``downstream`` (a mapping keyed ``"h[3]"``, such as ``run.grads``), each equation reads its
    consumers' gradients from there instead of from the equations' own results: one step of BPTT
    checked on its own, so that a wrong gradient is pinned to the step where it first goes wrong."""
    if run.mode != derivation.mode and not {run.mode, derivation.mode} <= {"free", "scheduled"}:
        raise DeriveError(f"this derivation is for {derivation.mode} mode but the run is in {run.mode} mode; "
                          f"derive it with gr.derive(rec, mode={run.mode!r})")
    rec, T = derivation.rec, run.T
    if not any(f"{n}[{s}]" in run.values for n, v in rec.variables.items() if v.kind == "computed"
               for s in (1, T)):
        raise DeriveError("the run kept no per-step values (a checkpointed or truncated run keeps the parameters' "
                          "gradients only); evaluate the derivation on a run made without checkpoint= or "
                          "truncate=")
    ev = _Evaluator(derivation, run, downstream)
    out = Gradients(derivation, T)
    terms = derivation.terms
    losses = set(rec.losses)
    # the order: every gradient after the gradients its terms read
    graph = nx.DiGraph()
    wanted = [n for n, v in rec.variables.items() if v.kind == "computed" and not v.is_label]
    for name in wanted:
        for s in _steps(rec, name, T):
            graph.add_node((name, s))
            for term in terms.get(name, ()):
                if term.active(s, T):
                    for dep in ev.reads(term.expr, s):
                        graph.add_edge(dep, (name, s))
    for name, s in nx.lexicographical_topological_sort(graph, key=str):
        if name not in rec.variables or rec.variables[name].kind != "computed" or not (
                1 <= s <= T) or (name, s) not in graph or s not in _steps(rec, name, T):
            raise DeriveError(f"the derived equations read ∇{name}[{s}], which is not a gradient of the run")
        var = rec.variables[name]
        shape = () if var.shape == () else (var.rows, ev.batch)
        if f"{name}[{s}]" in run.values:  # a value made from parameters alone is one column for the batch
            shape = np.shape(run.values[f"{name}[{s}]"])
        parts = [(term, unbroadcast(ev.eval(term.expr, s), shape)) for term in terms.get(name, ())
                 if term.active(s, T)]
        total = np.zeros(shape)
        for _, value in parts:
            total = total + value
        if name in losses:
            total = total + 1.0  # eq. 10.17
        ev.grads[(name, s)] = np.asarray(total, dtype=np.float64)
        out[f"{name}[{s}]"] = ev.grads[(name, s)]
        out._terms[(name, s)] = parts
    for name, var in rec.variables.items():  # class labels computed by argmax or sample: no gradient
        if var.kind == "computed" and var.is_label:
            for s in _steps(rec, name, T):
                if f"{name}[{s}]" in run.values:
                    out[f"{name}[{s}]"] = np.zeros(np.shape(run.values[f"{name}[{s}]"]))
    shapes = rec.all_param_shapes()
    for eq in derivation.equations:
        if eq.kind == "parameter":
            P = eq.name
            per: dict[int, np.ndarray] = {}
            for term in eq.terms:
                for s in ([T] if term.lo == S.TAU else range(1, T + 1)):
                    value = unbroadcast(ev.eval(term.expr, s), shapes[P])
                    per[s] = per.get(s, 0.0) + value
                    out._terms.setdefault((P, s), []).append((term, value))
            out.copies[P] = dict(sorted(per.items()))
            out[P] = sum(per.values()) if per else np.zeros(shapes[P])
        elif eq.kind == "initial":
            # the terms at the steps outside 1..τ where they exist (a short run may have fewer than eq.rhs
            # writes for a long one), summed over the batch: one column shared by every sequence
            total, parts = np.zeros(shapes[eq.name]), []
            for term, part in zip(eq.terms, eq.parts, strict=True):
                if isinstance(part, S.Only):  # a term present only in short runs ([τ ≤ k]): the node decides
                    if part.holds(0, T):
                        value = unbroadcast(ev.eval(part, 0), shapes[eq.name])
                        total = total + value
                        parts.append((term, value))
                    continue
                for s in range(term.lo.value(0, T), term.hi.value(0, T) + 1):
                    if (s < 1 or s > T) and term.active(s, T):
                        value = unbroadcast(ev.eval(term.expr, s), shapes[eq.name])
                        total = total + value
                        parts.append((term, value))
            out[eq.name] = total
            out._terms[(eq.name, None)] = parts
    for P, shape in shapes.items():
        if P not in out:
            out[P] = np.zeros(shape)  # a learned initial state no equation reads outside the steps
    return out
