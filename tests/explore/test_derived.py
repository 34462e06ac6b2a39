"""The derived equations on the page (graphrnn.derive): each gradient's equation, one entry's terms plugged in,
and the three-way check engine vs derived equation vs finite difference, which fails when the engine is wrong."""

from __future__ import annotations

import pytest

import graphrnn as gr
from graphrnn.explore.trace import build_trace


@pytest.fixture(scope="module")
def trace():
    return build_trace(gr.load("fig10_3"), steps=4, batch=2, seed=0)


def test_every_gradient_has_its_derived_equation_and_all_three_agree(trace):
    assert trace.derivation is not None and trace.derive_note == "" and trace.derive_missing == []
    for c in trace.all_checks():
        assert c.derived is not None and c.equation, c.key
        assert c.agrees(c.derived) and c.agrees(c.fd) and c.ok, c.key


def test_the_equations_are_the_books(trace):
    assert "(10.21†)" in trace.checks["h[2]"].equation and "(10.19)" in trace.checks["h[4]"].equation
    assert "(10.18)" in trace.checks["o[3]"].equation and "(10.17)" in trace.checks["L[1]"].equation
    assert "(10.25–26)" in trace.param_checks["W"].equation


def test_the_plugged_in_terms_are_written_at_the_step_and_add_up(trace):
    c = trace.checks["h[2]"]
    lines = c.plugged.splitlines()
    assert lines[0] == f"(∇h(2) L)[{c.entry[0]}, {c.entry[1]}]"
    assert "(Wᵀ diag(1 − (h(3))²) ∇h(3) L)" in c.plugged and "(Vᵀ ∇o(2) L)" in c.plugged
    terms = lines[-2].strip().removeprefix("= ").replace(" − ", " + −").split(" + ")
    assert len(terms) == 2
    assert sum(float(x.replace("−", "-")) for x in terms) == pytest.approx(c.derived, rel=1e-9)
    assert float(lines[-1].split("=")[1].replace("−", "-")) == pytest.approx(c.derived, rel=1e-9)


def test_the_derived_numbers_do_not_come_from_the_engine(wrong_rule):
    """With the engine's tanh rule 1% off, the derived equation sides with the finite difference."""
    wrong_rule("tanh", lambda g, out, args, need, saved, attrs: (g * (1 - out * out) * 1.01,))
    tr = build_trace(gr.load("fig10_3"), steps=3, batch=1)
    c = tr.checks["h[1]"]
    assert c.agrees(c.derived) is False and c.agrees(c.fd) is False
    assert abs(c.derived - c.fd) <= 1e-6 + 1e-5 * abs(c.fd)


def test_every_zoo_recurrence_with_a_loss_is_derived_and_agrees():
    for name in gr.zoo.names():
        rec = gr.load(name)
        if not rec.losses:
            continue
        tr = build_trace(rec, steps=3, batch=1, seed=1)
        assert all(c.ok and c.derived is not None for c in tr.all_checks()), name


def test_without_the_derivation_the_page_says_so_and_checks_against_finite_differences(monkeypatch):
    import importlib

    from graphrnn.explore import equations

    real = importlib.import_module

    def no_derive(name, *args):
        if name == "graphrnn.derive":
            raise ModuleNotFoundError("No module named 'graphrnn.derive'", name="graphrnn.derive")
        return real(name, *args)

    monkeypatch.setattr(equations.importlib, "import_module", no_derive)
    tr = build_trace(gr.load("fig10_3"), steps=2, batch=1)
    assert tr.derivation is None and tr.derive_note == equations.NOT_BUILT
    assert all(c.derived is None and c.ok for c in tr.all_checks())


def test_a_recurrence_the_derivation_cannot_handle_is_named_on_the_page(monkeypatch):
    import sys

    from graphrnn.errors import GraphrnnError

    derive_module = sys.modules["graphrnn.derive"]  # (gr.derive is the function)

    def refuse(rec, *args, **kwargs):
        raise GraphrnnError("no rule for op 'frobnicate' in h[t]")

    monkeypatch.setattr(derive_module, "derive", refuse)
    tr = build_trace(gr.load("fig10_3"), steps=2, batch=1)
    assert "cannot derive this recurrence (no rule for op 'frobnicate' in h[t])" in tr.derive_note
    assert all(c.derived is None for c in tr.all_checks())
