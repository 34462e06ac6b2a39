"""Teacher forcing, free running and scheduled sampling (§10.2.1, fig. 10.6).

Teacher forcing feeds the true y^(t-1) into h^(t); free running feeds the model's own
argmax(o^(t-1)); scheduled sampling picks one of the two at random, per step and sequence.
The runs must agree exactly where the fed values agree, and differ where they do not.
"""

from __future__ import annotations

import numpy as np
import pytest
from _rec_testlib import numerical_gradient, scaled_params

import graphrnn as gr

T = 6
BATCH = 24


def _free_predictions(run, name="y"):
    """The classes free running fed back: argmax(o[t]) for t = 1..T."""
    return np.stack([run.values[f"o[{t}]"].argmax(axis=0) for t in range(1, run.T + 1)])


def _data_half_agreeing(rec, params, seed):
    """Data whose targets equal the free-running predictions in the first half of the
    sequences (there teacher forcing and free running must coincide) and are random in
    the other half."""
    data = rec.random_inputs(T, batch=BATCH, seed=seed)
    free = rec.run(data, params=params, T=T, mode="free", backward=False)
    predicted = _free_predictions(free)
    data["y"][:, : BATCH // 2] = predicted[:, : BATCH // 2]
    return data


@pytest.mark.parametrize("name", ["fig10_6", "fig10_10"])
def test_free_running_differs_from_teacher_forcing_exactly_where_it_should(name):
    rec = gr.load(name)
    params = scaled_params(rec, seed=2, scale=2.0)
    data = _data_half_agreeing(rec, params, seed=4)
    teacher = rec.run(data, params=params, T=T)
    free = rec.run(data, params=params, T=T, mode="free")
    fed = _free_predictions(free)
    # the fed values are the model's own argmax outputs, one step late
    for t in range(1, T + 1):
        np.testing.assert_array_equal(free.fed[f"y_fed[{t}]"], fed[t - 1])
    # h[1] reads y[0], the start symbol (class 0), in both modes
    np.testing.assert_array_equal(teacher.values["h[1]"], free.values["h[1]"])
    np.testing.assert_array_equal(teacher.values["y[0]"], np.zeros(BATCH))
    np.testing.assert_array_equal(free.values["y_fed[0]"], np.zeros(BATCH))
    # fig. 10.6 has no h -> h edge: h[t] depends on y[t-1] alone; fig. 10.10 also carries h[t-1],
    # so once a sequence has been fed a wrong class it stays different
    carried = name == "fig10_10"
    same_so_far = np.ones(BATCH, dtype=bool)
    differ_seen = agree_seen = 0
    for t in range(2, T + 1):
        agree_now = fed[t - 2] == data["y"][t - 2]
        same = same_so_far & agree_now if carried else agree_now
        for col in range(BATCH):
            h_t, h_f = teacher.values[f"h[{t}]"][:, col], free.values[f"h[{t}]"][:, col]
            o_t, o_f = teacher.values[f"o[{t}]"][:, col], free.values[f"o[{t}]"][:, col]
            if same[col]:
                np.testing.assert_array_equal(h_t, h_f)
                np.testing.assert_array_equal(o_t, o_f)
                agree_seen += 1
            else:
                assert np.abs(h_t - h_f).max() > 1e-6, f"{name}: h[{t}] of sequence {col} should differ"
                differ_seen += 1
        same_so_far = same
    assert agree_seen > 0 and differ_seen > 0  # both cases were exercised
    assert same_so_far[: BATCH // 2].all()  # where the targets are the model's own predictions
    # the loss compares o with the true targets in both modes: equal where the runs agree
    teacher_half = rec.run({k: v[..., : BATCH // 2] for k, v in data.items()}, params=params, T=T)
    free_half = rec.run({k: v[..., : BATCH // 2] for k, v in data.items()}, params=params, T=T, mode="free")
    assert teacher_half.loss == pytest.approx(free_half.loss, rel=1e-13)


@pytest.mark.parametrize("name", ["fig10_6", "fig10_10"])
def test_scheduled_sampling_with_p0_is_teacher_and_with_p1_is_free(name):
    rec = gr.load(name)
    params = scaled_params(rec, seed=3)
    data = rec.random_inputs(T, batch=8, seed=1)
    teacher = rec.run(data, params=params, T=T)
    free = rec.run(data, params=params, T=T, mode="free")
    assert teacher.loss != free.loss  # the comparison below can tell the two apart
    for p, reference in ((0.0, teacher), (1.0, free)):
        sched = rec.run(data, params=params, T=T, mode="scheduled", p=p, seed=5)
        assert sched.loss == reference.loss
        for var in ("h", "o", "L"):
            for t in range(1, T + 1):
                np.testing.assert_array_equal(sched.values[f"{var}[{t}]"], reference.values[f"{var}[{t}]"])
        for pname in params:
            np.testing.assert_array_equal(sched.grads[pname], reference.grads[pname])


def test_scheduled_sampling_feeds_either_the_truth_or_the_prediction():
    rec = gr.load("fig10_10")
    params = scaled_params(rec, seed=3)
    data = rec.random_inputs(T, batch=32, seed=1)
    sched = rec.run(data, params=params, T=T, mode="scheduled", p=0.5, seed=9)
    again = rec.run(data, params=params, T=T, mode="scheduled", p=0.5, seed=9)
    assert sched.loss == again.loss  # reproducible with the same seed
    truth_used = model_used = 0
    for t in range(1, T + 1):
        fed = sched.fed[f"y_fed[{t}]"]
        predicted = sched.values[f"o[{t}]"].argmax(axis=0)
        truth = data["y"][t - 1]
        assert np.all((fed == truth) | (fed == predicted))
        truth_used += int(np.sum((fed == truth) & (fed != predicted)))
        model_used += int(np.sum((fed == predicted) & (fed != truth)))
        # h[t+1] reads what was fed: one_hot(fed) through R
        if t < T:
            h_prev = sched.values[f"h[{t}]"]
            pre = (params["b"] + params["W"] @ h_prev + params["U"] @ data["x"][t]
                   + params["R"] @ np.eye(4)[:, fed])
            np.testing.assert_allclose(sched.values[f"h[{t + 1}]"], np.tanh(pre), atol=1e-12)
    assert truth_used > 0 and model_used > 0


FED_VECTOR = """
size H = 3, I = 2, K = 2
input  x: I
input  u: K               # an input the model can produce itself
target z: K
init   u = zero
feedback u[t] = o[t]      # free running feeds the model's own output (a vector) back
state  h: H = zero
loss   L

h[t] = tanh(b + W @ h[t-1] + U @ x[t] + R @ u[t-1])
o[t] = c + V @ h[t]
L[t] = mse(o[t], z[t])
"""


def test_the_fed_value_carries_no_gradient():
    """Free running equals teacher forcing on data where u is what the model produced, and the
    gradients agree exactly: no gradient flows through the fed value."""
    rec = gr.Recurrence(FED_VECTOR, name="fed_vector")
    params = scaled_params(rec, seed=4)
    data = rec.random_inputs(T, batch=3, seed=2)
    free = rec.run(data, params=params, T=T, mode="free")
    fed_data = dict(data, u=np.stack([free.fed[f"u_fed[{t}]"] for t in range(1, T + 1)]))
    for t in range(1, T + 1):
        np.testing.assert_array_equal(free.fed[f"u_fed[{t}]"], free.values[f"o[{t}]"])
    teacher = rec.run(fed_data, params=params, T=T)
    assert teacher.loss == pytest.approx(free.loss, rel=1e-13)
    for pname in params:
        np.testing.assert_allclose(free.grads[pname], teacher.grads[pname], rtol=1e-12, atol=1e-14)
    assert not any(k.startswith("u_fed") for k in free.grads)

    # ... whereas the loss as a function of the parameters does depend on them through the fed path:
    # the detached gradient is not the full derivative (so the check above can fail)
    def loss():
        return rec.run(data, params=params, T=T, mode="free", backward=False).loss

    full = numerical_gradient(loss, params["V"])
    assert np.abs(full - free.grads["V"]).max() > 1e-4


def test_modes_are_validated():
    rec = gr.load("fig10_6")
    data = rec.random_inputs(3)
    with pytest.raises(ValueError, match="mode"):
        rec.run(data, mode="greedy")
    with pytest.raises(ValueError, match="p must lie"):
        rec.run(data, mode="scheduled", p=1.5)
    with pytest.raises(ValueError, match="mode"):
        rec.mode_equations("greedy")


def test_free_or_scheduled_mode_on_a_spec_without_feedback_is_refused():
    rec = gr.load("fig10_3")
    data = rec.random_inputs(4, batch=2)
    for mode in ("free", "scheduled"):
        for copies in (True, False):
            with pytest.raises(gr.SpecError, match="no `feedback` line"):
                rec.run(data, T=4, mode=mode, copies=copies)


def test_free_and_scheduled_modes_share_the_fed_variable_name():
    rec = gr.load("fig10_6")
    assert "y_fed" in rec.mode_equations("free") and "y_fed" in rec.mode_equations("scheduled")
    assert rec.fed_name("y") == "y_fed"
    assert [n for n, v in rec.variables.items() if v.kind == "fed"] == ["y_fed"]
