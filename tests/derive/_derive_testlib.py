"""Helpers of the derivation tests: random recurrences and the comparison with the engine."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import graphrnn as gr
from graphrnn import zoo

SETTINGS = settings(max_examples=40, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])

NAMES = ["h", "g", "s"]


def zoo_cases():
    """(name, mode) for every zoo architecture with a loss, in every mode it has."""
    out = []
    for name in zoo.names():
        rec = gr.load(name)
        if rec.losses:
            out += [(name, m) for m in (("teacher", "free", "scheduled") if rec.spec.feedbacks else ("teacher",))]
    return out


def mismatches(run, grads, rtol=1e-9) -> list[str]:
    """Where the derived gradients differ from the engine's (every key of run.grads and every
    dummy copy); relative to the largest entry of each array."""
    bad = []
    for k, engine in run.grads.items():
        engine = np.asarray(engine, dtype=np.float64)
        if k not in grads:
            bad.append(f"{k}: missing")
            continue
        ours = np.asarray(grads[k])
        scale = max(float(np.max(np.abs(engine), initial=0)), float(np.max(np.abs(ours), initial=0)), 1e-12)
        if ours.shape != engine.shape or float(np.max(np.abs(ours - engine), initial=0)) > rtol * scale + 1e-13:
            bad.append(f"{k}: {float(np.max(np.abs(ours - engine), initial=0)):.3e} (scale {scale:.3e})")
    for P, per in run.copy_grads.items():
        for t, engine in per.items():
            ours = grads.copies.get(P, {}).get(t)
            if ours is None:
                bad.append(f"{P}^({t}): missing")
                continue
            scale = max(float(np.max(np.abs(engine))), 1e-12)
            if float(np.max(np.abs(ours - engine))) > rtol * scale + 1e-13:
                bad.append(f"{P}^({t}): {float(np.max(np.abs(ours - engine))):.3e}")
    extra = set(grads) - set(run.grads)
    bad += [f"{k}: not a gradient of the run" for k in sorted(extra)]
    return bad


class Builder:
    """Draws one random, valid spec: one to three states, each running forwards or backwards in
    time, delays of 1..3, same-step uses of earlier variables, products of gates, a context,
    zero or learned initial values, and sometimes an output defined at the last step only."""

    def __init__(self, draw):
        self.draw = draw
        self.n = draw(st.integers(1, 3))
        self.sizes = [draw(st.integers(1, 3)) for _ in range(self.n)]
        self.backward = [False] + [draw(st.booleans()) for _ in range(self.n - 1)]
        self.context = draw(st.booleans())
        self.count = 0
        self.params: dict[tuple[int, int], list[str]] = {}

    def param(self, shape) -> str:
        existing = self.params.get(shape, [])
        if existing and self.draw(st.booleans()):
            return self.draw(st.sampled_from(existing))
        name = f"P{self.count}"
        self.count += 1
        self.params.setdefault(shape, []).append(name)
        return name

    def reference(self, i) -> tuple[str, int]:
        options = [("x", None)] + ([("c", None)] if self.context else [])
        for j in range(self.n):
            if self.backward[j] == self.backward[i]:
                options.append((NAMES[j], "same" if j < i else "delayed"))
            elif self.backward[i] and not self.backward[j]:
                options.append((NAMES[j], "any"))
        name, kind = self.draw(st.sampled_from(options))
        if name == "x":
            k = self.draw(st.integers(-1, 1))
            return (f"x[t{k:+d}]" if k else "x[t]"), 2
        if name == "c":
            return "c", 2
        j = NAMES.index(name)
        sign = 1 if self.backward[i] else -1
        k = {"any": lambda: self.draw(st.integers(-3, 3)), "same": lambda: sign * self.draw(st.integers(0, 3)),
             "delayed": lambda: sign * self.draw(st.integers(1, 3))}[kind]()
        return (f"{name}[t{k:+d}]" if k else f"{name}[t]"), self.sizes[j]

    def leaf(self, i) -> str:
        rows = self.sizes[i]
        ref, cols = self.reference(i)
        kind = self.draw(st.sampled_from(["matmul", "matmul", "transpose", "direct"]))
        if kind == "direct" and cols == rows and ref != "c":
            return ref
        if kind == "transpose":
            return f"({self.param((cols, rows))}.T @ {ref})"
        return f"({self.param((rows, cols))} @ {ref})"

    def expr(self, i, depth) -> str:
        if depth == 0 or self.draw(st.integers(0, 3)) == 0:
            return self.leaf(i)
        op = self.draw(st.sampled_from(["+", "-", "*", "gate", "+bias", "tanh", "sigmoid", "exp", "logsig",
                                        "softmax", "log_softmax", "scale", "div", "pow", "neg"]))
        a = self.expr(i, depth - 1)
        if op in ("+", "-", "*"):
            return f"({a} {op} {self.expr(i, depth - 1)})"
        if op == "gate":  # a product of gates, as in an LSTM
            return f"(sigmoid({a}) * tanh({self.expr(i, depth - 1)}))"
        if op == "+bias":
            return f"({self.param((self.sizes[i], 1))} + {a})"
        if op == "exp":
            return f"exp(tanh({a}))"
        if op == "logsig":
            return f"log(sigmoid({a}))"
        if op == "scale":
            return f"({self.draw(st.sampled_from(['0.5', '2', '-1.5']))} * {a})"
        if op == "div":
            return f"({a} / 2.0)"
        if op == "pow":
            return f"(tanh({a}) ** 2)"
        if op == "neg":
            return f"(-{a})"
        return f"{op}({a})"

    def spec(self) -> str:
        draw = self.draw
        lines = ["input x: 2", "init x = zero"] + (["context c: 2"] if self.context else [])
        for i in range(self.n):
            init = draw(st.sampled_from(["zero", "zero", "learned"]))
            lines.append(f"state {NAMES[i]}: {self.sizes[i]} = {init}")
        for i in range(self.n):
            body = self.expr(i, draw(st.integers(1, 3)))
            wrap = draw(st.sampled_from(["tanh", "sigmoid", ""]))
            uses_c = f" + ({self.param((self.sizes[0], 2))} @ c)" if self.context and i == 0 else ""
            lines.append(f"{NAMES[i]}[t] = {wrap}({body}) + Pc{i}{uses_c}")
        terms = []
        for kind in draw(st.lists(st.sampled_from(["mse", "ce", "bce"]), min_size=1, max_size=2, unique=True)):
            k = draw(st.integers(0, self.n - 1))
            v = NAMES[k]
            if kind == "mse":
                lines.append(f"target z: {self.sizes[k]}")
                terms.append(f"mse({v}[t], z[t])")
            elif kind == "ce":
                lines.append(f"target y: class {self.sizes[k]}")
                terms.append(f"cross_entropy({v}[t], y[t])")
            else:
                lines.append(f"target stop: {self.sizes[k]}")
                terms.append(f"bce_with_logits({v}[t], stop[t])")
        lines.append("L[t] = " + " + ".join(terms))
        losses = ["L"]
        if draw(st.booleans()):  # an output at the last step only (fig. 10.5)
            k = draw(st.integers(0, self.n - 1))
            lines += ["target w: 2", f"o[tau] = {self.param((2, self.sizes[k]))} @ tanh({NAMES[k]}[tau])",
                      "J[tau] = mse(o[tau], w[tau])"]
            losses.append("J")
        lines.append("loss " + ", ".join(losses))
        return "\n".join(lines) + "\n"


@st.composite
def recurrences(draw):
    return Builder(draw).spec()


def setup(text, T, batch, seed):
    rec = gr.Recurrence(text, name="random")
    data = rec.random_inputs(T, batch=batch, seed=seed)
    params = {k: 1.3 * v for k, v in rec.init_params(seed=seed).items()}
    for pname in rec.learned_inits().values():
        params[pname] = np.random.default_rng(seed).uniform(0.2, 0.8, params[pname].shape)
    return rec, data, params
