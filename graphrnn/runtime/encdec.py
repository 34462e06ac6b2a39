"""Running an encoder-decoder (fig. 10.12): two taped runs joined by the context C.

:func:`run_encdec` runs the two phases of an
:class:`~graphrnn.recurrence.encdec.EncoderDecoder` as the book's §10.4 describes them:

1. the **encoder** runs forward over x(1..τx) on the engine, every step with its own dummy
   copies ``W^(t)`` (§10.2.2);
2. each link ``C`` (``h[tau]``, ``mean(h)``, ...) is computed from the encoder's values, as
   engine nodes;
3. the **decoder** runs over y(1..τy), taped with its own dummy copies, with ``C`` as a
   leaf: its initial state (``s[0] = C``), an input at every step (a context, as in
   fig. 10.9), or both.  Its backward pass gives the loss's gradient for the decoder's
   parameters and ``∇C L``, summed over every way the decoder reads C;
4. ``∇C L`` seeds the encoder's backward pass: ``C.backward(∇C L)`` runs BPTT through the
   encoder, so its parameters and dummy copies get exactly the chain rule's gradient.

The total loss is the decoder's.  Both phases are the taped runtime's own evaluation
(:func:`.taped.evaluate_steps`), so a phase's values and gradients are those of
``rec.run(...)`` on the same data: the decoder's are checked against a plain
``dec.run({... "C": C})`` in tests/encdec, its ``context_grads["C"]`` included.

Results are keyed by phase: ``"enc.h[3]"``, ``"dec.s[2]"``, ``"dec.s[0]"`` (the initial
state, = C when the decoder starts from C), ``"C"``, parameters ``"enc.W"`` and
``"dec.W"`` (separate weights), dummy copies ``copy_grads["enc.W"][t]``.

>>> from graphrnn.recurrence.encdec import load
>>> model = load("fig10_12", sizes={"H": 3})
>>> data = model.random_inputs((4, 2), batch=2)       # tau_x = 4, tau_y = 2
>>> run = run_encdec(model, data)
>>> run.T, run.grads["enc.W"].shape, sorted(run.copy_grads["enc.W"])
({'enc': 4, 'dec': 2}, (3, 3), [1, 2, 3, 4])
>>> bool(abs(run.values["C"] - run.values["enc.h[4]"]).max() == 0)
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import engine as E
from ..engine.tensor import Tensor
from ..errors import DataError
from .result import Run
from .runner import RunPlan
from .taped import StepContext, _collect, evaluate_steps, no_cyclic_gc

_ELEMENTWISE = {"tanh": E.tanh, "sigmoid": E.sigmoid, "relu": E.relu, "exp": E.exp}


@dataclass
class EncDecRun:
    """What a run of an encoder-decoder produced.

    ``values`` and ``grads`` are keyed ``"enc.h[3]"``, ``"dec.o[2]"``, ``"C"`` and (grads)
    ``"enc.W"``, ``"dec.W"``; ``copy_grads["enc.W"][t]`` is the gradient of the encoder's
    dummy copy W^(t) (over t they add up to ``grads["enc.W"]``).  ``encoder`` and
    ``decoder`` are the phases' own :class:`~graphrnn.runtime.Run` objects (unqualified
    names); ``context_grads[C]`` is ∇C L, the seed of the encoder's backward pass;
    ``T`` holds the steps of each phase, ``{"enc": τx, "dec": τy}``.
    """

    model: object
    loss: float
    T: dict
    values: dict
    grads: dict
    copy_grads: dict
    context_grads: dict
    step_losses: dict
    encoder: Run = field(repr=False)
    decoder: Run = field(repr=False)
    mode: str = "teacher"

    def __repr__(self):
        return (f"<EncDecRun of {self.model.name}: tau_x={self.T['enc']}, tau_y={self.T['dec']}, "
                f"loss={self.loss:.6g}>")


@dataclass
class _Phase:
    """One phase while it runs: its plan, leaves and step context."""

    plan: RunPlan
    leaves: dict
    ctx: StepContext

    @classmethod
    def start(cls, rec, data, params, options: dict) -> "_Phase":
        plan = RunPlan.make(rec, data, params, T=options.get("T"), mode=options.get("mode", "teacher"),
                            p=options.get("p", 0.5), seed=options.get("seed", 0), dtype=options["dtype"],
                            backward=options["backward"] if rec.losses else False)
        # an encoder has no loss of its own: its backward pass is seeded with the decoder's ∇C L
        plan.backward = options["backward"]
        leaves = plan.leaves()
        ctx = StepContext(rec, plan.T, plan.data, leaves, plan.dtype, mode=plan.mode, p=plan.p,
                          rng=np.random.default_rng(plan.seed), copies=plan.backward)
        ctx.wants_grads = plan.backward
        ctx.eqs = plan.eqs
        return cls(plan, leaves, ctx)

    def evaluate(self, step_losses: dict):
        total = evaluate_steps(self.ctx, self.plan, (1, self.plan.T), step_losses)
        if self.plan.backward:
            for value in self.ctx.values.values():
                if value.requires_grad:
                    value.retain_grad()
        return total


def run_encdec(model, inputs: dict, params: dict | None = None, *, mode: str = "teacher", p: float = 0.5,
               seed: int = 0, dtype=np.float64, backward: bool = True, T: dict | None = None) -> EncDecRun:
    """Run encoder-decoder ``model`` on ``inputs`` and back-propagate the decoder's loss into both phases.

    ``inputs`` holds the data of both phases (``{"x": (τx, I, B), "y": (τy, B)}``: their lengths
    may differ, their batch must agree); ``params`` the phase-qualified parameters
    (``model.init_params()`` by default).  ``mode``, ``p`` and ``seed`` apply to the decoder
    (teacher forcing, free running, scheduled sampling); ``T={"enc": .., "dec": ..}`` runs
    fewer steps than the data holds.  ``backward=False`` runs forward only.
    """
    enc, dec = model.encoder, model.decoder
    data = _split(model, inputs)
    weights = _params(model, params, dtype)
    steps = _steps(T)
    options = {"dtype": dtype, "backward": backward}
    with (E.enable_grad() if backward else E.no_grad()), no_cyclic_gc():
        encoder = _Phase.start(enc.rec, data["enc"], weights["enc"], {**options, "T": steps.get("enc")})
        encoder.evaluate({})
        contexts = {name: _link_value(link, encoder.ctx) for name, link in model.links.items()}
        leaves = {name: Tensor(c.data, requires_grad=backward, name=name) for name, c in contexts.items()}
        batch = next(iter(c.shape[1] for c in contexts.values()))
        dec_data = {**data["dec"], **{n: c.data for n, c in contexts.items() if n in dec.rec.variables}}
        _check_batch(model, dec_data, batch)
        decoder = _Phase.start(dec.rec, dec_data, weights["dec"],
                               {**options, "T": steps.get("dec"), "mode": mode, "p": p, "seed": seed})
        for name, leaf in leaves.items():
            if name in dec.rec.variables:
                decoder.ctx.data_tensors[(name, 0)] = leaf  # read by ctx.context(name): the same leaf
        for state, (name, _) in model.initial_from.items():
            decoder.ctx.initials[(state, 0)] = leaves[name]  # s[0] = C
        step_losses: dict = {}
        total = decoder.evaluate(step_losses)
        loss = float(total.data)
        if not np.isfinite(loss):
            raise DataError("the forward pass produced a non-finite loss; the parameters or data are too large")
        if backward:
            total.backward()
            for name, c in contexts.items():  # seed the encoder's BPTT with ∇C L
                seed_grad = _grad(leaves[name])
                if c.requires_grad:
                    c.backward(seed_grad)
    enc_run = _collect(encoder.ctx, encoder.leaves, (None, float("nan")), {})
    dec_run = _collect(decoder.ctx, decoder.leaves, (total, loss), step_losses)
    context_grads = {n: _grad(leaf) for n, leaf in leaves.items()} if backward else {}
    values, grads, copies = {}, {}, {}
    for prefix, run in (("enc", enc_run), ("dec", dec_run)):
        values.update({f"{prefix}.{k}": v for k, v in run.values.items()})
        grads.update({f"{prefix}.{k}": v for k, v in run.grads.items()})
        copies.update({f"{prefix}.{k}": v for k, v in run.copy_grads.items()})
    values.update({n: c.data for n, c in contexts.items()})
    grads.update(context_grads)
    return EncDecRun(model, loss, {"enc": encoder.plan.T, "dec": decoder.plan.T}, values, grads, copies,
                     context_grads, dict(dec_run.step_losses), enc_run, dec_run, mode)


def _grad(t: Tensor) -> np.ndarray:
    return t.grad if t.grad is not None else np.zeros_like(t.data)


def _split(model, inputs) -> dict:
    if not isinstance(inputs, dict):
        raise DataError(f"inputs must be a dict of arrays keyed by variable name, not {type(inputs).__name__}")
    enc, dec = model.encoder, model.decoder
    out = {"enc": {}, "dec": {}}
    for name, array in inputs.items():
        if name in enc.data_names():
            out["enc"][name] = array
        elif name in dec.data_names():
            out["dec"][name] = array
        elif name in model.links:
            raise DataError(f"{name!r} is computed from the encoder by `{model.links[name].text}`; do not pass it")
        else:
            raise DataError(f"{name!r} is not data of {model.name} (the encoder's: "
                            f"{', '.join(enc.data_names()) or 'none'}; the decoder's: "
                            f"{', '.join(dec.data_names()) or 'none'})")
    return out


def _params(model, params, dtype) -> dict:
    if params is None:
        params = model.init_params(dtype=dtype)
    if not isinstance(params, dict):
        raise DataError(f"params must be a dict keyed 'enc.W', 'dec.W', ..., not {type(params).__name__}")
    shapes = model.all_param_shapes()
    out = {"enc": {}, "dec": {}}
    for name, array in params.items():
        prefix, dot, rest = name.partition(".") if isinstance(name, str) else ("", "", "")
        if name not in shapes:
            hint = (f"; the phases have separate weights: write 'enc.{name}' or 'dec.{name}'"
                    if f"enc.{name}" in shapes or f"dec.{name}" in shapes else "")
            raise DataError(f"{name!r} is not a parameter of {model.name} (those are: {', '.join(shapes)}){hint}")
        out[prefix][rest] = array
    for name, shape in shapes.items():
        if name not in params:
            raise DataError(f"missing parameter {name!r} of shape {shape}; model.init_params() makes them all")
    return out


def _steps(T) -> dict:
    if T is None:
        return {}
    if not isinstance(T, dict) or not set(T) <= {"enc", "dec"}:
        raise DataError(f"T must be a dict such as {{'enc': 5, 'dec': 3}} (the steps of each phase), not {T!r}")
    return dict(T)


def _check_batch(model, dec_data: dict, batch: int) -> None:
    for name, var in model.decoder.rec.variables.items():
        if name in dec_data and name not in model.links and var.kind in ("input", "target"):
            got = np.shape(dec_data[name])[-1] if np.ndim(dec_data[name]) >= 2 else 1
            if got != batch:
                raise DataError(f"the decoder's {name!r} holds {got} sequences but the encoder's data {batch}; each "
                                f"input sequence needs its output sequence (the last axis is the batch)")


def _link_value(link, ctx: StepContext) -> Tensor:
    """The value of a link (``h[tau]``, ``mean(h)``, ...) from the encoder's step values, as engine nodes."""
    T = ctx.T

    def value(e):
        kind = type(e).__name__
        if kind == "Step":
            s = e.step(T)
            if not 1 <= s <= T:
                raise DataError(f"the link `{link.text}` reads {e.name}[{s}], but the encoder ran steps 1..{T}")
            return ctx.values[(e.name, s)]
        if kind == "Summary":
            total = ctx.values[(e.name, 1)]
            for t in range(2, T + 1):
                total = total + ctx.values[(e.name, t)]
            return total / float(T) if e.fn == "mean" else total
        if e.op == "number":
            return e.value
        if e.op == "neg":
            return -value(e.args[0])
        if e.op in _ELEMENTWISE:
            return _ELEMENTWISE[e.op](_as_tensor(value(e.args[0]), ctx))
        a, b = (value(x) for x in e.args)
        if not isinstance(a, Tensor) and not isinstance(b, Tensor):
            return {"+": a + b, "-": a - b, "*": a * b}[e.op]
        a, b = (_as_tensor(x, ctx) if not isinstance(x, Tensor) else x for x in (a, b))
        return {"+": E.add, "-": E.sub, "*": E.mul}[e.op](a, b)

    got = value(link.expr)
    if not isinstance(got, Tensor):  # cannot happen: a link reads the encoder (checked when parsed)
        raise DataError(f"the link `{link.text}` reads no encoder value")
    if not got.requires_grad and E.is_grad_enabled() and ctx.wants_grads:
        got = Tensor(got.data, requires_grad=True, name=link.name)
    return got


def _as_tensor(x, ctx) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=ctx.dtype))
