"""BPTT of an encoder-decoder, derived (fig. 10.12): the decoder's with C as a context, the encoder's seeded by ∇C L.

:func:`derive_encdec` derives the two phases with :func:`graphrnn.derive.derive`, each
from a recurrence that says what the phase's backward pass sees:

* the **decoder**, with C a per-sequence column the derivation treats like a parameter
  (its gradient is the sum over the steps of the terms of its uses, eq. 10.20), and a
  state that starts from C as a learned initial state, whose gradient is the term that
  reaches before step 1.  So ∇C L = Σ_t (terms of C read at step t) + ∇s(0) L;
* the **encoder**, whose states are seeded with ∇C L where the link reads them: the
  last state for ``C = h[tau]`` (∇h(τ) L = ∇C L, then eq. 10.21's recursion), every
  state for ``C = mean(h)`` (each gets ∇C L / τ besides its share from later steps).
  The derivation places the seed with a stand-in loss at the steps the link reads, and
  writes ∇C L in place of that loss's terms.

:meth:`EncDecDerivation.evaluate` computes every gradient of a run from these equations
with numpy, from the run's forward values only, one sequence at a time (C belongs to
its sequence): an independent check of :func:`graphrnn.runtime.encdec.run_encdec`.

>>> from graphrnn.recurrence.encdec import load
>>> d = derive_encdec(load("fig10_12_init"))
>>> print(d.seed_text())
∇h(τ) L = ∇C L    (the seed: C = h[tau])
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from ..recurrence import Recurrence
from . import symbols as S
from .derivation import Derivation, DeriveError, derive
from .printing import text as node_text

SEED_LOSS, SEED_TARGET = "Lseed", "zseed"


@dataclass
class EncDecDerivation:
    """The derived BPTT of both phases (see the module doc); ``decoder`` and ``encoder`` are
    :class:`~graphrnn.derive.Derivation` objects of the phases as their backward passes see them."""

    model: object
    decoder: Derivation
    encoder: Derivation
    starts: dict  # decoder state -> (context, the learned-initial parameter standing for it)

    # ------------------------------------------------------------------ text
    def context_text(self) -> str:
        """∇C L for each link: the sum of its uses' terms in the decoder and of the initial states it starts."""
        lines = []
        for name in self.model.links:
            parts = []
            use = next((eq for eq in self.decoder.equations if eq.kind == "parameter" and eq.name == name), None)
            if use is not None:
                parts.append(node_text(use.rhs))
            for state, (context, pname) in self.starts.items():
                if context == name:
                    parts.append(f"∇{state}(0) L")
            lines.append(f"∇{name} L = " + " + ".join(parts) + "    (per sequence: C is one column of each)")
        for state, (context, pname) in self.starts.items():
            eq = next(eq for eq in self.decoder.equations if eq.kind == "initial" and eq.name == pname)
            rhs = node_text(eq.rhs) if eq.rhs is not None else "0"
            lines.append(f"∇{state}(0) L = {rhs}    ({state}(0) = {context})")
        return "\n".join(lines)

    def seed_text(self) -> str:
        """Where ∇C L enters the encoder."""
        out = []
        for name, link in self.model.links.items():
            part = next(link.parts())
            if type(part).__name__ == "Step":
                step = "τ" if part.offset == 0 else f"τ−{-part.offset}"
                out.append(f"∇{part.name}({step}) L = ∇{name} L    (the seed: {link.text})")
            else:
                share = f"∇{name} L / τ" if part.fn == "mean" else f"∇{name} L"
                out.append(f"∇{part.name}(t) L = {share} + (its share from later steps)    for 1 ≤ t ≤ τ    "
                           f"(the seed: {link.text})")
        return "\n".join(out)

    def encoder_equations(self) -> list[str]:
        """The encoder's BPTT equations, the stand-in loss's terms replaced by the seed ∇C L."""
        out = []
        for eq in self.encoder.equations:
            if eq.kind == "loss" or eq.name in (SEED_LOSS, SEED_TARGET) or eq.kind == "none":
                continue
            if eq.kind == "variable":
                kept = [t for t in eq.terms if t.consumer != SEED_LOSS]
                seeded = len(kept) != len(eq.terms)
                if not kept and not seeded:
                    continue
                parts = [node_text(S.at(t.expr, eq.lo)) if eq.single_step else node_text(t.expr) for t in kept]
                if seeded:
                    parts.append(self._seed_symbol())
                rest = eq.text().split("=", 1)[1]
                where = rest[rest.index("    "):].rstrip() if "    " in rest else ""
                where = re.sub(r"\s*\(\d+[^)]*\)\s*$", "", where)
                out.append(f"{eq.text().split('=', 1)[0].strip()} = {' + '.join(parts)}{where}")
            else:
                line = re.sub(r"^\(\s*\d+\)\s*", "", eq.text())
                out.append(re.sub(r"\s*\(\d+[^)]*\)\s*$", "", line))
        return out

    def _seed_symbol(self) -> str:
        name, link = next(iter(self.model.links.items()))
        part = next(link.parts())
        return f"∇{name} L / τ" if type(part).__name__ == "Summary" and part.fn == "mean" else f"∇{name} L"

    def text(self) -> str:
        m = self.model
        dec_lines = [re.sub(r"\s*\(\d+[^)]*\)\s*$", "", eq.text()) for eq in self.decoder.equations
                     if eq.kind in ("loss", "variable") or (eq.kind == "parameter" and eq.name not in m.links)]
        return "\n".join([
            f"{m.name}: BPTT on two time axes",
            "", f"decoder over {m.decoder.axis} (steps t = 1..τ = τy), with C as a context:",
            *[f"  {line}" for line in dec_lines],
            "", "the context, ∇C L (what the decoder hands back to the encoder):",
            *[f"  {line}" for line in self.context_text().splitlines()],
            "", f"encoder over {m.encoder.axis} (steps t = 1..τ = τx), seeded with ∇C L:",
            *[f"  {line}" for line in self.encoder_equations()],
        ])

    def __str__(self) -> str:
        return self.text()

    # ------------------------------------------------------------------ numbers
    def evaluate(self, run) -> dict:
        """Every gradient of encoder-decoder run ``run`` from these equations (numpy, forward values only),
        keyed as ``run.grads`` is: ``"dec.s[2]"``, ``"dec.W"``, ``"C"``, ``"enc.h[3]"``, ``"enc.W"``."""
        batch = np.shape(run.values["C" if "C" in run.values else next(iter(self.model.links))])[-1]
        out: dict = {}
        for b in range(batch):
            column = self._column(run, b)
            for key, value in column.items():
                if np.ndim(value) == 0:  # ∂L/∂L(t) = 1: the same for every sequence
                    out[key] = value
                elif key in out and (key.endswith("]") or key in self.model.links):
                    out[key] = np.concatenate([out[key], value], axis=-1)
                elif key in out:
                    out[key] = out[key] + value
                else:
                    out[key] = value
        return out

    def _column(self, run, b: int) -> dict:
        m = self.model
        out = {}
        dec_values = _slice(run.decoder.values, b)
        contexts = {n: np.asarray(run.values[n])[:, b:b + 1] for n in m.links}
        dec_values.update({n: c for n, c in contexts.items() if n in self.decoder.rec.param_shapes})
        for state, (context, pname) in self.starts.items():
            dec_values[pname] = contexts[context]
        dec = self.decoder.evaluate(SimpleNamespace(values=dec_values, T=run.T["dec"], mode=run.mode))
        seeds = {n: np.zeros_like(c) for n, c in contexts.items()}
        for key, value in dec.items():
            if key in m.links:
                seeds[key] = seeds[key] + value
            elif any(key == pname for _, pname in self.starts.values()):
                context = next(c for c, p in self.starts.values() if p == key)
                seeds[context] = seeds[context] + value
            else:
                out[f"dec.{key}"] = value
        out.update(seeds)
        out.update({f"enc.{k}": v for k, v in self._encoder(run, b, seeds).items()})
        return out

    def _encoder(self, run, b: int, seeds: dict) -> dict:
        """The encoder's gradients for sequence ``b``, BPTT from the seed: each equation reads its consumers'
        gradients from the previous sweep, until nothing changes (as many sweeps as the graph is deep)."""
        rec, T = self.encoder.rec, run.T["enc"]
        values = _slice(run.encoder.values, b)
        rows = next(iter(seeds.values())).shape[0]
        for t in range(1, T + 1):
            values[f"{SEED_TARGET}[{t}]"] = np.zeros((rows, 1))
        fake = SimpleNamespace(values=values, T=T, mode="teacher")
        computed = [n for n, v in rec.variables.items() if v.kind == "computed" and n != SEED_LOSS]
        grads = {f"{n}[{t}]": np.zeros((rec.variables[n].rows or 1, 1)) for n in computed for t in range(1, T + 1)}
        grads.update({f"{SEED_LOSS}[{t}]": np.ones(()) for t in range(1, T + 1)})
        seed_at = self._seed_steps(T, seeds)
        result = None
        for _ in range(len(computed) * T + 2):
            result = self.encoder.evaluate(fake, downstream=grads)
            changed = False
            for n in computed:
                for t in range(1, T + 1):
                    k = f"{n}[{t}]"
                    try:
                        parts = result.terms(n, t)
                    except DeriveError:
                        continue
                    total = sum((v for term, v in parts if term.consumer != SEED_LOSS), np.zeros_like(grads[k]))
                    total = total + seed_at.get(k, 0.0)
                    if not np.array_equal(total, grads[k]):
                        grads[k], changed = total, True
            if not changed:
                break
        out = {k: v for k, v in grads.items() if not k.startswith(SEED_LOSS)}
        out.update({P: result[P] for P in rec.all_param_shapes()})
        return out

    def _seed_steps(self, T: int, seeds: dict) -> dict:
        out = {}
        for name, link in self.model.links.items():
            part = next(link.parts())
            if type(part).__name__ == "Step":
                key = f"{part.name}[{part.step(T)}]"
                out[key] = out.get(key, 0.0) + seeds[name]
            else:
                share = seeds[name] / T if part.fn == "mean" else seeds[name]
                for t in range(1, T + 1):
                    key = f"{part.name}[{t}]"
                    out[key] = out.get(key, 0.0) + share
        return out


def _slice(values, b: int) -> dict:
    """Sequence ``b`` of a phase's values: per-step columns and labels sliced, parameters whole."""
    out = {}
    for key, value in values.items():
        a = np.asarray(value)
        if "[" not in key:
            out[key] = a
        elif a.ndim == 2:
            out[key] = a[:, b:b + 1]
        elif a.ndim == 1:
            out[key] = a[b:b + 1]
        else:
            out[key] = a
    return out


def derive_encdec(model) -> EncDecDerivation:
    """Derive BPTT for encoder-decoder ``model`` (see the module doc)."""
    for name, link in model.links.items():
        kind = type(link.expr).__name__
        if kind not in ("Step", "Summary") or (kind == "Step" and link.expr.anchor != "tau"):
            raise DeriveError(f"the link `{link.text}`: the derivation is written for a link that reads one "
                              f"step back from the last (h[tau], h[tau-1]) or summarises the steps (mean(h), "
                              f"sum(h)); run and check other links with run_encdec and check_encdec")
    if len(model.links) != 1:
        raise DeriveError("the derivation is written for one link")
    decoder, starts = _decoder(model)
    return EncDecDerivation(model, derive(decoder), derive(_encoder(model)), starts)


def _decoder(model) -> tuple[Recurrence, dict]:
    """The decoder as its backward pass sees it: each link a column (declared as a parameter), each state that
    starts from a link a learned initial state."""
    rec = model.decoder.rec
    lines = rec.text.split("\n")
    for name in model.links:
        lines = [("" if re.match(rf"^\s*context\s+{re.escape(name)}\s*:", line) else line) for line in lines]
        if name in rec.variables:
            lines.append(f"param {name}: {model.links[name].rows} x 1")
    for state, (context, number) in model.initial_from.items():
        line = lines[number - 1]
        if line.strip():
            lines[number - 1] = re.sub(r"=\s*zero\s*$", "= learned", line)
        else:
            lines[number - 1] = f"init {state} = learned"
    surrogate = Recurrence("\n".join(lines), source=rec.source, sizes=dict(rec.sizes), name=rec.name)
    learned = surrogate.learned_inits()
    return surrogate, {s: (c, learned[s]) for s, (c, _) in model.initial_from.items()}


def _encoder(model) -> Recurrence:
    """The encoder with a stand-in loss at the steps its link reads (its terms are replaced by ∇C L)."""
    rec = model.encoder.rec
    link = next(iter(model.links.values()))
    part = next(link.parts())
    if type(part).__name__ == "Step":
        step = "tau" if part.offset == 0 else f"tau{part.offset:+d}"
        equation = f"{SEED_LOSS}[tau] = mse({part.name}[{step}], {SEED_TARGET}[tau])"
    else:
        equation = f"{SEED_LOSS}[t] = mse({part.name}[t], {SEED_TARGET}[t])"
    for clash in (SEED_LOSS, SEED_TARGET):
        if clash in rec.variables or clash in rec.param_shapes:
            raise DeriveError(f"the encoder uses the name {clash!r}, which the derivation needs; rename it")
    text = rec.text + f"\ntarget {SEED_TARGET}: {link.rows}\nloss {SEED_LOSS}\n{equation}\n"
    return Recurrence(text, source=rec.source, sizes=dict(rec.sizes), name=rec.name)


__all__ = ["EncDecDerivation", "derive_encdec"]
