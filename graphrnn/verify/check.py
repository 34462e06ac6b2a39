"""``verify``: BPTT checked step by step — the engine against the derived equations, the book and finite differences.

For every gradient the engine's backward pass produced — each per-step variable
at every step, each parameter's dummy copy W^(t) (§10.2.2) and each parameter's
total — the engine's array (``Run.grads`` / ``Run.copy_grads``) is set beside:

* the derived equations (:mod:`graphrnn.derive`, the reference for every recurrence),
  evaluated with numpy from the run's forward values alone: no engine tensor, no VJP rule;
* the same equation fed the engine's own gradients of the consumers (``local``): one step of
  BPTT on its own, which pins a wrong gradient to the step where it first goes wrong;
* for the standard RNN of fig. 10.3, the book's closed forms (eqs. 10.17–10.28, see :mod:`.book`);
* central finite differences of the loss with that very node perturbed inside the unrolled
  graph (see :mod:`.perturb`): every entry of every gradient (``fd="all"``) or, by default
  (``fd="sample N"``, N = 1), the derivative along N random unit directions of every per-step
  variable at every step and of every parameter, and of the dummy copies at N random steps.

Each row names the derived equation it checks (numbered as ``graphrnn derive`` prints them).
Rows run from the last step τ down to 1, the order in which BPTT visits them, then
the parameters.

>>> from graphrnn.verify import verify
>>> report = verify("fig10_3", steps=3, batch=1, sizes={"H": 3})
>>> report.ok, report.first_failure is None
(True, True)
>>> report.rows[0].quantity, report.rows[0].equations
('∂L/∂L[3]', '(1) 10.17')
"""

from __future__ import annotations

import re
import sys
import time
from dataclasses import dataclass

import numpy as np

from ..derive import derive
from ..errors import DataError, GraphrnnError, SpecError
from ..runtime import check_data as _check_data, check_params as _check_params
from .book import EQ_10_21_NOTE, book_gradients, match_standard_rnn
from .perturb import EPS, Perturbed
from .report import Report, Row, Tolerance, tolerance_for

DTYPES = ("float64", "float32")

SECTIONS = {
    "steps": "Per step, from τ down: ∇v(t) L by the engine, by the derived equation",
    "params": "Parameters: each dummy copy's term ∇W^(t) L, their sum, the total (Σ_t, eqs. 10.22–10.28)",
}

#: the default of ``fd``: the derivative along one random unit direction per gradient
FD_DEFAULT = "sample 1"


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


def _fd_option(fd) -> tuple[str, int]:
    """``"all"`` -> ("all", 0); ``"sample 3"``, ``("sample", 3)`` or ``3`` -> ("sample", 3)."""
    if isinstance(fd, str) and fd.strip() == "all":
        return "all", 0
    n = None
    if isinstance(fd, (int, np.integer)) and not isinstance(fd, bool):
        n = int(fd)
    elif isinstance(fd, tuple) and len(fd) == 2 and fd[0] == "sample":
        n = fd[1] if isinstance(fd[1], (int, np.integer)) and not isinstance(fd[1], bool) else None
    elif isinstance(fd, str):
        m = re.fullmatch(r"\s*sample\s+(\d+)\s*", fd)
        n = int(m.group(1)) if m else None
    if n is None or n < 1:
        raise VerifyError(f"fd must be 'all' (every entry) or 'sample N' (N random directions per gradient, "
                          f"N ≥ 1), not {fd!r}")
    return "sample", n


class _Differences:
    """Central finite differences of the loss with one node of the unrolled graph perturbed:
    every entry, or along ``n`` random unit directions (drawn with ``seed``)."""

    def __init__(self, ev: Perturbed, how: str, n: int, seed: int):
        self.ev, self.how, self.n = ev, how, n
        self.rng = np.random.default_rng([seed, 10, 17])
        self.memo: dict = {}

    def copy_steps(self, steps: list[int]) -> set[int]:
        """The steps whose dummy copies get finite differences: all of them (``"all"``), else ``n``
        drawn at random (every step is still covered by the per-step variables' rows)."""
        if self.how == "all" or len(steps) <= self.n:
            return set(steps)
        return {int(t) for t in self.rng.choice(steps, size=self.n, replace=False)}

    def of(self, node: str | None):
        if node is None:
            return None, None
        """(fd, directions): the finite differences of ``node`` (directions ``None``: every entry)."""
        got = self.memo.get(node)
        if got is None:
            if self.how == "all":
                got = (self.ev.gradient(node), None)
            else:
                shape = np.shape(self.ev.value(node))
                dirs = self.rng.standard_normal((self.n,) + shape)
                for u in dirs:
                    u /= max(float(np.linalg.norm(u)), 1e-300)
                eps = self.ev.eps
                fd = np.array([(self.ev.loss_change(node, eps * u) - self.ev.loss_change(node, -eps * u)) / (2 * eps)
                               for u in dirs])
                got = (fd, dirs)
            self.memo[node] = got
        return got


@dataclass
class _Compared:
    """What one row of the report compares: the engine's gradient, the derived equations' (evaluated
    on the engine's values), the derived local one (from the engine's downstream gradients), and the
    book's closed form (None where the book gives none)."""

    engine: object
    reference: object
    local: object
    book: object = None


class _Checker:
    """Builds the rows of one report (see :func:`verify`)."""

    def __init__(self, rec, run, derivation, diffs: _Differences, tol: Tolerance, form, T: int):
        self.rec, self.run, self.d, self.diffs, self.tol, self.T = rec, run, derivation, diffs, tol, T
        self.derived = derivation.evaluate(run)
        self.local = derivation.evaluate(run, downstream=run.grads)
        self.form = form
        self.book = book_gradients(form, run.values, T) if form is not None else None

    def row(self, section, step, variable, quantity, eq, got: "_Compared", node) -> Row:
        fd, directions = self.diffs.of(node)
        book = got.book
        return Row(section, step, variable, quantity, f"({eq.number})", np.asarray(got.engine), got.reference, fd,
                   "derived", local=got.local, book=book, book_equation=(eq.book or "") if book is not None else "",
                   directions=directions).judge(self.tol)

    # ------------------------------------------------------------------ the book's arrays, by role
    def book_step(self, name: str, t: int):
        form, book = self.form, self.book
        if book is None:
            return None
        return {form.L: book.dL, form.o: book.o, form.h: book.h}.get(name, {}).get(t)

    def book_param(self, P: str, t: int | None):
        if self.book is None:
            return None
        if self.form.h0 is not None and P == self.form.h0:
            return self.book.h0 if t is None else None
        role = {v: k for k, v in self.form.params().items()}.get(P)
        if role is None:
            return None
        return self.book.totals[role] if t is None else self.book.copies[role].get(t)

    # ------------------------------------------------------------------ the plan
    def order(self) -> list[str]:
        """The per-step variables in the derivation's order: the losses, then from the loss back."""
        names = []
        for eq in self.d.equations:
            if eq.kind in ("loss", "variable") and eq.name not in names:
                names.append(eq.name)
        return names

    def plan(self):
        run, T, d = self.run, self.T, self.d
        plan = []
        names = self.order()
        for t in range(T, 0, -1):
            for name in names:
                k = f"{name}[{t}]"
                if k not in run.grads or np.asarray(run.values[k]).dtype.kind != "f":
                    continue
                quantity = f"∂L/∂{k}" if name in self.rec.losses else f"∇{k} L"
                plan.append(lambda k=k, name=name, t=t, quantity=quantity: self.row(
                    "steps", t, name, quantity, d.equation_for(name, t, T),
                    _Compared(run.grads[k], self.derived[k], self.local[k], self.book_step(name, t)), k))
        for P, shape in self.rec.all_param_shapes().items():
            eq = d.equation_for(P)
            copies = run.copy_grads.get(P, {})
            with_fd = self.diffs.copy_steps(sorted(copies))
            for t in sorted(copies, reverse=True):
                plan.append(lambda P=P, t=t, eq=eq, shape=shape, fd=t in with_fd: self.row(
                    "params", t, P, f"∇{P}^({t}) L", eq,
                    _Compared(run.copy_grads[P][t], self.derived.copies.get(P, {}).get(t, np.zeros(shape)),
                              self.local.copies.get(P, {}).get(t, np.zeros(shape)), self.book_param(P, t)),
                    f"{P}^({t})" if fd else None))
            if copies:
                plan.append(lambda P=P, eq=eq: self.row(
                    "params", None, P, f"Σ_t ∇{P}^(t) L", eq,
                    _Compared(sum(run.copy_grads[P].values()), self.derived[P], self.local[P],
                              self.book_param(P, None)), P))
            plan.append(lambda P=P, eq=eq: self.row(
                "params", None, P, f"∇{P} L", eq,
                _Compared(run.grads[P], self.derived[P], self.local[P], self.book_param(P, None)), P))
        return plan


def verify(rec, steps: int = 5, batch: int = 2, seed: int = 0, dtype="float64", *, mode: str = "teacher",
           sizes: dict | None = None, inputs: dict | None = None, params: dict | None = None, eps: float = EPS,
           rtol: float | None = None, book: bool | None = None, fd="sample 1",
           progress: bool | None = None) -> Report:
    """Check the engine's BPTT on ``rec`` step by step; return a :class:`~graphrnn.verify.report.Report`.

    ``rec`` is a :class:`~graphrnn.Recurrence` or a zoo name / spec path (with
    ``sizes`` overrides).  Data and parameters are random (``seed``) unless given.
    The reference is the derived equations (:func:`graphrnn.derive`); ``book`` adds the
    book's closed forms (default: whenever the spec has the shape of fig. 10.3).
    ``fd`` is ``"all"`` (finite differences of every entry of every gradient) or ``"sample N"``
    (the default, ``"sample 1"``: the derivative along N random unit directions of every
    per-step variable at every step and of every parameter's total, and of each parameter's
    dummy copies at N random steps).
    ``rtol`` overrides the relative tolerance (1e-6 for float64, 1e-4 for float32).
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
    how, n_dirs = _fd_option(fd)
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

    form = match_standard_rnn(rec) if book is not False and mode == "teacher" else None
    if book and form is None:
        raise VerifyError(f"{rec.name} does not have the shape of the book's standard RNN (fig. 10.3: "
                          f"h[t] = tanh(b + W @ h[t-1] + U @ x[t]), o[t] = c + V @ h[t], "
                          f"L[t] = cross_entropy(o[t], y[t])), so there is no closed form to compare with")
    derivation = derive(rec, mode=mode)
    checker = _Checker(rec, run, derivation, _Differences(ev, how, n_dirs, seed), tol, form, T)
    plan = checker.plan()
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
        notes.append("The engine ran in float32; the derived equations, the book's formulas and the finite "
                     "differences are evaluated in float64 on the same float32 data and parameters.")
    if mode != "teacher" and rec.spec.feedbacks:
        notes.append(f"In {mode} mode the model's own outputs are fed back without gradient (the engine detaches "
                     f"them); the derived equations give those uses no term, as the engine does.")
    sections = {k: v for k, v in SECTIONS.items() if any(r.section == k for r in rows)}
    if form is not None:
        sections["steps"] += " and by the book (eqs. 10.17–10.21)"
    return Report(rec.name, T, B, seed, dt.name, mode, eps, tol, rows, sections, notes, ev.evaluations,
                  time.perf_counter() - started, run, data, params, "all" if how == "all" else f"sample {n_dirs}",
                  derivation)
