"""A lean compiled run (issue 11, part 4): per step only what the backward pass reads, the same numbers.

A run whose buffers for every step would pass ``runner.LEAN_BYTES`` keeps the recurrent
states and their gradients for every step, and the outputs, losses and the data only the
outputs read one chunk at a time; reading those values afterwards recomputes their chunk.
Here the threshold is 0, so short runs are lean and can be compared entry by entry with
the taped engine (dummy copies, step by step)."""

import numpy as np
import pytest

import graphrnn as gr
from graphrnn.runtime import program, runner

COMPILED = ["fig10_3", "fig10_4", "fig10_5", "fig10_6", "fig10_9", "fig10_10", "fig10_11", "lstm", "gru", "halt"]


@pytest.fixture
def lean(monkeypatch):
    monkeypatch.setattr(runner, "LEAN_BYTES", 0)
    monkeypatch.setattr(program, "CHUNK_BYTES", 256)  # many chunks, of unequal sizes


def rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("arch", COMPILED)
@pytest.mark.parametrize("T,B", [(1, 1), (9, 3), (40, 2)])
def test_a_lean_run_equals_the_engine_entry_by_entry(arch, T, B, lean):
    rec = gr.load(arch)
    data, params = rec.random_inputs(T, batch=B, seed=3), rec.init_params(seed=5)
    slow = rec.run(data, params)
    fast = rec.run(data, params, copies=False)
    assert fast.program is not None and fast.program.lean
    assert fast.loss == pytest.approx(slow.loss, rel=1e-12)
    assert fast.step_losses == pytest.approx(slow.step_losses, rel=1e-12)
    assert set(fast.grads) == set(slow.grads) and set(fast.values) == set(slow.values)
    for name, g in slow.grads.items():
        assert rel(fast.grads[name], g) < 1e-12, name
    for name, v in slow.values.items():
        np.testing.assert_allclose(fast.values[name], v, rtol=1e-12, atol=1e-15, err_msg=name)


def test_a_lean_run_keeps_only_the_states_and_their_gradients(lean):
    rec = gr.load("fig10_3", sizes={"H": 16, "I": 4, "K": 8})
    T, B = 3000, 2
    run = rec.run(rec.random_inputs(T, batch=B), copies=False)
    state = 16 * T * B * 8  # h[1..T], float64
    assert 2 * state <= run.program.kept_bytes() < 2 * state + 64 * 1024  # + one chunk of o, L and y
    layouts = run.program.layouts
    assert layouts["o"].window and layouts["L"].window and layouts["y"].window
    assert layouts["x"].direct and not layouts["h"].window  # x read from the caller's array, no copy


def test_values_read_after_the_run_are_those_of_the_run(lean):
    """Outputs recomputed when read come from this run's states, even after the workspace's next run."""
    rec = gr.load("fig10_3")
    data = rec.random_inputs(30, batch=2, seed=1)
    run = rec.run(data, copies=False)
    values, grads = run.values, run.grads
    expected = {k: np.array(values[k]) for k in ("o[3]", "L[30]", "h[7]")}
    expected_g = {k: np.array(grads[k]) for k in ("o[3]", "o[29]", "h[7]")}
    del run
    other = rec.run(rec.random_inputs(30, batch=2, seed=2), copies=False)  # must not take that workspace
    assert other.loss != pytest.approx(sum(float(np.sum(values[f"L[{t}]"])) for t in range(1, 31)))
    for k, v in expected.items():
        np.testing.assert_array_equal(values[k], v)
    for k, v in expected_g.items():
        np.testing.assert_array_equal(grads[k], v)


def test_reading_a_lean_runs_gradients_changes_nothing(lean):
    rec = gr.load("fig10_3")
    run = rec.run(rec.random_inputs(20, batch=2), copies=False)
    before = {n: run.grads[n].copy() for n in ("W", "V", "c", "h[4]")}
    _ = [run.grads[f"o[{t}]"] for t in (20, 3, 11)]  # recomputes chunks with their backward pass
    for n, g in before.items():
        np.testing.assert_array_equal(run.grads[n], g)


def test_a_lean_forward_pass_and_a_non_finite_value(lean):
    rec = gr.load("fig10_3")
    data = rec.random_inputs(12, batch=2)
    full = rec.run(data, copies=False)
    fwd = rec.run(data, copies=False, backward=False)
    assert fwd.program.lean and fwd.loss == pytest.approx(full.loss, rel=1e-14)
    np.testing.assert_array_equal(fwd.values["o[12]"], full.values["o[12]"])
    params = rec.init_params()
    params["b"][:], params["V"][:] = 50.0, 1e308  # h = tanh(50 + ...) = 1, so o = c + V @ h overflows
    with pytest.raises(gr.DataError, match=r"non-finite value first at o\[1\]"), np.errstate(all="ignore"):
        rec.run(data, params, copies=False)


def test_only_long_runs_are_lean():
    rec = gr.load("fig10_3")
    assert not rec.run(rec.random_inputs(10, batch=2), copies=False).program.lean
    plan = runner.RunPlan.make(rec, rec.random_inputs(10, batch=2), copies=False)
    assert plan.full_bytes() < runner.LEAN_BYTES
