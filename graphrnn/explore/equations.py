"""The derived equation behind each gradient of the page, from :mod:`graphrnn.derive`.

:func:`attach_derivation` derives BPTT for the trace's recurrence
(``graphrnn.derive.derive``), evaluates the equations on the run's forward values
with numpy (``Derivation.evaluate``: no engine tensor, no VJP rule), and fills each
:class:`~.trace.Check` with

* ``equation``: the equation that gives this gradient, as the derivation prints it
  (``∇h(t) L = Wᵀ diag(1 − (h(t+1))²) ∇h(t+1) L + Vᵀ ∇o(t) L    for 1 ≤ t ≤ τ−1    (10.21†)``);
* ``plugged``: the same at this step, for the checked entry, with each term's number
  written in and their sum;
* ``derived``: that sum, compared on the page with the engine and a finite difference.

When ``graphrnn.derive`` is not there, or cannot derive this recurrence, the trace
says why in ``derive_note`` and the page shows the engine against finite
differences only.
"""

from __future__ import annotations

import importlib
import re

import numpy as np

NOT_BUILT = ("graphrnn.derive (the symbolic derivation of BPTT) is not part of this build, so no derived "
             "equation is shown; the check is the engine against a finite difference.")

_STEP = re.compile(r"\((t|τ)(?:\s*([+−-])\s*(\d+))?\)")


def at_step(text: str, t: int, T: int) -> str:
    """A printed equation's steps written as numbers: ``h(t+1)`` at t = 2 is ``h(3)``, ``h(τ)`` is ``h(T)``.

    >>> at_step("Wᵀ diag(1 − (h(t+1))²) ∇h(t+1) L + Vᵀ ∇o(t) L", 2, 5)
    'Wᵀ diag(1 − (h(3))²) ∇h(3) L + Vᵀ ∇o(2) L'
    """
    def sub(m):
        base = T if m.group(1) == "τ" else t
        k = int(m.group(3) or 0)
        return f"({base - k if m.group(2) in ('−', '-') else base + k})"
    return _STEP.sub(sub, text)


def _entry_text(entry: tuple) -> str:
    return f"[{', '.join(map(str, entry))}]" if entry else ""


def _number(x: float) -> str:
    return f"{x:.10g}".replace("-", "−")


def _printer():
    return importlib.import_module("graphrnn.derive.printing").TextPrinter()


def _plug(check, title: str, terms, t: int | None, T: int) -> tuple[float, str]:
    """The derived number of ``check``'s entry, and the line that shows how it is made of the terms."""
    printer = _printer()
    entry = check.entry
    parts, values = [], []
    for term, value in terms:
        value = np.asarray(value, dtype=np.float64)
        v = float(value[entry]) if value.ndim else float(value)
        text = printer.doprint(term.expr)
        if t is not None:
            text = at_step(text, t, T)
        parts.append(f"({text}){_entry_text(entry)}")
        values.append(v)
    total = float(sum(values))
    lines = [f"({title}){_entry_text(entry)}", "  = " + "\n  + ".join(parts)]
    if len(values) > 1:
        lines.append("  = " + " + ".join(_number(v) for v in values).replace("+ −", "− "))
    lines.append(f"  = {_number(total)}")
    return total, "\n".join(lines)


def attach_derivation(trace) -> None:
    """Fill ``trace``'s checks with the derived equations and their numbers (see the module's doc)."""
    try:
        derive_module = importlib.import_module("graphrnn.derive")
    except ModuleNotFoundError as exc:
        if exc.name and "graphrnn.derive".startswith(exc.name):
            trace.derive_note = NOT_BUILT
            return
        raise
    from ..errors import GraphrnnError

    try:
        derivation = derive_module.derive(trace.rec)
        grads = derivation.evaluate(trace.run)
    except GraphrnnError as exc:
        trace.derive_note = f"graphrnn.derive cannot derive this recurrence ({exc}); the check is the engine " \
                            f"against a finite difference."
        return
    trace.derivation = derivation
    T = trace.T
    missing = []
    for key, check in trace.checks.items():
        name, _, rest = key.partition("[")
        t = int(rest[:-1])
        try:
            eq = grads.equation(name, t)
            terms = grads.terms(name, t)
        except GraphrnnError as exc:
            missing.append(f"{key}: {exc}")
            continue
        check.equation = eq.text()
        if eq.kind == "loss":  # ∂L/∂L^(t) = 1 (eq. 10.17): no term to sum
            check.derived = float(np.asarray(grads[key], dtype=np.float64)[check.entry])
            check.plugged = f"∂L/∂L({t}) = {_number(check.derived)}"  # eq. 10.17
            continue
        check.derived, check.plugged = _plug(check, f"∇{name}({t}) L", terms, t, T)
    for (param, t), check in trace.copy_checks.items():
        try:
            eq = grads.equation(param)
            terms = grads.terms(param, t)
        except GraphrnnError as exc:
            missing.append(f"{param}^({t}): {exc}")
            continue
        check.equation = eq.text()
        check.derived, check.plugged = _plug(check, f"∇{param}({t}) L", terms, t, T)
    for param, check in trace.param_checks.items():
        try:
            eq = grads.equation(param)
        except GraphrnnError as exc:
            missing.append(f"{param}: {exc}")
            continue
        check.equation = eq.text()
        check.derived = float(np.asarray(grads[param], dtype=np.float64)[check.entry])
        copies = getattr(grads, "copies", {}).get(param, {})
        if copies:
            vals = [float(np.asarray(copies[s], dtype=np.float64)[check.entry]) for s in sorted(copies)]
            check.plugged = (f"∇{param} L{_entry_text(check.entry)} = Σ_t ∇{param}(t) L{_entry_text(check.entry)}"
                             f" = {_number(sum(vals))}")
    trace.derive_missing = missing
    trace.derive_note = ("" if not missing else "graphrnn.derive gives no equation for: " + "; ".join(missing))
