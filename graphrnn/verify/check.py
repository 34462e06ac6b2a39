"""``verify``: BPTT checked step by step — the engine, the book (or the chain rule), finite differences.

For every gradient the engine's backward pass produced — each per-step variable
at every step, each parameter's dummy copy W^(t) (§10.2.2) and each parameter's
total — three arrays are set side by side:

* the engine's (``Run.grads`` / ``Run.copy_grads``);
* a reference computed another way: for the standard RNN of fig. 10.3 the book's
  closed forms (eqs. 10.17–10.28, see :mod:`.book`); for every recurrence, the chain
  rule taken one node at a time — the engine's gradient of ``v[t]`` must equal the
  sum over the nodes ``w`` that ``v[t]`` feeds of (∂w/∂v[t])ᵀ ∇w, the local Jacobian
  ∂w/∂v[t] found by finite differences of ``w``'s equation alone, ∇w the engine's;
* central finite differences of the loss with that very node perturbed inside the
  unrolled graph (see :mod:`.perturb`).

Rows run from the last step τ down to 1, the order in which BPTT visits them, then
the parameters.

>>> from graphrnn.verify import verify
>>> report = verify("fig10_3", steps=3, batch=1, sizes={"H": 3})
>>> report.ok, report.first_failure is None
(True, True)
"""

from __future__ import annotations

import sys
import time

import numpy as np

from ..errors import DataError, GraphrnnError, SpecError
from ..runtime import check_data as _check_data, check_params as _check_params
from ..recurrence.unroll import key
from .book import EQ_10_21_NOTE, PARAM_EQUATIONS, book_gradients, match_standard_rnn
from .perturb import EPS, Perturbed
from .report import Report, Row, Tolerance, tolerance_for

DTYPES = ("float64", "float32")

SECTIONS = {
    "book steps": "Per step, by the book: ∂L/∂L(t) (eq. 10.17), ∇o(t) L (10.18), ∇h(t) L (10.19, 10.20–21†)",
    "book params": "Parameters, by the book: each step's dummy-copy term (eqs. 10.22–10.28), their sum, the total",
    "chain steps": "Per step, by the chain rule: Σ over the nodes fed of (local Jacobian, by finite differences)ᵀ "
                   "× their gradient",
    "chain params": "Parameters, by the chain rule: each dummy copy W^(t), their sum, the total",
}


class VerifyError(GraphrnnError, ValueError):
    """A verification that cannot be set up (bad options, nothing to check)."""


def _load(rec, sizes):
    if isinstance(rec, str):
        from ..zoo import load

        return load(rec, sizes=sizes)
    if sizes:
        raise VerifyError("sizes= applies when the architecture is given by name; load the Recurrence with "
                          "gr.load(name, sizes=...) instead")
    return rec


def _dtype(dtype) -> np.dtype:
    try:
        d = np.dtype(dtype)
    except TypeError:
        d = None
    if d is None or d.name not in DTYPES:
        raise VerifyError(f"dtype must be float64 or float32, not {dtype!r}")
    return d


def _whole(value, what: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise VerifyError(f"{what} must be a whole number of at least {least}, not {value!r}")
    return int(value)


def _progress(total: int, name: str, progress):
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # tqdm is a convenience: without it, no bar
        return None
    return tqdm(total=total, desc=f"verify {name}", unit="check", delay=1.0, leave=False)


class _Checker:
    """Builds the rows of one report (see :func:`verify`)."""

    def __init__(self, rec, run, ev: Perturbed, tol: Tolerance):
        self.rec, self.run, self.ev, self.tol = rec, run, ev, tol
        self.un = ev.unrolled
        self.skipped_fed = False

    def row(self, section, step, variable, quantity, equation, engine, reference, fd, kind) -> Row:
        return Row(section, step, variable, quantity, equation, np.asarray(engine), reference, fd, kind).judge(self.tol)

    # ------------------------------------------------------------------ the local chain rule
    def _consumers(self, sources) -> list[str]:
        out = []
        for source, step in sources:
            for n in self.un.successors(source):
                if step is not None and self.un.nodes[n].get("t") != step:
                    continue
                if self.un.nodes[n].get("kind") == "fed":
                    self.skipped_fed = True  # the engine feeds these values without gradient, by design
                    continue
                if n not in out:
                    out.append(n)
        return out

    def local(self, node: str, sources) -> np.ndarray:
        """Σ over the consumers of ``sources`` of (local Jacobian)ᵀ × the consumer's engine gradient."""
        total = np.zeros(np.shape(self.ev.value(node)), dtype=np.float64)
        for consumer in self._consumers(sources):
            g = self.run.grads.get(consumer)
            if g is None:
                continue
            total = total + self.ev.local_vjp(node, consumer, g)
        name = node.partition("[")[0]
        if "[" in node and name in self.rec.losses:
            total = total + 1.0  # eq. 10.17: L = Σ_t L(t), so ∂L/∂L(t) = 1
        return total

    def step_variables(self, t: int) -> list[str]:
        """The per-step variables with a gradient at step t, in reverse evaluation order."""
        out = []
        for name, s in reversed(self.ev.plan):
            k = key(name, s)
            if s != t or k not in self.run.grads or self.rec.variables[name].kind != "computed":
                continue
            if np.asarray(self.run.values[k]).dtype.kind != "f":
                continue
            out.append(name)
        return out

    # ------------------------------------------------------------------ the plans
    def book_plan(self, form, T):
        """Thunks for the rows of the book's sections."""
        run, ev = self.run, self.ev
        book = book_gradients(form, run.values, T)
        plan = []
        for t in range(T, 0, -1):
            plan.append(lambda t=t: self.row("book steps", t, form.L, f"∂L/∂{form.L}[{t}]", "10.17",
                                             run.grads[key(form.L, t)], book.dL[t], ev.gradient(key(form.L, t)),
                                             "book"))
            plan.append(lambda t=t: self.row("book steps", t, form.o, f"∇{form.o}[{t}] L", "10.18",
                                             run.grads[key(form.o, t)], book.o[t], ev.gradient(key(form.o, t)),
                                             "book"))
            plan.append(lambda t=t: self.row("book steps", t, form.h, f"∇{form.h}[{t}] L",
                                             "10.19" if t == T else "10.21†", run.grads[key(form.h, t)],
                                             book.h[t], ev.gradient(key(form.h, t)), "book"))
        for role, P in form.params().items():
            eq = PARAM_EQUATIONS[role]
            for t in range(T, 0, -1):
                plan.append(lambda t=t, role=role, P=P, eq=eq: self.row(
                    "book params", t, P, f"∇{P}^({t}) L", eq, run.copy_grads[P][t], book.copies[role][t],
                    ev.gradient(f"{P}^({t})"), "book"))
            plan.append(lambda role=role, P=P, eq=eq: self.row(
                "book params", None, P, f"Σ_t ∇{P}^(t) L", eq, sum(run.copy_grads[P].values()), book.totals[role],
                ev.gradient(P), "book"))
            plan.append(lambda role=role, P=P, eq=eq: self.row(
                "book params", None, P, f"∇{P} L", eq, run.grads[P], book.totals[role], ev.gradient(P), "book"))
        if form.h0 is not None:
            plan.append(lambda: self.row("book params", None, form.h0, f"∇{form.h0} L", "10.21 at t = 0‡",
                                         run.grads[form.h0], book.h0, ev.gradient(form.h0), "book"))
        return plan

    def chain_plan(self, T):
        """Thunks for the rows of the chain-rule sections."""
        run, ev, rec = self.run, self.ev, self.rec
        plan = []
        for t in range(T, 0, -1):
            for name in self.step_variables(t):
                k = key(name, t)
                plan.append(lambda k=k, name=name, t=t: self.row(
                    "chain steps", t, name, f"∇{k} L" if name not in rec.losses else f"∂L/∂{k}", "",
                    run.grads[k], self.local(k, [(k, None)]), ev.gradient(k), "chain rule"))
        for P in rec.all_param_shapes():
            copies = run.copy_grads.get(P, {})
            for t in sorted(copies, reverse=True):
                c = f"{P}^({t})"
                plan.append(lambda P=P, t=t, c=c: self.row(
                    "chain params", t, P, f"∇{c} L", "", run.copy_grads[P][t], self._local_copy(P, t),
                    ev.gradient(c), "chain rule"))
            if copies:
                plan.append(lambda P=P: self.row(
                    "chain params", None, P, f"Σ_t ∇{P}^(t) L", "", sum(run.copy_grads[P].values()),
                    self._local_total(P), ev.gradient(P), "chain rule"))
            plan.append(lambda P=P: self.row(
                "chain params", None, P, f"∇{P} L", "", run.grads[P], self._local_total(P), ev.gradient(P),
                "chain rule"))
        return plan

    def _local_copy(self, P: str, t: int) -> np.ndarray:
        memo = self.ev._memo.get(("local copy", P, t))
        if memo is None:
            memo = self.ev._memo[("local copy", P, t)] = self.local(f"{P}^({t})", [(P, t)])
        return memo

    def _local_total(self, P: str) -> np.ndarray:
        copies = self.run.copy_grads.get(P, {})
        total = np.zeros(np.shape(self.ev.value(P)), dtype=np.float64)
        for t in copies:
            total = total + self._local_copy(P, t)
        initial = [n for n, d in self.un.nodes(data=True) if d.get("kind") == "initial" and d.get("learned") == P]
        if initial:  # a learned initial state: the nodes that read it
            total = total + self.local(P, [(n, None) for n in initial])
        return total


def verify(rec, steps: int = 5, batch: int = 2, seed: int = 0, dtype="float64", *, mode: str = "teacher",
           sizes: dict | None = None, inputs: dict | None = None, params: dict | None = None, eps: float = EPS,
           rtol: float | None = None, book: bool | None = None, progress: bool | None = None) -> Report:
    """Check the engine's BPTT on ``rec`` step by step; return a :class:`~graphrnn.verify.report.Report`.

    ``rec`` is a :class:`~graphrnn.Recurrence` or a zoo name / spec path (with
    ``sizes`` overrides).  Data and parameters are random (``seed``) unless given.
    ``book`` adds the book's closed forms (default: whenever the spec has the shape
    of fig. 10.3); the chain-rule check runs for every recurrence.  ``rtol``
    overrides the relative tolerance (1e-6 for float64, 1e-4 for float32).
    ``progress`` shows a tqdm bar once the check has run for a second (default:
    when stderr is a terminal).

    Raises :class:`~graphrnn.errors.SpecError` for a spec with no loss (nothing to
    differentiate, e.g. the zoo's fig10_2).
    """
    rec = _load(rec, sizes)
    if not rec.losses:
        raise SpecError(f"{rec.name} has no loss, so it has no gradients to verify (it is a drawing of the "
                        f"recurrence only); add an output and a loss, e.g. `o[t] = c + V @ h[t]`, "
                        f"`L[t] = cross_entropy(o[t], y[t])` and `loss L`", variable=None)
    T = _whole(steps, "steps", 1)
    B = _whole(batch, "batch", 1)
    dt = _dtype(dtype)
    if not (isinstance(eps, float) and 0 < eps < 1):
        raise VerifyError(f"eps must be a small positive number such as 1e-5, not {eps!r}")
    started = time.perf_counter()
    if inputs is None:
        inputs = rec.random_inputs(T, batch=B, seed=seed, dtype=dt)
    if params is None:
        params = rec.init_params(seed=seed, dtype=dt)
    data = _check_data(rec, inputs, dt)  # the arrays exactly as the run will use them
    params = _check_params(rec, params, dt)
    batches = {a.shape[-1] for n, a in data.items()}
    B = batches.pop() if len(batches) == 1 else B
    run = rec.run(data, params=params, T=T, mode=mode, dtype=dt, seed=seed)
    ev = Perturbed(rec, data, params, T, mode=mode, seed=seed, eps=eps)
    loss_scale = sum(abs(v) for v in run.step_losses.values())
    grad_scale = max((float(np.max(np.abs(g))) for k, g in run.grads.items() if np.size(g)), default=1.0)
    tol = tolerance_for(dt, loss_scale, grad_scale, eps)
    if rtol is not None:
        if not (isinstance(rtol, float) and 0 < rtol < 1):
            raise VerifyError(f"rtol must be a number between 0 and 1, not {rtol!r}")
        tol = Tolerance(rtol, tol.atol)
    if not np.isfinite(run.loss):
        raise DataError(f"the loss of {rec.name} is not finite; nothing to verify")

    checker = _Checker(rec, run, ev, tol)
    form = match_standard_rnn(rec) if book is not False else None
    if book and form is None:
        raise VerifyError(f"{rec.name} does not have the shape of the book's standard RNN (fig. 10.3: "
                          f"h[t] = tanh(b + W @ h[t-1] + U @ x[t]), o[t] = c + V @ h[t], "
                          f"L[t] = cross_entropy(o[t], y[t])), so there is no closed form to compare with")
    plan = (checker.book_plan(form, T) if form is not None else []) + checker.chain_plan(T)
    bar = _progress(len(plan), rec.name, progress)
    rows = []
    try:
        for thunk in plan:
            rows.append(thunk())
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()

    notes = []
    if form is not None:
        notes.append(EQ_10_21_NOTE)
        if form.h0 is not None:
            notes.append(f"‡ {form.h0} is a learned h[0]: its gradient carries eq. 10.21 one step further "
                         f"(Wᵀ diag(1 − h(1)²) ∇h(1) L, summed over the batch); the book starts from h[0] = 0.")
    if dt.name == "float32":
        notes.append("The engine ran in float32; the book's formulas and the finite differences are evaluated in "
                     "float64 on the same float32 data and parameters.")
    if checker.skipped_fed:
        notes.append(f"In {mode} mode the model's own outputs are fed back without gradient (the engine detaches "
                     f"them); the chain rule gives those uses no contribution, as the engine does.")
    sections = {k: v for k, v in SECTIONS.items() if any(r.section == k for r in rows)}
    return Report(rec.name, T, B, seed, dt.name, mode, eps, tol, rows, sections, notes, ev.evaluations,
                  time.perf_counter() - started, run, data, params)
