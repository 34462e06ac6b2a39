"""The derived equations, evaluated with numpy, against the engine's backward pass."""

from __future__ import annotations

import numpy as np
import pytest
from _derive_testlib import SETTINGS, mismatches, recurrences, setup, zoo_cases
from hypothesis import assume, given, note
from hypothesis import strategies as st

import graphrnn as gr
from graphrnn.derive import DeriveError


@pytest.mark.parametrize("name,mode", zoo_cases())
@pytest.mark.parametrize("T,batch", [(1, 1), (5, 3)])
def test_zoo_gradients_equal_the_engines(name, mode, T, batch):
    rec = gr.load(name)
    run = rec.run(rec.random_inputs(T, batch=batch, seed=T), params=rec.init_params(seed=2), T=T, mode=mode,
                  seed=3)
    grads = gr.derive(rec, mode=mode).evaluate(run)
    assert mismatches(run, grads) == []


def test_evaluate_in_float32_runs():
    rec = gr.load("gru")
    inputs = rec.random_inputs(4, batch=2)
    run = rec.run(inputs, T=4, dtype=np.float32)
    grads = rec.derive().evaluate(run)
    assert mismatches(run, grads, rtol=1e-4) == []
    assert grads["h[1]"].dtype == np.float64  # computed in float64 from the float32 values


@SETTINGS
@given(recurrences(), st.integers(1, 5), st.integers(1, 2), st.integers(0, 2 ** 16))
def test_random_recurrences_equal_the_engine(text, T, batch, seed):
    note(text)
    rec, data, params = setup(text, T, batch, seed)
    try:
        run = rec.run(data, params=params, T=T)
    except gr.ShapeError:  # a value made from parameters alone (one column) meets a batch of class labels
        assume(False)
    assume(np.isfinite(run.loss) and abs(run.loss) < 1e6)
    grads = gr.derive(rec).evaluate(run)
    assert mismatches(run, grads, rtol=1e-8) == []


def test_random_recurrences_cover_what_the_issue_asks_for():
    """The generator does make delays > 1, backward states, gate products, tau equations,
    learned initial states and contexts (a guard against a generator that silently lost them)."""
    from hypothesis import find

    features = {
        "delay > 1": lambda s: "[t-2]" in s or "[t-3]" in s,
        "backward state": lambda s: "[t+1]" in s.split("L[t]")[0] and "g[t] =" in s,
        "gate product": lambda s: "sigmoid(" in s and ") * tanh(" in s,
        "tau equation": lambda s: "o[tau]" in s,
        "learned init": lambda s: "= learned" in s,
        "context": lambda s: "context c" in s,
    }
    for what, pred in features.items():
        assert find(recurrences(), pred, settings=SETTINGS), what


def test_the_fast_path_gives_the_same_and_a_checkpointed_run_is_a_clear_error():
    rec = gr.load("lstm")
    inputs = rec.random_inputs(6, batch=2)
    run = rec.run(inputs, T=6, copies=False)  # no dummy copies: the totals and per-step gradients only
    grads = rec.derive().evaluate(run)
    for k, v in run.grads.items():
        np.testing.assert_allclose(grads[k], v, rtol=1e-10, atol=1e-14, err_msg=k)
    with pytest.raises(DeriveError, match="kept no per-step values"):
        rec.derive().evaluate(rec.run(inputs, T=6, checkpoint=True))


def test_a_last_step_read_that_reaches_the_learned_initial_state_gives_it_a_gradient():
    # found by the reference interpreter's generator (tests/reference/random_specs.py) in review; the
    # derivation now writes the term [τ ≤ 1] P3ᵀ diag(1 − (q(τ))²) ∇q(τ) L (tests/derive/test_initial_states.py)
    rec = gr.Recurrence("input x: 3\nstate h: 2 = learned\nh[t] = tanh(P1 @ x[t]) + P2\n"
                        "target z: 2\nL[t] = mse(h[t], z[t])\ntarget w: 1\n"
                        "q[tau] = tanh(P3 @ h[tau-1] + P4 @ x[tau])\nE[tau] = mse(q[tau], w[tau])\nloss L, E\n",
                        name="tau_reads_h0")
    run = rec.run(rec.random_inputs(1, batch=1, seed=0), params=rec.init_params(seed=0), T=1)
    assert np.abs(run.grads["h0"]).max() > 0  # the engine: q(1) reads h(0) = h0
    assert mismatches(run, gr.derive(rec).evaluate(run)) == []
