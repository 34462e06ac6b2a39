"""Carrying the state from one call to the next: ``rec.run(..., initial_state=...)`` and ``run.final_state``.

The reference is one call over the concatenated sequence: the second call, started from the first
call's final state, must give the same values, the same losses, and the gradients of the concatenated
run truncated at the boundary (``truncate=(T1, T1)``: the state carried in is a constant)."""

from __future__ import annotations

import numpy as np
import pytest

import graphrnn as gr
from graphrnn.errors import DataError

DELAY2 = """
size H = 4, I = 3, K = 3
input x: I
target y: class K
state h: H = zero
h[t] = tanh(b + W @ h[t-1] + W2 @ h[t-2] + U @ x[t])
o[t] = c + V @ h[t]
L[t] = cross_entropy(o[t], y[t])
"""

LEARNED = """
size H = 4, I = 3, K = 3
input x: I
target y: class K
state h: H = learned
h[t] = tanh(b + W @ h[t-1] + U @ x[t])
o[t] = c + V @ h[t]
L[t] = cross_entropy(o[t], y[t])
"""


def _split(data, T1):
    first = {n: a[:T1] for n, a in data.items()}
    second = {n: a[T1:] for n, a in data.items()}
    return first, second


def _cases():
    return [("fig10_3", gr.load("fig10_3")), ("lstm", gr.load("lstm")), ("gru", gr.load("gru")),
            ("delay2", gr.Recurrence(DELAY2)), ("learned", gr.Recurrence(LEARNED))]


@pytest.mark.parametrize("name, rec", _cases(), ids=[c[0] for c in _cases()])
@pytest.mark.parametrize("how", ["compiled", "taped", "segments"])
def test_two_calls_with_the_state_carried_equal_one_call(name, rec, how):
    T1, T2, B = 4, 4, 3  # truncate=(T1, T1) then cuts exactly at the boundary
    data = rec.random_inputs(T1 + T2, batch=B, seed=1)
    params = rec.init_params(seed=2)
    options = {"copies": how == "taped"}
    whole = rec.run(data, params=params, copies=False)
    first_data, second_data = _split(data, T1)
    first = rec.run(first_data, params=params, **options)
    state = first.final_state
    states = {n for n in ("h", "s") if n in rec.variables}
    assert set(state) == states
    if name == "delay2":  # a delay-2 state carries its last two steps, oldest first
        assert state["h"].shape == (2, 4, B)
        np.testing.assert_allclose(state["h"][0], whole.values[f"h[{T1 - 1}]"], rtol=1e-12)
    else:
        assert state["h"].shape == (rec.variables["h"].rows, B)
    rows = rec.variables["h"].rows
    np.testing.assert_allclose(np.reshape(state["h"], (-1, rows, B))[-1], whole.values[f"h[{T1}]"], rtol=1e-12)
    if how == "segments":  # truncated and checkpointed runs start from the carried state too
        plain = rec.run(second_data, params=params, copies=False, initial_state=state)
        for kwargs in ({"truncate": (T2, T2)}, {"checkpoint": 2}, {"truncate": (2, 3)}):
            seg = rec.run(second_data, params=params, copies=False, initial_state=state, **kwargs)
            assert seg.loss == pytest.approx(sum(whole.step_losses[t] for t in range(T1 + 1, T1 + T2 + 1)),
                                             rel=1e-11)
            np.testing.assert_allclose(seg.final_state["h"], whole.final_state["h"], rtol=1e-11)
            if "truncate" not in kwargs or kwargs["truncate"] == (T2, T2):  # the whole gradient of the call
                for p in params:
                    np.testing.assert_allclose(seg.grads[p], plain.grads[p], rtol=1e-10, atol=1e-13, err_msg=p)
        return
    second = rec.run(second_data, params=params, initial_state=state, **options)
    for t in range(1, T2 + 1):
        for v in ("h", "o"):
            np.testing.assert_allclose(second.values[f"{v}[{t}]"], whole.values[f"{v}[{T1 + t}]"], rtol=1e-11,
                                       atol=1e-14, err_msg=f"{v}[{t}]")
        assert second.step_losses[t] == pytest.approx(whole.step_losses[T1 + t], rel=1e-11)
    # gradients: the two calls together are the concatenated run truncated at the boundary
    ref = rec.run(data, params=params, copies=False, truncate=(T1, T1))
    for p in params:
        np.testing.assert_allclose(first.grads[p] + second.grads[p], ref.grads[p], rtol=1e-9, atol=1e-12,
                                   err_msg=p)
    np.testing.assert_allclose(second.final_state["h"], whole.final_state["h"], rtol=1e-11)
    if name == "learned":  # the carried state replaces the learned initial value: no gradient reaches h0
        assert np.all(second.grads["h0"] == 0) and np.any(first.grads["h0"] != 0)


def test_without_an_initial_state_a_run_starts_from_the_spec_initial_values():
    rec = gr.load("fig10_3")
    data = rec.random_inputs(4, batch=2)
    zero = {"h": np.zeros((rec.variables["h"].rows, 2))}
    a = rec.run(data, copies=False)
    b = rec.run(data, copies=False, initial_state=zero)
    assert a.loss == b.loss
    for p in a.grads:
        np.testing.assert_array_equal(a.grads[p], b.grads[p])


def test_the_state_carries_across_float32_chunks():
    rec = gr.load("gru")
    data = rec.random_inputs(8, batch=2, dtype=np.float32)
    params = rec.init_params(dtype=np.float32)
    whole = rec.run(data, params=params, copies=False, dtype=np.float32)
    a, b = _split(data, 3)
    first = rec.run(a, params=params, copies=False, dtype=np.float32, backward=False)
    assert first.final_state["h"].dtype == np.float32
    second = rec.run(b, params=params, copies=False, dtype=np.float32, initial_state=first.final_state)
    np.testing.assert_allclose(second.values["h[5]"], whole.values["h[8]"], rtol=1e-5)


def test_bad_initial_states_are_refused_by_name():
    rec = gr.load("fig10_3")
    data = rec.random_inputs(3, batch=2)
    with pytest.raises(DataError, match=r"initial_state\['h'\].*shape \(5, 2\)"):
        rec.run(data, initial_state={"h": np.zeros((5, 3))})
    with pytest.raises(DataError, match="'o' is not a state.*h"):
        rec.run(data, initial_state={"o": np.zeros((4, 2))})
    with pytest.raises(DataError, match="finite"):
        rec.run(data, initial_state={"h": np.full((5, 2), np.nan)})
    with pytest.raises(DataError, match=r"g runs backwards in time \(`g\[t\+1\]` reads a later step\)"):
        bi = gr.load("fig10_11")
        bi.run(bi.random_inputs(3, batch=2), initial_state={"g": np.zeros((4, 2))})
    with pytest.raises(DataError, match="dict"):
        rec.run(data, initial_state=np.zeros((5, 2)))
