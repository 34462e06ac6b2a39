"""verify(): the engine's BPTT against the derived equations, the book's formulas and finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import graphrnn as gr
from graphrnn import zoo
from graphrnn.errors import GradcheckError, GraphrnnError, SpecError
from graphrnn.verify import Tolerance, match_standard_rnn, verify
from graphrnn.verify.check import VerifyError

WITH_LOSS = [name for name in zoo.names() if zoo.load(name).losses]
T, B = 4, 2


def test_the_zoo_has_architectures_with_and_without_a_loss():
    assert "fig10_3" in WITH_LOSS and "lstm" in WITH_LOSS
    assert "fig10_2" not in WITH_LOSS


@pytest.mark.parametrize("arch", WITH_LOSS)
def test_every_zoo_architecture_with_a_loss_passes_in_float64(arch):
    report = verify(arch, steps=T, batch=B, seed=1)
    assert report.ok, str(report)
    assert report.worst.error < 1e-7  # well inside the tolerance, not just under it
    kinds = {r.section for r in report.rows}
    assert kinds == {"steps", "params"}
    # every parameter has its total checked, and every per-step variable at every step it exists
    rec = zoo.load(arch)
    totals = {r.variable for r in report.rows if r.section == "params" and r.quantity.startswith("∇")
              and r.step is None}
    assert totals == set(rec.all_param_shapes())
    steps = {(r.variable, r.step) for r in report.rows if r.section == "steps"}
    assert steps == {(k.partition("[")[0], int(k[:-1].partition("[")[2])) for k in report.run.grads if "[" in k}
    # each row names the derived equation it checks, and every comparison was made
    numbers = {f"({eq.number})" for eq in report.derivation.equations if eq.number}
    assert all(r.equation in numbers and r.reference is not None and r.local is not None for r in report.rows)


@pytest.mark.parametrize("arch", ["fig10_3", "lstm", "fig10_11"])
def test_float32_runs_pass_with_a_looser_tolerance(arch):
    report = verify(arch, steps=T, batch=B, dtype="float32")
    assert report.ok, str(report)
    assert report.tolerance.rtol > verify(arch, steps=2, batch=1).tolerance.rtol
    assert any("float32" in note for note in report.notes)


def test_a_spec_without_a_loss_is_a_clear_error_not_a_crash():
    with pytest.raises(SpecError, match="fig10_2 has no loss"):
        verify("fig10_2")
    with pytest.raises(GraphrnnError):
        verify("fig10_2", steps=3)


def test_the_standard_rnn_is_checked_against_the_book_with_equation_numbers():
    report = verify("fig10_3", steps=T, batch=B)
    book = [r for r in report.rows if r.book is not None]
    assert len(book) == len(report.rows)  # every row of fig. 10.3 has the book's closed form too
    assert [r.equations for r in book[:3]] == ["(1) 10.17", "(2) 10.18", "(3) 10.19"]  # step τ first
    assert book[0].step == T and book[3].step == T - 1
    assert {r.equations for r in book if r.variable == "h" and r.step < T} == {"(4) 10.21†"}
    assert {r.variable for r in book if r.section == "params"} == {"b", "W", "U", "c", "V"}
    assert {r.book_equation for r in book if r.variable == "W"} == {"10.25–26"}
    text = str(report)
    assert "does not type-check" in text and "Wᵀ diag(1 − (h(t+1))²) ∇_{h(t+1)} L" in text
    assert "(4) ∇h(t) L = Wᵀ diag(1 − (h(t+1))²) ∇h(t+1) L + Vᵀ ∇o(t) L" in text  # the equations the rows name
    assert report.rows[0].section == "steps"


def test_other_architectures_get_no_book_rows():
    report = verify("lstm", steps=3, batch=1)
    assert all(r.book is None and r.book_equation == "" for r in report.rows)
    assert "‖book‖" not in str(report)
    with pytest.raises(VerifyError, match="standard RNN"):
        verify("gru", steps=2, batch=1, book=True)


VARIANT = """
size H = 4
input  u: 3
target label: class 3
state  s: H = learned
loss   J
a[t] = U @ u[t] + bias + Wrec @ s[t-1]
s[t] = tanh(a[t])
z[t] = Vout @ s[t] + cout
J[t] = cross_entropy(z[t], label[t])
"""


def test_the_book_form_is_recognised_under_other_names_and_orders():
    rec = gr.Recurrence(VARIANT)
    form = match_standard_rnn(rec)
    assert (form.h, form.o, form.L, form.x, form.y, form.a) == ("s", "z", "J", "u", "label", "a")
    assert (form.W, form.U, form.V, form.b, form.c, form.h0) == ("Wrec", "U", "Vout", "bias", "cout", "s0")
    report = verify(rec, steps=T, batch=3)
    assert report.ok, str(report)
    assert any(r.variable == "s0" and r.book is not None for r in report.rows)  # the learned h[0]


@pytest.mark.parametrize("arch", ["fig10_4", "fig10_5", "fig10_9", "fig10_10", "halt", "gru", "lstm"])
def test_specs_of_another_shape_are_not_taken_for_the_standard_rnn(arch):
    assert match_standard_rnn(zoo.load(arch)) is None


def test_rows_run_from_the_last_step_down():
    report = verify("fig10_11", steps=T, batch=1)
    steps = [r.step for r in report.rows if r.section == "steps"]
    assert steps == sorted(steps, reverse=True) and steps[0] == T and steps[-1] == 1
    variables = {r.variable for r in report.rows if r.section == "steps"}
    assert variables == {"h", "g", "o", "L"}


# ------------------------------------------------------------------ a check that can fail


def test_a_wrong_tanh_rule_fails_at_the_step_before_the_last_on_h(wrong_rule):
    wrong_rule("tanh", lambda g, out, args, need, saved, attrs: (g * (1.0 - out),))  # forgot the square
    report = verify("fig10_3", steps=T, batch=B)
    assert not report.ok
    first = report.first_failure
    assert (first.step, first.variable, first.section) == (T - 1, "h", "steps")
    assert "the derived equation (4)" in first.failure(report.tolerance)
    assert "the book's eq. 10.21†" in first.failure(report.tolerance)
    # ∇o and ∇h at step τ do not go through a tanh: they still pass
    assert all(r.ok for r in report.rows if r.step == T and r.section.endswith("steps"))
    with pytest.raises(GradcheckError, match=f"step {T - 1}, ∇h\\[{T - 1}\\] L"):
        report.check()


def test_a_rule_wrong_at_one_node_is_pinned_to_that_step_by_the_local_equation(wrong_rule):
    rec = zoo.load("fig10_3")
    inputs, params = rec.random_inputs(T, batch=B, seed=0), rec.init_params(seed=0)
    h3 = rec.run(inputs, params=params, T=T).values["h[3]"]
    good = gr.REGISTRY["tanh"].vjp

    def wrong_at_h3(g, out, args, need, saved, attrs):
        (right,) = good(g, out, args, need, saved, attrs)
        return (right * 1.5,) if np.array_equal(out, h3) else (right,)

    wrong_rule("tanh", wrong_at_h3)
    report = verify(rec, steps=T, batch=B, seed=0)
    first = report.first_failure
    assert (first.step, first.variable) == (2, "h")  # ∇h[2] is the first to pass through tanh at step 3
    tol = report.tolerance.rtol
    # the local check feeds the derived equation the engine's own downstream gradients, so it flags
    # only the broken step: ∇h[2] and the dummy copies of step 3 (b, W, U enter h[3] inside the tanh)
    local = {(r.step, r.variable) for r in report.rows if r.step is not None and r.error_local > tol}
    assert local == {(2, "h"), (3, "b"), (3, "W"), (3, "U")}
    # the derived equations (independent of the engine) and the finite differences see every gradient
    # that the wrong one flows into
    end_to_end = {(r.step, r.variable) for r in report.rows if r.section == "steps" and r.error_reference > tol}
    assert end_to_end == {(2, "h"), (1, "h")}
    assert {(r.step, r.variable) for r in report.rows if r.section == "steps" and r.error_fd > tol} == end_to_end


def test_a_wrong_sigmoid_rule_fails_the_gru_where_the_gates_take_their_inputs(wrong_rule):
    wrong_rule("sigmoid", lambda g, out, args, need, saved, attrs: (g * out,))  # forgot (1 - out)
    report = verify("gru", steps=3, batch=1)
    assert not report.ok
    # ∇u[3] and ∇r[3] come from h[3] through products, not through a sigmoid: they pass; the gates'
    # inputs h[2] and the gate parameters' copies at step 3 are the first to go through one
    first = report.first_failure
    assert (first.step, first.variable) == (2, "h")
    assert "applied to the engine's downstream gradients" in first.failure(report.tolerance)
    tol = report.tolerance.rtol
    local_copies = {r.variable for r in report.rows
                    if r.section == "params" and r.step == 3 and r.error_local > tol}
    assert local_copies == {"bu", "Uu", "Wu", "br", "Ur", "Wr"}


def test_a_wrong_matmul_rule_is_caught_too(wrong_rule):
    def wrong(g, out, args, need, saved, attrs):
        a, b = args
        return (g @ b.T if need[0] else None), (a.T @ g * 0.9 if need[1] else None)

    wrong_rule("matmul", wrong)
    report = verify("fig10_3", steps=3, batch=1)
    assert not report.ok and report.first_failure.step == 3


# ------------------------------------------------------------------ errors and tolerances


def test_relative_errors_do_not_blow_up_on_near_zero_entries():
    tol = Tolerance(rtol=1e-6, atol=1e-12)
    a = np.array([1.0, 1e-12, -3.0])
    b = np.array([1.0 + 1e-9, 2e-12, -3.0])  # the tiny entry is off by 100%, but far below the scale
    assert tol.error(a, b) < 1e-6
    assert tol.error(np.zeros(3), np.full(3, 1e-14)) < 1e-6  # an all-zero gradient, with finite-difference noise
    assert tol.error(np.zeros(3), np.full(3, 1e-3)) > 1e-6  # but not a real difference
    assert tol.error(a, -a) == pytest.approx(2.0)
    assert tol.error(np.ones(2), np.ones(3)) == float("inf")


def test_bad_options_are_graphrnn_errors():
    with pytest.raises(VerifyError, match="dtype"):
        verify("fig10_3", dtype="float16")
    with pytest.raises(VerifyError, match="steps"):
        verify("fig10_3", steps=0)
    with pytest.raises(SpecError):
        verify("no_such_architecture")


def test_free_running_mode_treats_fed_outputs_as_constants():
    report = verify("fig10_10", steps=T, batch=B, mode="free")
    assert report.ok, str(report)
    assert any("without gradient" in note for note in report.notes)


def test_the_report_reads_as_a_table_and_as_html():
    report = verify("fig10_3", steps=2, batch=1)
    text = str(report)
    for piece in ("step", "‖engine‖", "‖derived‖", "‖book‖", "finite diff.", "⟨·,u⟩", "rel. error", "∇h[2] L",
                  "∇W^(1) L", "(6) 10.25–26", "Derived equations:", "ok", "all passed"):
        assert piece in text
    html = report._repr_html_()
    assert html.startswith("<div>") and "<table>" in html and "∇W^(2) L" in html
    assert repr(report).startswith("<Report fig10_3")
    assert report.check() is report and bool(report)


def test_a_progress_bar_can_be_asked_for(capsys):
    report = verify("fig10_3", steps=2, batch=1, progress=True)
    assert report.ok


# ------------------------------------------------------------------ the check: a 1% wrong VJP


def test_a_one_percent_wrong_vjp_fails_verify_at_the_right_step_while_the_derivation_is_unaffected(wrong_rule):
    rec = zoo.load("lstm")
    inputs, params = rec.random_inputs(T, batch=B, seed=2), rec.init_params(seed=2)
    right_run = rec.run(inputs, params=params, T=T)
    right = rec.derive().evaluate(right_run)
    good = gr.REGISTRY["sigmoid"].vjp
    wrong_rule("sigmoid", lambda *a: tuple(g * 1.01 for g in good(*a)))
    report = verify(rec, steps=T, batch=B, inputs=inputs, params=params)
    first = report.first_failure
    # ∇h[τ] and the gates' gradients at τ do not pass through a sigmoid's VJP; ∇h[τ-1] is the first that does
    assert (first.step, first.variable) == (T - 1, "h"), str(report)
    assert all(r.ok for r in report.rows if r.section == "steps" and r.step == T)
    # the derived equations read the forward values only: the wrong VJP does not touch them
    wrong_run = rec.run(inputs, params=params, T=T)
    assert not np.allclose(wrong_run.grads["h[1]"], right_run.grads["h[1]"], rtol=1e-4, atol=0)
    again = rec.derive().evaluate(wrong_run)
    for k in right:
        np.testing.assert_array_equal(again[k], right[k])
    np.testing.assert_allclose(right["h[1]"], right_run.grads["h[1]"], rtol=1e-10)


# ------------------------------------------------------------------ sampled finite differences


def test_sampled_finite_differences_cover_every_step():
    report = verify("gru", steps=6, batch=2)
    assert report.fd_mode == "sample 1"
    for r in report.rows:
        if r.section == "steps" or r.step is None:  # every per-step gradient, every parameter
            assert r.fd is not None and r.directions.shape[0] == 1, r.where
    copies = [r for r in report.rows if r.section == "params" and r.step is not None]
    with_fd = {(r.variable, r.step) for r in copies if r.fd is not None}
    assert {v for v, _ in with_fd} == {r.variable for r in copies}  # each parameter at one random step
    assert len(with_fd) == len({r.variable for r in copies})
    full = verify("gru", steps=6, batch=2, fd="all")
    assert full.ok and all(r.fd is not None and r.directions is None for r in full.rows)
    assert full.evaluations > 5 * report.evaluations
    three = verify("gru", steps=6, batch=2, fd="sample 3")
    assert all(r.directions.shape[0] == 3 for r in three.rows if r.fd is not None)


@pytest.mark.parametrize("fd", ["some", "sample 0", "sample", ("sample", -1), True])
def test_bad_fd_options_are_clear_errors(fd):
    with pytest.raises(VerifyError, match="fd must be"):
        verify("fig10_3", steps=2, fd=fd)


def test_a_directional_difference_catches_a_wrong_entry():
    tol = Tolerance(rtol=1e-6, atol=1e-12)
    g = np.array([[1.0, 2.0], [3.0, 4.0]])
    u = np.random.default_rng(0).standard_normal((1, 2, 2))
    u /= np.linalg.norm(u)
    assert tol.directional_error(g, u, np.array([np.vdot(g, u[0])])) < 1e-12
    wrong = g.copy()
    wrong[1, 0] *= 1.01
    assert tol.directional_error(g, u, np.array([np.vdot(wrong, u[0])])) > 1e-4
