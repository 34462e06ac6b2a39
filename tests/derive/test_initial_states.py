"""Learned initial states reached from every side: reads of h[t−k], g[t+k], h[τ−k], g[τ+k].

A learned initial state h0 is the value of h at every step outside 1..τ, so it gets a term from
each read that reaches outside the steps.  A read of h[τ−k] in an equation of the last step does so
only in a run of at most k steps: the derivation writes it as a conditional term, [τ ≤ k] (an
Iverson bracket, :class:`graphrnn.derive.symbols.Only`).  Every case is run for τ = 1..k+2 and its
derived gradients compared with the engine's (``rec.run(...).grads``, itself checked against torch
in tests/reference) to 1e-10 relative.
"""

from __future__ import annotations

import numpy as np
import pytest
from _derive_testlib import mismatches

import graphrnn as gr
from graphrnn.derive import numeric
from graphrnn.derive import symbols as S
from graphrnn.derive.printing import LatexPrinter, TextPrinter

RTOL = 1e-10
HEAD = "input x: 2\ninit x = zero\n"
LAST = "target w: 1\nq[tau] = tanh(C @ {read} + D @ x[tau])\nE[tau] = mse(q[tau], w[tau])\nloss L, E\n"
FORWARD = "state h: 2 = learned\nh[t] = tanh(A @ h[t-1] + B @ x[t])\ntarget z: 2\nL[t] = mse(h[t], z[t])\n"
BACKWARD = "state g: 2 = learned\ng[t] = tanh(A @ g[t+1] + B @ x[t])\ntarget z: 2\nL[t] = mse(g[t], z[t])\n"

#: name -> (spec, the largest k the case reads across; runs go up to k + 2 steps)
CASES = {
    # the known gap: a last-step read of h[τ−k] reaches h0 when τ ≤ k
    "last step reads h[tau-1], no recurrence": (
        "state h: 2 = learned\nh[t] = tanh(P1 @ x[t]) + P2\ntarget z: 2\nL[t] = mse(h[t], z[t])\n"
        + LAST.format(read="h[tau-1]"), 1),
    "last step reads h[tau-2]": (FORWARD + LAST.format(read="h[tau-2]"), 2),
    "last step reads h[tau-3] and h[tau-1]": (
        FORWARD + LAST.format(read="h[tau-3] + F @ h[tau-1]"), 3),
    "last step reads h[tau-2], the only loss": (
        "state h: 2 = learned\nh[t] = tanh(A @ h[t-1] + B @ x[t])\ntarget w: 1\n"
        "q[tau] = tanh(C @ h[tau-2] + D @ h[tau])\nE[tau] = mse(q[tau], w[tau])\nloss E\n", 2),
    "last step reads h[tau-2] with a context": (
        "context c: 2\nstate h: 2 = learned\nh[t] = tanh(A @ h[t-1] + B @ x[t] + R @ c)\ntarget z: 2\n"
        "L[t] = mse(h[t], z[t])\ntarget w: 1\nq[tau] = tanh(C @ h[tau-2] + D @ c)\nE[tau] = mse(q[tau], w[tau])\n"
        "loss L, E\n", 2),
    "last step gates h[tau-2]": (
        FORWARD + "target w: 2\nq[tau] = sigmoid(C @ h[tau-2]) * tanh(D @ h[tau-1])\nE[tau] = mse(q[tau], w[tau])\n"
                  "loss L, E\n", 2),
    # a state running backwards in time, read at τ − k: before step 1 it is its learned value too
    "last step reads g[tau-2] of a backward state": (BACKWARD + LAST.format(read="g[tau-2]"), 2),
    # reads that always reach outside (after τ): no condition
    "last step reads g[tau+1] of a backward state": (BACKWARD + LAST.format(read="g[tau+1]"), 1),
    "last step reads h[tau+2] of a forward state": (FORWARD + LAST.format(read="h[tau+2]"), 2),
    # reads of every step: h[t−k] reaches h0 at t ≤ k, h[t+k] after τ
    "h reads h[t-3]": (
        "state h: 2 = learned\nh[t] = tanh(A @ h[t-3] + B @ x[t])\ntarget z: 2\nL[t] = mse(h[t], z[t])\nloss L\n",
        3),
    "backward g reads forward h[t+2]": (
        "state h: 2 = learned\nstate g: 2 = zero\nh[t] = tanh(A @ h[t-1] + B @ x[t])\n"
        "g[t] = tanh(A2 @ g[t+1] + B2 @ h[t+2])\ntarget z: 2\nL[t] = mse(g[t], z[t])\nloss L\n", 2),
    "forward s reads backward g[t-2]": (
        "state g: 2 = learned\nstate s: 2 = zero\ng[t] = tanh(A @ g[t+1] + B @ x[t])\n"
        "s[t] = tanh(A2 @ s[t-1] + B2 @ g[t-2])\ntarget z: 2\nL[t] = mse(s[t], z[t])\nloss L\n", 2),
}


def _run(name, T, batch, seed=0):
    text, _ = CASES[name]
    rec = gr.Recurrence(HEAD + text, name="initial")
    params = {k: 1.3 * v for k, v in rec.init_params(seed=seed).items()}
    rng = np.random.default_rng(seed)
    for pname in rec.learned_inits().values():
        params[pname] = rng.uniform(0.2, 0.8, params[pname].shape) * rng.choice([-1.0, 1.0], params[pname].shape)
    return rec, rec.run(rec.random_inputs(T, batch=batch, seed=seed + T), params=params, T=T)


def _cases():
    return [(name, T) for name, (_, k) in CASES.items() for T in range(1, k + 3)]


@pytest.mark.parametrize("name,T", _cases())
@pytest.mark.parametrize("batch", [1, 3])
def test_every_read_of_a_learned_initial_state_gets_its_term(name, T, batch):
    rec, run = _run(name, T, batch)
    for pname in rec.learned_inits().values():
        assert np.isfinite(run.grads[pname]).all()
    assert mismatches(run, rec.derive().evaluate(run), rtol=RTOL) == []


@pytest.mark.parametrize("name", [n for n in CASES if "[tau-" in CASES[n][0]])
def test_the_condition_decides_on_which_runs_the_term_is_there(name):
    """The term [τ ≤ k] is there for τ ≤ k (where the engine gives h0 a gradient through q) and not after."""
    _, k = CASES[name]
    for T in range(1, k + 3):
        rec, run = _run(name, T, batch=2)
        grads = rec.derive().evaluate(run)
        (pname,) = rec.learned_inits().values()
        conditional = [term for term, _ in grads.terms(pname) if term.lo.anchor == "tau" and term.lo.offset < 0]
        reached = sorted({-term.lo.offset for term in conditional})
        assert all(T <= r for r in reached)
        expected = sorted({r for r in range(1, k + 1) if T <= r and f"[tau-{r}]" in CASES[name][0]})
        assert reached == expected, (T, reached, expected)


def test_the_conditional_term_is_printed_as_an_iverson_bracket():
    rec = gr.Recurrence(HEAD + CASES["last step reads h[tau-3] and h[tau-1]"][0], name="brackets")
    d = rec.derive()
    eq = d.equation_for("h0")
    assert eq.text() == ("∇h0 L = Aᵀ diag(1 − (h(1))²) ∇h(1) L + [τ ≤ 3] Cᵀ diag(1 − (q(τ))²) ∇q(τ) L "
                         "+ [τ ≤ 1] Fᵀ diag(1 − (q(τ))²) ∇q(τ) L")
    assert "\\left[\\tau \\le 3\\right] \\boldsymbol{C}^\\top" in eq.latex()
    assert "\\left[\\tau \\le 1\\right]" in d.markdown()
    assert "[τ ≤ 3]" in d.text()


def test_the_condition_node_simplifies_and_prints_every_form():
    h = S.Var("h", S.Step("t", -2))
    assert S.only_outside(S.Step("tau", -2), S.ZERO) == S.ZERO
    assert S.only_outside(S.Step("tau", 0), h) == S.ZERO  # τ ≥ 1
    assert S.only_outside(S.Step("tau", 1), h, before=False) == h  # τ + 1 is after τ
    assert S.only_outside(S.Step("tau", 0), h, before=False) == S.ZERO
    assert S.only_outside(S.Step("0", -1), h) == h and S.only_outside(S.Step("0", 1), h) == S.ZERO
    before, after = S.only_outside(S.Step("t", -2), h), S.only_outside(S.Step("t", 2), h, before=False)
    assert TextPrinter().doprint(before) == "[t ≤ 2] h(t−2)"
    assert TextPrinter().doprint(after) == "[t ≥ τ−1] h(t−2)"
    assert LatexPrinter().doprint(after) == "\\left[t \\ge \\tau-1\\right] \\boldsymbol{h}^{(t-2)}"
    assert TextPrinter().doprint(S.shift(before, 1)) == "[t ≤ 1] h(t−1)"  # the condition moves with t
    assert [before.holds(t, 5) for t in range(1, 5)] == [True, True, False, False]
    assert [after.holds(t, 5) for t in range(1, 6)] == [False, False, False, True, True]


@pytest.mark.parametrize("mutation", ["scaled", "off by one"])
def test_the_conditional_term_one_percent_wrong_or_off_by_one_is_caught(monkeypatch, mutation):
    if mutation == "scaled":
        right = numeric._Evaluator._Only
        monkeypatch.setattr(numeric._Evaluator, "_Only", lambda self, n, t: 1.01 * right(self, n, t))
    else:
        monkeypatch.setattr(S.Only, "holds", lambda self, t, T: self.step.value(t, T) <= 1)
    rec, run = _run("last step reads h[tau-2]", 2 if mutation == "scaled" else 3, batch=2)
    assert mismatches(run, rec.derive().evaluate(run), rtol=RTOL) != []
