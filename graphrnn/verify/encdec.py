"""The step-by-step check of an encoder-decoder run (fig. 10.12): every gradient against central differences.

:func:`check_encdec` takes a run of :func:`graphrnn.runtime.encdec.run_encdec` and sets each
gradient it produced beside the derivative of the loss along a random unit direction,
by central differences with that very node perturbed inside the unrolled graphs:

* the decoder's per-step variables, at every step from τy down to 1, and its dummy copies
  ``dec.W^(t)``;
* the context ``C`` (∇C L, the seed of the encoder's backward pass);
* the encoder's per-step variables at every step from τx down to 1, and its dummy copies
  ``enc.W^(t)``: a change there reaches the loss only through C;
* every parameter of both phases.

The perturbed losses are computed without the run being checked: the encoder by a
forward-only ``run(enc, ..., overrides=...)`` (the runtime's public entry point), C by this
module's own numpy reading of the link, the decoder by a forward-only run given C.

>>> from graphrnn.recurrence.encdec import load
>>> from graphrnn.runtime.encdec import run_encdec
>>> model = load("fig10_12", sizes={"H": 3})
>>> report = check_encdec(run_encdec(model, model.random_inputs((3, 2), batch=2)))
>>> report.ok, report.rows[0].quantity
(True, '∇dec.L[2]')
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..runtime import run as _run

EPS = 1e-6
_ELEMENTWISE = {"tanh": np.tanh, "sigmoid": lambda a: 1 / (1 + np.exp(-a)), "relu": lambda a: np.maximum(a, 0),
                "exp": np.exp}


@dataclass
class Row:
    quantity: str
    engine: float
    differences: float
    ok: bool

    @property
    def error(self) -> float:
        return abs(self.engine - self.differences)


@dataclass
class EncDecReport:
    """The rows of a check, in the order BPTT visits them: decoder, C, encoder, parameters."""

    name: str
    rows: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def first_failure(self) -> Row | None:
        return next((r for r in self.rows if not r.ok), None)

    def text(self) -> str:
        lines = [f"{self.name}: {len(self.rows)} gradients, each along a random unit direction "
                 f"(engine ⟨∇, d⟩ vs central differences, eps={EPS:g})",
                 f"  {'quantity':<18} {'engine':>14} {'differences':>14} {'|error|':>9}"]
        for r in self.rows:
            lines.append(f"  {r.quantity:<18} {r.engine:>14.8g} {r.differences:>14.8g} {r.error:>9.1e}"
                         f"{'' if r.ok else '  FAIL'}")
        lines.append("all agree" if self.ok else f"FAILED first at {self.first_failure.quantity}")
        return "\n".join(lines)


class _Forward:
    """The loss of the encoder-decoder with one node, copy or parameter changed (forward-only runs)."""

    def __init__(self, got):
        self.model, self.got = got.model, got
        enc, dec = self.model.encoder, self.model.decoder
        self.params = {p.prefix: _phase_params(got, p.prefix) for p in (enc, dec)}
        self.inputs = {p.prefix: _phase_data(got, p) for p in (enc, dec)}
        self.T = got.T

    def loss(self, overrides: dict | None = None, params: dict | None = None, context: dict | None = None) -> float:
        """``overrides``: ``{"enc.h[2]": array, "dec.W^(1)": array}``; ``params``: ``{"enc.W": array}``;
        ``context``: ``{"C": array}`` replacing the link's value."""
        overrides, params = overrides or {}, params or {}
        model = self.model
        mine = {p: {k[4:]: v for k, v in overrides.items() if k.startswith(p + ".")} for p in ("enc", "dec")}
        weights = {p: {**self.params[p], **{k[4:]: v for k, v in params.items() if k.startswith(p + ".")}}
                   for p in ("enc", "dec")}
        enc = _run(model.encoder.rec, self.inputs["enc"], weights["enc"], T=self.T["enc"], backward=False,
                   overrides=mine["enc"] or None)
        contexts = {name: _link(link, enc.values, self.T["enc"]) for name, link in model.links.items()}
        contexts.update(context or {})
        dec_data = {**self.inputs["dec"], **{n: c for n, c in contexts.items() if n in model.decoder.rec.variables}}
        start = {s: contexts[c] for s, (c, _) in model.initial_from.items()} or None
        dec = _run(model.decoder.rec, dec_data, weights["dec"], T=self.T["dec"], mode=self.got.mode,
                   backward=False, overrides=mine["dec"] or None, initial_state=start)
        return dec.loss


def _phase_params(got, prefix: str) -> dict:
    return {k[len(prefix) + 1:]: np.asarray(v) for k, v in got.values.items()
            if k.startswith(prefix + ".") and "[" not in k and k[len(prefix) + 1:] in _param_names(got, prefix)}


def _param_names(got, prefix: str) -> set:
    phase = got.model.encoder if prefix == "enc" else got.model.decoder
    return set(phase.rec.all_param_shapes())


def _phase_data(got, phase) -> dict:
    run = got.encoder if phase.prefix == "enc" else got.decoder
    out = {}
    for name, var in phase.rec.variables.items():
        if var.kind in ("input", "target"):
            steps = sorted(int(k[len(name) + 1:-1]) for k in run.values if k.startswith(name + "[")
                           and k[len(name) + 1:-1].isdigit() and int(k[len(name) + 1:-1]) >= 1)
            out[name] = np.stack([run.values[f"{name}[{t}]"] for t in steps])
    return out


def _link(link, values, T: int) -> np.ndarray:
    """A link's value from a run's values, in numpy (independent of the runtime's engine version)."""

    def value(e):
        kind = type(e).__name__
        if kind == "Step":
            return values[f"{e.name}[{e.step(T)}]"]
        if kind == "Summary":
            total = sum(values[f"{e.name}[{t}]"] for t in range(1, T + 1))
            return total / T if e.fn == "mean" else total
        if e.op == "number":
            return e.value
        if e.op == "neg":
            return -value(e.args[0])
        if e.op in _ELEMENTWISE:
            return _ELEMENTWISE[e.op](value(e.args[0]))
        a, b = (value(x) for x in e.args)
        return a + b if e.op == "+" else a - b if e.op == "-" else a * b

    return np.asarray(value(link.expr), dtype=float)


def check_encdec(got, seed: int = 0, eps: float = EPS, rtol: float = 1e-5, atol: float = 1e-7) -> EncDecReport:
    """Check every gradient of encoder-decoder run ``got`` along one random unit direction each."""
    forward = _Forward(got)
    rng = np.random.default_rng(seed)
    report = EncDecReport(got.model.name)

    def row(quantity, grad, perturbed):
        d = rng.standard_normal(np.shape(grad))
        d /= np.linalg.norm(d) or 1.0
        engine = float(np.sum(grad * d))
        fd = (perturbed(eps * d) - perturbed(-eps * d)) / (2 * eps)
        report.rows.append(Row(quantity, engine, fd, abs(engine - fd) <= atol + rtol * max(abs(fd), abs(engine))))

    model = got.model
    for phase, T in ((model.decoder, got.T["dec"]), (model.encoder, got.T["enc"])):
        run = got.decoder if phase.prefix == "dec" else got.encoder
        if phase.prefix == "enc":
            for name in model.links:
                row(f"∇{name}", got.grads[name], lambda delta, n=name: forward.loss(
                    context={n: got.values[n] + delta}))
        computed = [n for n, v in phase.rec.variables.items() if v.kind == "computed" and v.shape != ()]
        losses = [n for n in phase.rec.losses]
        for t in range(T, 0, -1):
            for name in losses + computed:
                key = f"{name}[{t}]"
                if key not in run.values or name in losses and phase.prefix == "enc":
                    continue
                if name in losses:  # ∂L/∂L[t] = 1: the loss of a step, moved by delta
                    row(f"∇{phase.prefix}.{key}", np.ones(()), lambda delta, k=key, p=phase.prefix: forward.loss(
                        {f"{p}.{k}": run.values[k] + delta}))
                    continue
                row(f"∇{phase.prefix}.{key}", got.grads[f"{phase.prefix}.{key}"],
                    lambda delta, k=key, p=phase.prefix: forward.loss({f"{p}.{k}": run.values[k] + delta}))
        for pname, per in sorted(run.copy_grads.items()):
            for t in (T, 1):
                if t in per:
                    value = run.values[pname]
                    row(f"∇{phase.prefix}.{pname}^({t})", per[t], lambda delta, n=pname, s=t, v=value, p=phase.prefix:
                        forward.loss({f"{p}.{n}^({s})": v + delta}))
    for pname in model.all_param_shapes():
        value = got.values[pname]
        row(f"∇{pname}", got.grads[pname], lambda delta, n=pname, v=value: forward.loss(params={n: v + delta}))
    return report
