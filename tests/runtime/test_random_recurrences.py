"""Random valid recurrences (hypothesis) against finite differences.

Each example is a spec written in the notation: one to three per-step variables, each
defined by a random expression tree over the whitelisted operations (+ - * @ .T / **, tanh,
sigmoid, exp of bounded values, log of sigmoid, softmax, log_softmax, relu of a variable)
with generated parameters (some shared between uses), random delays of 1..3 on self and
cross references, same-step references to earlier variables, a group of variables that may
run backwards in time (reading [t+k]), zero or learned initial values, and a loss built
from mse / cross_entropy / bce_with_logits.  Every equation ends in ``+ probe_v[t]``, an
input whose data is zero, so that dL/dv[t] can be checked by finite differences too.
"""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from _rec_testlib import SETTINGS, assert_grad_close, numerical_gradient
from hypothesis import assume, given, note, settings
from hypothesis import strategies as st

import graphrnn as gr

NAMES = ["h", "g", "s"]


class _Builder:
    """Draws one random, valid spec."""

    def __init__(self, draw):
        self.draw = draw
        self.n = draw(st.integers(1, 3))
        self.sizes = [draw(st.integers(1, 3)) for _ in range(self.n)]
        self.input_size = draw(st.integers(1, 3))
        # a variable runs forwards (reads [t-k] of its group) or backwards (reads [t+k]); the first runs
        # forwards; a backward variable may read forward ones at any offset, never the other way round
        self.backward = [False] + [draw(st.booleans()) for _ in range(self.n - 1)]
        self.params: dict[tuple[int, int], list[str]] = {}
        self.count = 0
        self.relu_of: set[str] = set()

    def param(self, shape) -> str:
        existing = self.params.get(shape, [])
        if existing and self.draw(st.booleans()):
            return self.draw(st.sampled_from(existing))  # a parameter shared between uses
        name = f"P{self.count}"
        self.count += 1
        self.params.setdefault(shape, []).append(name)
        return name

    def reference(self, i) -> tuple[str, int]:
        """A reference that variable i may read without making an algebraic loop: (text, rows)."""
        options = [("x", None)]
        for j in range(self.n):
            if self.backward[j] == self.backward[i]:
                options.append((NAMES[j], "same" if j < i else "delayed"))
            elif self.backward[i] and not self.backward[j]:
                options.append((NAMES[j], "any"))
        name, kind = self.draw(st.sampled_from(options))
        if name == "x":
            k = self.draw(st.integers(-2, 2))
            return f"x[t{k:+d}]" if k else "x[t]", self.input_size
        j = NAMES.index(name)
        sign = 1 if self.backward[i] else -1
        if kind == "any":
            k = self.draw(st.integers(-3, 3))
        elif kind == "same":
            k = sign * self.draw(st.integers(0, 3))
        else:
            k = sign * self.draw(st.integers(1, 3))
        return (f"{name}[t{k:+d}]" if k else f"{name}[t]"), self.sizes[j]

    def leaf(self, i) -> str:
        rows = self.sizes[i]
        ref, cols = self.reference(i)
        kind = self.draw(st.sampled_from(["matmul", "matmul", "transpose", "direct", "relu"]))
        if kind in ("direct", "relu") and cols == rows:
            if kind == "relu" and not ref.startswith("x"):
                self.relu_of.add(ref.split("[")[0])
                return f"relu({ref})"
            return ref
        if kind == "transpose":
            return f"({self.param((cols, rows))}.T @ {ref})"
        return f"({self.param((rows, cols))} @ {ref})"

    def expr(self, i, depth) -> str:
        if depth == 0 or self.draw(st.integers(0, 3)) == 0:
            return self.leaf(i)
        op = self.draw(st.sampled_from(["+", "-", "*", "+bias", "tanh", "sigmoid", "exp", "logsig", "softmax",
                                        "log_softmax", "scale", "div", "pow", "neg"]))
        a = self.expr(i, depth - 1)
        if op in ("+", "-", "*"):
            return f"({a} {op} {self.expr(i, depth - 1)})"
        if op == "+bias":
            return f"({self.param((self.sizes[i], 1))} + {a})"
        if op == "exp":
            return f"exp(tanh({a}))"  # exp of bounded values
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
        lines = [f"input x: {self.input_size}", "init x = zero"]
        for i in range(self.n):
            init = draw(st.sampled_from(["zero", "zero", "learned"]))
            lines += [f"state {NAMES[i]}: {self.sizes[i]} = {init}", f"input probe_{NAMES[i]}: {self.sizes[i]}"]
        for i in range(self.n):
            body = self.expr(i, draw(st.integers(1, 3)))
            wrap = draw(st.sampled_from(["tanh", "sigmoid", ""]))
            # a bias on every variable: each depends on a parameter (see test_parameter_free_variables_*)
            lines.append(f"{NAMES[i]}[t] = {wrap}({body}) + Pc{i} + probe_{NAMES[i]}[t]")
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
        lines += ["loss L", "L[t] = " + " + ".join(terms)]
        return "\n".join(lines) + "\n"


@st.composite
def recurrences(draw):
    builder = _Builder(draw)
    return builder.spec(), builder.relu_of


def _setup(text, T, batch, seed):
    rec = gr.Recurrence(text, name="random")
    data = rec.random_inputs(T, batch=batch, seed=seed)
    for name in rec.variables:
        if name.startswith("probe_"):
            data[name] = np.zeros_like(data[name])
    params = {k: 1.3 * v for k, v in rec.init_params(seed=seed).items()}
    for pname in rec.learned_inits().values():
        params[pname] = np.random.default_rng(seed).uniform(0.2, 0.8, params[pname].shape) * np.sign(
            np.random.default_rng(seed + 1).standard_normal(params[pname].shape))
    return rec, data, params


def _assume_smooth(run, rec, relu_of):
    """Keep relu away from its kink (the finite differences would straddle it)."""
    for name in relu_of:
        for key, value in run.values.items():
            if key.startswith(f"{name}[") and rec.variables[name].kind == "computed":
                assume(np.abs(value).min() > 1e-4 or np.all(value == 0))


@SETTINGS
@given(recurrences(), st.integers(1, 4), st.integers(1, 2), st.integers(0, 2 ** 16))
def test_random_recurrences_match_finite_differences(spec, T, batch, seed):
    text, relu_of = spec
    note(text)
    rec, data, params = _setup(text, T, batch, seed)
    # the spec is valid: it unrolls into a DAG whose order is topological
    un = rec.unroll(T)
    assert nx.is_directed_acyclic_graph(un)
    position = {n: i for i, n in enumerate(un.order)}
    assert all(position[u] < position[v] for u, v in un.edges if u in position and v in position)

    run = rec.run(data, params=params, T=T)
    assume(np.isfinite(run.loss) and abs(run.loss) < 1e6)
    _assume_smooth(run, rec, relu_of)

    def loss():
        return rec.run(data, params=params, T=T, backward=False).loss

    scale = 1e-6 * (1 + abs(run.loss))
    for pname, value in params.items():
        numeric = numerical_gradient(loss, value)
        assert_grad_close(run.grads[pname], numeric, f"dL/d{pname}", atol=scale, rtol=1e-5)
    for name in NAMES:
        probe = f"probe_{name}"
        if probe not in data:
            continue
        numeric = numerical_gradient(loss, data[probe])
        for t in range(1, T + 1):
            assert_grad_close(run.grads[f"{name}[{t}]"], numeric[t - 1], f"dL/d{name}[{t}]", atol=scale, rtol=1e-5)
    # the dummy copies add up to the totals
    for pname, per_step in run.copy_grads.items():
        np.testing.assert_allclose(sum(per_step.values()), run.grads[pname], rtol=1e-10, atol=1e-12)
    # the fast path (no copies: non-recurrent variables computed for all steps at once) agrees
    # (through a compiled program when the recurrence allows one, and on the engine)
    from graphrnn.runtime import runner

    for compiled in (True, False):
        runner.PROGRAM = compiled
        try:
            fast = rec.run(data, params=params, T=T, copies=False)
        finally:
            runner.PROGRAM = True
        assert fast.loss == pytest.approx(run.loss, rel=1e-12, abs=1e-12)
        assert set(fast.grads) == set(run.grads)
        for key in run.grads:
            np.testing.assert_allclose(fast.grads[key], run.grads[key], rtol=1e-10, atol=1e-12, err_msg=key)
        for key in run.values:
            np.testing.assert_allclose(fast.values[key], run.values[key], rtol=1e-10, atol=1e-12, err_msg=key)


@settings(SETTINGS, max_examples=40)
@given(recurrences())
def test_random_recurrences_are_valid_and_describe_themselves(spec):
    """The generator only makes valid specs: they parse, infer every shape, and each
    generated parameter gets the shape its uses imply."""
    text, _ = spec
    rec = gr.Recurrence(text)
    assert rec.losses == ["L"]
    assert all(name.startswith("P") for name in rec.param_shapes)
    for name, var in rec.variables.items():
        if var.kind == "computed" and name != "L":
            assert len(var.shape) == 2 and var.shape[1] == "B"
    assert "parameters:" in rec.describe()
    for u, v, d in rec.folded.edges(data=True):
        assert d["delay"] in range(-3, 4)


def test_the_generator_reaches_every_construct():
    """The strategy is not too narrow: over a few hundred draws, every construct appears."""
    seen = set()

    @settings(SETTINGS, max_examples=300)
    @given(recurrences())
    def collect(spec):
        text, _ = spec
        for needle in (".T @", "relu(", "exp(tanh(", "log(sigmoid(", "softmax(", "log_softmax(", " ** 2)", " / 2.0)",
                       "[t+", "[t-3]", "= learned", "cross_entropy(", "bce_with_logits(", "mse("):
            if needle in text:
                seen.add(needle)

    collect()
    assert len(seen) == 14, seen


PARAMETER_FREE = """
input x: 2
target z: 2
state g: 2
state h: 2
g[t] = tanh(x[t])
h[t] = tanh(W @ g[t-1])
L[t] = mse(h[t], z[t])
"""


def test_parameter_free_variables_get_their_gradients():
    rec = gr.Recurrence(PARAMETER_FREE)
    data = rec.random_inputs(3, batch=1, seed=1)
    run = rec.run(data, T=3)
    # dL/dg[1] = Wᵀ (diag(1 - h[2]²) dL/dh[2]), which is not zero
    h2 = run.values["h[2]"]
    expected = run.values["W"].T @ ((1 - h2 ** 2) * run.grads["h[2]"])
    assert np.abs(expected).max() > 1e-6
    np.testing.assert_allclose(run.grads["g[1]"], expected, atol=1e-12)


def test_a_loss_without_parameters_can_be_run_with_backward():
    rec = gr.Recurrence("input x: 2\ntarget z: 2\nh[t] = tanh(x[t])\nL[t] = mse(h[t], z[t])\n")
    assert rec.param_shapes == {}
    run = rec.run(rec.random_inputs(2), T=2)
    assert np.isfinite(run.loss)
