"""What the derivation writes: boundary cases, delays, time running backwards, the last step only,
learned initial states, contexts, and the places where no gradient flows."""

from __future__ import annotations

import numpy as np
import pytest

import graphrnn as gr
from graphrnn.derive import DeriveError
from graphrnn.derive.printing import text

MIXED = """
input x: 2
context c: 3
target y: class 3
state h: 3 = learned
h[t] = tanh(W @ h[t-2] + U @ x[t] + R @ c)
p[t] = argmax(h[t])
o[tau] = V @ h[tau] + Q @ one_hot(p[tau-1])
L[tau] = cross_entropy(o[tau], y[tau])
"""


def _lines(d) -> list[str]:
    return [eq.text() for eq in d.equations]


def test_a_delay_of_two_a_last_step_equation_a_context_and_a_learned_state():
    rec = gr.Recurrence(MIXED, name="mixed")
    lines = _lines(rec.derive())
    assert "∂L/∂L(τ) = 1" in lines  # a loss at the last step only
    assert "∇h(τ) L = Vᵀ ∇o(τ) L" in lines
    # h(τ−1) would be read by h(τ+1), which does not exist, and by nothing else
    assert "∇h(τ−1) L = 0    (no equation reads it at these steps: no path to the loss)" in lines
    assert "∇h(t) L = Wᵀ diag(1 − (h(t+2))²) ∇h(t+2) L    for 1 ≤ t ≤ τ−2" in lines
    assert "∇R L = Σ_t diag(1 − (h(t))²) ∇h(t) L cᵀ" in lines  # the context is data: only R gets a gradient
    assert "∇V L = ∇o(τ) L h(τ)ᵀ" in lines  # used at the last step only: no sum
    assert "∇Q L = ∇o(τ) L 1_{p(τ−1)}ᵀ" in lines
    assert "∇h0 L = Σ_{t=−1}^{0} Wᵀ diag(1 − (h(t+2))²) ∇h(t+2) L" in lines  # both steps before the first
    assert any("argmax(h(t)) in the equation of p: argmax is piecewise constant: no gradient" in line
               for line in lines)
    run = rec.run(rec.random_inputs(5, batch=2, seed=1), T=5)
    grads = rec.derive().evaluate(run)
    for k, v in run.grads.items():
        np.testing.assert_allclose(grads[k], v, rtol=1e-10, atol=1e-14, err_msg=k)


def test_a_state_running_backwards_has_its_boundary_at_the_first_step():
    d = gr.derive("fig10_11")
    g = d.for_variable("g")
    assert [eq.text() for eq in g] == [
        "∇g(1) L = V2ᵀ ∇o(1) L",
        "∇g(t) L = W2ᵀ diag(1 − (g(t−1))²) ∇g(t−1) L + V2ᵀ ∇o(t) L    for 2 ≤ t ≤ τ"]
    assert d.equation_for("g", 1, T=4) is g[0] and d.equation_for("g", 4, T=4) is g[1]


def test_the_last_step_only_figure_10_5():
    lines = _lines(gr.derive("fig10_5"))
    assert lines[:4] == ["∂L/∂L(τ) = 1", "∇o(τ) L = ŷ(τ) − 1_{y(τ)}", "∇h(τ) L = Vᵀ ∇o(τ) L",
                         "∇h(t) L = Wᵀ diag(1 − (h(t+1))²) ∇h(t+1) L    for 1 ≤ t ≤ τ−1"]
    assert "∇c L = ∇o(τ) L" in lines


def test_the_output_recurrence_of_figure_10_4():
    o = gr.derive("fig10_4").for_variable("o")
    assert [eq.text() for eq in o] == [
        "∇o(τ) L = ŷ(τ) − 1_{y(τ)}",
        "∇o(t) L = Wᵀ diag(1 − (h(t+1))²) ∇h(t+1) L + ŷ(t) − 1_{y(t)}    for 1 ≤ t ≤ τ−1"]


def test_teacher_forcing_and_free_running_say_where_no_gradient_flows():
    teacher = [eq.note for eq in gr.derive("fig10_6").equations if eq.kind == "none"]
    assert teacher == ["y(t−1) is a target, fed to h as data (teacher forcing): no gradient flows into it, nor "
                       "back through it to earlier steps"]
    assert gr.derive("fig10_6").equation_for("h", 2, T=4).text() == "∇h(t) L = Vᵀ ∇o(t) L    for 1 ≤ t ≤ τ"
    free = [eq.note for eq in gr.derive("fig10_6", mode="free").equations if eq.kind == "none"]
    assert len(free) == 1 and "argmax(o(t))" in free[0] and "without gradient" in free[0]


def test_softmax_and_log_softmax_outside_a_loss_are_written_out():
    rec = gr.Recurrence("""
input x: 3
target z: 3
state h: 3 = zero
h[t] = softmax(W @ h[t-1] + U @ x[t])
g[t] = log_softmax(h[t])
L[t] = mse(g[t], z[t])
""")
    d = rec.derive()
    assert d.equation_for("g", 1, T=3).text() == "∇g(t) L = (2/3) (g(t) − z(t))    for 1 ≤ t ≤ τ"
    assert "∇g(t) L − softmax(h(t)) (1ᵀ ∇g(t) L)" in d.equation_for("h", 1, T=3).text()
    assert "(diag(h(t+1)) − h(t+1) h(t+1)ᵀ) ∇h(t+1) L" in d.equation_for("h", 1, T=3).text()


def test_access_for_an_explorer():
    rec = gr.load("lstm")
    d = rec.derive()
    run = rec.run(rec.random_inputs(4, batch=2), T=4)
    grads = d.evaluate(run)
    eq = grads.equation("s", 2)
    assert eq is d.equation_for("s", 2, T=4) and eq.number is not None
    parts = grads.terms("s", 2)
    assert [t.consumer for t, _ in parts] == ["s", "h"]  # diag(f(t+1)) ∇s(t+1) L, then through h(t)
    np.testing.assert_allclose(sum(v for _, v in parts), grads["s[2]"])
    assert [t.consumer for t, _ in grads.terms("s", 4)] == ["h"]  # t = τ: no s(τ+1)
    copies = grads.terms("Wf", 3)
    np.testing.assert_allclose(sum(v for _, v in copies), grads.copies["Wf"][3])
    with pytest.raises(DeriveError, match="no derived terms"):
        grads.terms("s", 9)
    with pytest.raises(DeriveError, match="neither a variable nor a parameter"):
        d.equation_for("nothing")
    with pytest.raises(DeriveError, match="give the number of steps"):
        d.equation_for("h", 2)


def test_errors_are_clear():
    with pytest.raises(DeriveError, match="fig10_2 has no loss"):
        gr.derive("fig10_2")
    with pytest.raises(DeriveError, match="mode must be"):
        gr.derive("fig10_3", mode="sideways")
    rec = gr.load("fig10_10")
    run = rec.run(rec.random_inputs(3, batch=1), T=3, mode="free")
    with pytest.raises(DeriveError, match="derive it with gr.derive\\(rec, mode='free'\\)"):
        rec.derive().evaluate(run)


def test_printers_dispatch_on_every_node_type():
    from graphrnn.derive import symbols as S
    from graphrnn.derive.printing import LatexPrinter, TextPrinter

    nodes = [cls for cls in vars(S).values() if isinstance(cls, type) and issubclass(cls, S.Node)
             and cls is not S.Node]
    for printer in (TextPrinter, LatexPrinter):
        missing = [cls.__name__ for cls in nodes if not hasattr(printer, f"_print_{cls.__name__}")]
        assert missing == [], (printer.__name__, missing)
    assert text(S.add(S.Var("h", S.T0), S.scale(-0.5, S.Var("g", S.T0)))) == "h(t) − (1/2) g(t)"


def test_a_loss_read_by_another_equation_gets_1_plus_its_terms_and_like_terms_add_up():
    rec = gr.Recurrence("""
input x: 2
target z: 3
state h: 3 = zero
loss L, J
h[t] = tanh(W @ h[t-1] + U @ x[t])
L[t] = mse(h[t], z[t])
J[t] = 2 * L[t] * L[t]
""")
    lines = _lines(rec.derive())
    assert lines[:2] == ["∂L/∂J(t) = 1    for 1 ≤ t ≤ τ", "∂L/∂L(t) = 1 + 4 L(t)    for 1 ≤ t ≤ τ"]
    run = rec.run(rec.random_inputs(4, batch=2), T=4)
    grads = rec.derive().evaluate(run)
    for k, v in run.grads.items():
        np.testing.assert_allclose(grads[k], v, rtol=1e-10, atol=1e-14, err_msg=k)
