"""Free running and scheduled sampling (§10.2.1, fig. 10.6) give the same numbers on every path.

The fed-back value (``argmax`` of the scores, a ``sample`` from their softmax, or scheduled
sampling's mix of prediction and truth drawn with the run's generator) carries no gradient,
so a fast path (``copies=False``) must make exactly the taped run's (``copies=True``) choices:
the same classes from the same random draws, compared bit for bit (``run.fed``), and then the
same values and gradients to 1e-12.  Checked on fig. 10.6, fig. 10.10 and the random
recurrences of ``tests/reference/random_specs.py`` that have a feedback line, with the
compiled program allowed (``runner.PROGRAM``) and not, so that whichever strategy
``copies=False`` takes is held to the taped run.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st
from reference.random_specs import recurrences

import graphrnn as gr
from graphrnn import zoo

FEEDBACK = [name for name in zoo.names() if gr.load(name).spec.feedbacks]
#: (mode, p): p = 0.3 and 0.7 make scheduled sampling draw both ways within a short run
MODES = [("free", 0.5), ("scheduled", 0.3), ("scheduled", 0.7)]


@pytest.fixture(params=[True, False], ids=["program allowed", "engine only"])
def program(request, monkeypatch):
    from graphrnn.runtime import runner

    monkeypatch.setattr(runner, "PROGRAM", request.param)
    return request.param


def rel(a, b):
    return float(np.max(np.abs(a - b), initial=0.0) / max(np.max(np.abs(b), initial=0.0), 1e-300))


def assert_same_run(fast, slow, what):
    assert set(fast.fed) == set(slow.fed), what
    for key, value in slow.fed.items():
        ours = np.asarray(fast.fed[key])
        assert (ours.shape, ours.dtype) == (np.shape(value), np.asarray(value).dtype), f"{what}: {key}"
        np.testing.assert_array_equal(ours, value, err_msg=f"{what}: {key}")
    assert fast.loss == pytest.approx(slow.loss, rel=1e-12), what
    for name, v in slow.values.items():
        np.testing.assert_allclose(fast.values[name], v, rtol=1e-12, atol=1e-15, err_msg=f"{what}: {name}")
    for name, g in slow.grads.items():
        assert rel(fast.grads[name], g) < 1e-12, f"{what}: d/d{name}"


def test_the_zoo_has_feedback_specs():
    assert {"fig10_6", "fig10_10"} <= set(FEEDBACK)


@pytest.mark.parametrize("mode,p", MODES)
@pytest.mark.parametrize("name", FEEDBACK)
def test_fed_back_values_are_the_taped_runs_on_every_path(name, mode, p, program):
    rec = gr.load(name)
    data, params = rec.random_inputs(9, batch=4, seed=3), rec.init_params(seed=2)
    params = {k: 2.0 * v for k, v in params.items()}  # larger scores: the predictions vary over the run
    slow = rec.run(data, params, mode=mode, p=p, seed=11)
    fast = rec.run(data, params, mode=mode, p=p, seed=11, copies=False)
    assert_same_run(fast, slow, f"{name} {mode} p={p}")
    # not vacuous: the fed classes are not all the truth (free) and not all one class
    fed = np.stack([slow.fed[k] for k in sorted(slow.fed)])
    assert len(np.unique(fed)) > 1


@settings(max_examples=25, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(recurrences(), st.integers(1, 5), st.integers(1, 3), st.sampled_from(MODES), st.integers(0, 2 ** 16))
def test_random_recurrences_with_feedback_agree_on_every_path(drawn, T, batch, mode_p, seed):
    assume(drawn.feedback)
    note(drawn.text)
    from graphrnn.runtime import runner

    rec = gr.Recurrence(drawn.text, name="random")
    data, params = rec.random_inputs(T, batch=batch, seed=seed), rec.init_params(seed=seed + 1)
    mode, p = mode_p
    slow = rec.run(data, params, mode=mode, p=p, seed=seed)
    for allowed in (True, False):
        saved = runner.PROGRAM
        runner.PROGRAM = allowed
        try:
            fast = rec.run(data, params, mode=mode, p=p, seed=seed, copies=False)
        finally:
            runner.PROGRAM = saved
        assert_same_run(fast, slow, f"{mode} p={p} program={allowed}")


@pytest.mark.parametrize("mode,p", MODES)
@pytest.mark.parametrize("name", FEEDBACK)
def test_a_lean_program_feeds_back_the_taped_runs_values(name, mode, p, monkeypatch):
    """A long run's lean program (runner.LEAN_BYTES) also computes the fed values in its recurrent
    stage, with the truth read straight from the caller's data in scheduled sampling."""
    from graphrnn.runtime import runner

    monkeypatch.setattr(runner, "LEAN_BYTES", 0)
    rec = gr.load(name)
    data, params = rec.random_inputs(30, batch=3, seed=1), rec.init_params(seed=2)
    params = {k: 2.0 * v for k, v in params.items()}
    fast = rec.run(data, params, mode=mode, p=p, seed=3, copies=False)
    assert fast.program is not None and fast.program.lean
    assert_same_run(fast, rec.run(data, params, mode=mode, p=p, seed=3), f"{name} {mode} p={p}, lean")


TRUTH_ONLY_FED = """
size H = 4, I = 3, K = 3
input    x: I
target   y: class K
target   z: K
init     y = zero
feedback y[t] = argmax(o[t])
state    h: H = zero
loss     L
h[t] = tanh(W @ h[t-1] + U @ x[t] + R @ one_hot(y[t-1]))
o[t] = c + V @ h[t]
L[t] = mse(o[t], z[t])
"""


def test_a_lean_program_reads_the_truth_it_feeds_from_the_callers_data(monkeypatch):
    """y is read only inside the recurrence (no loss reads it): a lean program reads it straight from
    the caller's array (``_Layout.direct``), also where scheduled sampling's fed value takes the truth."""
    from graphrnn.runtime import runner

    monkeypatch.setattr(runner, "LEAN_BYTES", 0)
    rec = gr.Recurrence(TRUTH_ONLY_FED, name="truth_only_fed")
    data, params = rec.random_inputs(25, batch=3, seed=4), rec.init_params(seed=5)
    params = {k: 3.0 * v for k, v in params.items()}
    fast = rec.run(data, params, mode="scheduled", p=0.5, seed=6, copies=False)
    assert fast.program.lean and fast.program.layouts["y"].direct
    assert_same_run(fast, rec.run(data, params, mode="scheduled", p=0.5, seed=6), "scheduled, lean, direct")
