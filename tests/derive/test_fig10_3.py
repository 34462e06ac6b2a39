"""Fig. 10.3's derivation is the book's eqs. 10.17–10.28, term by term (10.21 in its corrected order)."""

from __future__ import annotations

import numpy as np
import pytest

import graphrnn as gr
from graphrnn.derive.printing import TextPrinter, text
from graphrnn.verify.book import EQ_10_21_NOTE, book_gradients, match_standard_rnn

#: the book's equations for fig. 10.3 as the text printer writes them: number -> (lhs, [terms])
BOOK = {
    "10.17": ("∂L/∂L(t)", ["1"]),
    "10.18": ("∇o(t) L", ["ŷ(t) − 1_{y(t)}"]),
    "10.19": ("∇h(τ) L", ["Vᵀ ∇o(τ) L"]),
    # 10.20 is the sum over consumers before it is worked out; 10.21 the worked-out form (†: corrected order)
    "10.21†": ("∇h(t) L", ["Wᵀ diag(1 − (h(t+1))²) ∇h(t+1) L", "Vᵀ ∇o(t) L"]),
    "10.22": ("∇c L", ["Σ_t ∇o(t) L"]),
    "10.23": ("∇b L", ["Σ_t diag(1 − (h(t))²) ∇h(t) L"]),
    "10.24": ("∇V L", ["Σ_t ∇o(t) L h(t)ᵀ"]),
    "10.25–26": ("∇W L", ["Σ_t diag(1 − (h(t))²) ∇h(t) L h(t−1)ᵀ"]),
    "10.27–28": ("∇U L", ["Σ_t diag(1 − (h(t))²) ∇h(t) L x(t)ᵀ"]),
}
EQ_10_20 = ["(∂h(t+1)/∂h(t))ᵀ ∇h(t+1) L", "(∂o(t)/∂h(t))ᵀ ∇o(t) L"]


def _terms(node) -> list[str]:
    printer = TextPrinter()
    return [("− " if sign == "−" else "") + t for sign, t in printer.terms(node)]


def test_every_book_equation_comes_out_term_by_term():
    d = gr.derive(gr.load("fig10_3"))
    numbered = {eq.book: eq for eq in d.equations if eq.book}
    assert set(numbered) == set(BOOK)
    for number, (lhs, terms) in BOOK.items():
        eq = numbered[number]
        assert text(eq.lhs) == lhs, number
        got = _terms(eq.rhs) if number != "10.18" else [text(eq.rhs)]
        assert got == terms, number


def test_eq_10_20_is_the_sum_over_consumers():
    d = gr.derive(gr.load("fig10_3"))
    eq = next(eq for eq in d.equations if eq.book == "10.21†")
    assert [text(t.jacobian) for t in eq.terms] == EQ_10_20
    assert [t.consumer for t in eq.terms] == ["h", "o"]


def test_the_text_carries_the_numbers_and_the_note():
    out = gr.derive(gr.load("fig10_3")).text()
    assert "∇h(t) L = Wᵀ diag(1 − (h(t+1))²) ∇h(t+1) L + Vᵀ ∇o(t) L    for 1 ≤ t ≤ τ−1    (10.21†)" in out
    assert EQ_10_21_NOTE in out


def test_a_named_preactivation_gets_its_own_equation():
    rec = gr.Recurrence(gr.zoo.text("fig10_3").replace(
        "h[t] = tanh(b + W @ h[t-1] + U @ x[t])", "a[t] = b + W @ h[t-1] + U @ x[t]\nh[t] = tanh(a[t])"),
        name="fig10_3a")
    assert match_standard_rnn(rec).a == "a"
    d = rec.derive()
    a = d.equation_for("a", 2, T=4)
    assert text(a.rhs) == "diag(1 − (h(t))²) ∇h(t) L"
    assert text(d.equation_for("W").rhs) == "Σ_t ∇a(t) L h(t−1)ᵀ"
    assert d.equation_for("h", 2, T=4).book == "10.21†"


@pytest.mark.parametrize("T,batch", [(1, 1), (6, 3)])
def test_the_derived_numbers_equal_the_books_closed_forms(T, batch):
    rec = gr.load("fig10_3")
    run = rec.run(rec.random_inputs(T, batch=batch, seed=1), T=T)
    ours = rec.derive().evaluate(run)
    book = book_gradients(match_standard_rnn(rec), run.values, T)
    for t in range(1, T + 1):
        np.testing.assert_allclose(ours[f"o[{t}]"], book.o[t], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(ours[f"h[{t}]"], book.h[t], rtol=1e-12, atol=1e-14)
        for role in "cbVWU":
            np.testing.assert_allclose(ours.copies[role][t], book.copies[role][t], rtol=1e-12, atol=1e-14)
