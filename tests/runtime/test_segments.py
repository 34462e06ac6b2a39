"""Checkpointed and truncated BPTT run as compiled programs for specs that read data beside the step."""

import numpy as np
import pytest

import graphrnn as gr
from graphrnn.runtime import segments

BESIDE = """
size H = 4, I = 3, K = 4
input  x: I
target y: class K
init   x = zero
state  h: H = zero
loss   L
h[t] = tanh(b + W @ h[t-2] + U @ x[t-1] + U2 @ x[t+1])
o[t] = c + V @ h[t]
L[t] = cross_entropy(o[t], y[t])
"""


def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.fixture
def program_calls(monkeypatch):
    calls = []
    original = segments.program_segments
    monkeypatch.setattr(segments, "program_segments", lambda *a, **k: calls.append(original(*a, **k)) or calls[-1])
    return calls


@pytest.mark.parametrize("spec", [BESIDE, "fig10_9"])
@pytest.mark.parametrize("options", [{"checkpoint": True}, {"checkpoint": 3}, {"checkpoint": 5}])
def test_checkpoints_with_data_read_beside_the_step_run_as_programs(spec, options, program_calls):
    rec = gr.load(spec) if not spec.startswith("\n") else gr.Recurrence(spec)
    data, params = rec.random_inputs(17, batch=2, seed=2), rec.init_params(seed=3)
    full = rec.run(data, params)
    got = rec.run(data, params, **options)
    assert program_calls[-1] is not None  # the programs ran it
    assert got.loss == pytest.approx(full.loss, rel=1e-12)
    assert got.step_losses == pytest.approx(full.step_losses, rel=1e-12)
    for name in params:
        assert rel(got.grads[name], full.grads[name]) < 1e-12, name


@pytest.mark.parametrize("spec", [BESIDE, "fig10_9"])
@pytest.mark.parametrize("k1,k2", [(3, 3), (6, 6), (17, 17)])
def test_truncated_windows_with_data_read_beside_the_step(spec, k1, k2, program_calls):
    rec = gr.load(spec) if not spec.startswith("\n") else gr.Recurrence(spec)
    data, params = rec.random_inputs(17, batch=2, seed=2), rec.init_params(seed=3)
    got = rec.run(data, params, truncate=(k1, k2))
    assert program_calls[-1] is not None
    program_calls.clear()
    engine = segments.program_segments  # the same windows on the taped engine
    try:
        segments.program_segments = lambda *a, **k: None
        ref = rec.run(data, params, truncate=(k1, k2))
    finally:
        segments.program_segments = engine
    assert got.loss == pytest.approx(ref.loss, rel=1e-12)
    for name in params:
        assert rel(got.grads[name], ref.grads[name]) < 1e-12, name


# ------------------------------------------------------------------------------ every spec, as programs

SHORT_SEGMENTS = """
size H = 3, I = 2, K = 3
input  x: I
target y: class K
init   x = zero
state  h: H = learned
loss   L, M
h[t] = tanh(b + W @ h[t-3] + U @ x[t-1])
o[t] = c + V @ h[t]
q[tau] = Q @ h[tau-1] + P @ h[tau]
L[t] = cross_entropy(o[t], y[t])
M[tau] = cross_entropy(q[tau], y[tau])
"""


@pytest.mark.parametrize("options", [{"checkpoint": 1}, {"checkpoint": 2}, {"checkpoint": 4}, {"truncate": (1, 2)},
                                     {"truncate": (2, 2)}, {"truncate": (3, 5)}, {"truncate": (10, 10)}])
def test_segments_shorter_than_a_delay_and_equations_at_tau_run_as_programs(options, program_calls):
    """Segments of 1 or 2 steps of a delay-3 state (values carried from several segments back, and their
    gradients sent back there), a learned initial state read across segments, and equations at tau
    (which run in the segments that end at T only)."""
    rec = gr.Recurrence(SHORT_SEGMENTS, name="short_segments")
    data, params = rec.random_inputs(10, batch=2, seed=5), rec.init_params(seed=6)
    got = rec.run(data, params, **options)
    assert program_calls[-1] is not None, options  # the programs ran it
    program_calls.clear()
    engine = segments.program_segments
    try:
        segments.program_segments = lambda *a, **k: None
        ref = rec.run(data, params, **options)
    finally:
        segments.program_segments = engine
    assert got.loss == pytest.approx(ref.loss, rel=1e-12)
    assert got.step_losses == pytest.approx(ref.step_losses, rel=1e-12) and set(got.step_losses) == set(ref.step_losses)
    for name in params:
        assert rel(got.grads[name], ref.grads[name]) < 1e-12, (options, name)
    for name, state in ref.final_state.items():
        np.testing.assert_array_equal(got.final_state[name], state)
    if "checkpoint" in options:  # checkpointing changes nothing: the whole run's gradients
        full = rec.run(data, params)
        for name in params:
            assert rel(got.grads[name], full.grads[name]) < 1e-12, (options, name)


def test_a_last_segment_too_short_for_a_read_at_tau_runs_on_the_engine(program_calls):
    rec = gr.Recurrence(SHORT_SEGMENTS.replace("Q @ h[tau-1]", "Q @ o[tau-2]"), name="tau_back")
    data, params = rec.random_inputs(10, batch=2, seed=5), rec.init_params(seed=6)
    got = rec.run(data, params, checkpoint=3)  # the last segment is step 10 alone: o[8] is not carried into it
    assert program_calls[-1] is None
    full = rec.run(data, params)
    for name in params:
        assert rel(got.grads[name], full.grads[name]) < 1e-12, name


def test_a_truncated_window_too_short_for_a_read_at_tau_is_refused():
    rec = gr.Recurrence(SHORT_SEGMENTS.replace("Q @ h[tau-1]", "Q @ o[tau-2]"), name="tau_back")
    data = rec.random_inputs(10, batch=2, seed=5)
    with pytest.raises(ValueError, match=r"does not reach o\[tau-2\].*k2 at least 3"):
        rec.run(data, truncate=(1, 2))
    assert np.isfinite(rec.run(data, truncate=(1, 3)).loss)
