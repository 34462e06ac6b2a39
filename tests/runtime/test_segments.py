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
