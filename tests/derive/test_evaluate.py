"""The derived equations, evaluated with numpy, against the engine's backward pass."""

from __future__ import annotations

import numpy as np
import pytest
from _derive_testlib import SETTINGS, mismatches, zoo_cases
from hypothesis import given, note, settings
from hypothesis import strategies as st
from reference.random_specs import random_params, recurrences

import graphrnn as gr
from graphrnn.derive import DeriveError

# random specs may leave variables no loss depends on: graphrnn warns, as it should; expected here
pytestmark = [pytest.mark.filterwarnings("ignore::graphrnn.UnusedWarning"),
              pytest.mark.filterwarnings("ignore::graphrnn.NameWarning")]


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


#: how many random recurrences are derived and checked (each in teacher forcing, and in free running too
#: when it has a feedback line)
RANDOM = settings(SETTINGS, max_examples=50)


@RANDOM
@given(recurrences(), st.integers(1, 5), st.integers(1, 2), st.integers(0, 2 ** 16))
def test_random_recurrences_equal_the_engine(drawn, T, batch, seed):
    """tests/reference/random_specs.py's recurrences (the ones the reference interpreter checks the engine
    on): every derived gradient, dummy copies included, equals the engine's to 1e-10."""
    note(drawn.text)
    rec = gr.Recurrence(drawn.text, name="random")
    data = rec.random_inputs(T, batch=batch, seed=seed)
    params = random_params(rec, seed)
    for mode in ("teacher", "free") if drawn.feedback else ("teacher",):
        run = rec.run(data, params=params, T=T, mode=mode)
        assert np.isfinite(run.loss)
        assert mismatches(run, gr.derive(rec, mode=mode).evaluate(run), rtol=1e-10) == [], mode


def test_random_recurrences_cover_what_the_issue_asks_for():
    """The generator, with the random test's settings, does make delays > 1, backward states, gate
    products, last-step equations reading [tau-k] and [tau+1], learned initial states, contexts, one-hot
    feedback (free running) and mixed-direction cycles (a guard against a generator that lost them)."""
    seen: set[str] = set()

    @RANDOM
    @given(recurrences())
    def collect(drawn):
        seen.update(drawn.constructs)

    collect()
    wanted = {"delay>1", "backward", "gate", "tau", "tau-k", "tau+k", "learned", "context", "one_hot", "feedback",
              "mixed", "learned, no x[t] added"}
    assert wanted <= seen, wanted - seen


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
