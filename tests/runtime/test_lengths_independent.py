"""``lengths=`` on constructs test_lengths.py does not reach, checked against running each sequence alone.

A variable on no cycle that a later step reads (``z[t-1]``) or the last step reads (``a[tau]``) is
held after each sequence's end like a state; a padded batch must still give, for each sequence, the
loss, the gradients and the values of that sequence run alone (batch 1, T = its length).  The
reference is the unpadded run of the same recurrence, one sequence at a time (no masks at all).
Added by mutation testing: making `padded` hold only variables on a forward cycle (``> 0`` for
``>= 0``) made these specs refused, and no test noticed.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphrnn as gr
from graphrnn.recurrence.unroll import key

TOL = 1e-11

# z lies on no cycle, and h reads it one step back
EARLIER = ("input x: 3\nstate h: 3\nparam U: 4 x 3\n"
           "z[t] = tanh(U @ x[t])\n"
           "h[t] = tanh(W @ h[t-1] + V @ z[t-1] + b)\n"
           "L[t] = mse(h[t], x[t])\n")
# a lies on no cycle, and the last step reads it (a many-to-one net without recurrence in a)
AT_TAU = ("input x: 3\ntarget y: 2\nparam U: 4 x 3\nparam V: 2 x 4\n"
          "a[t] = tanh(U @ x[t])\n"
          "o[tau] = V @ a[tau]\n"
          "L[tau] = mse(o[tau], y[tau])\n")


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b), initial=0.0) / max(np.max(np.abs(b), initial=0.0), 1.0))


def _alone(rec, data, b, n):
    return {name: arr[:n, ..., b:b + 1] for name, arr in data.items()}


@pytest.mark.parametrize("copies", [True, False], ids=["engine", "fast path"])
@pytest.mark.parametrize("text", [EARLIER, AT_TAU], ids=["read one step back", "read at tau"])
def test_a_variable_on_no_cycle_against_each_sequence_alone(text, copies):
    rec = gr.Recurrence(text)
    lengths = [5, 2, 3]
    rng = np.random.default_rng(7)
    data = rec.random_inputs(5, batch=3, seed=1)
    data = {n: a + 0.0 for n, a in data.items()}
    for name, arr in data.items():  # the padding: loud random numbers, which must not leak anywhere
        for b, n in enumerate(lengths):
            arr[n:, ..., b] = 5.0 * rng.standard_normal(arr[n:, ..., b].shape)
    params = rec.init_params(seed=2)
    batch = rec.run(data, params=params, lengths=lengths, copies=copies)
    alone = [rec.run(_alone(rec, data, b, n), params=params, T=n, copies=copies) for b, n in enumerate(lengths)]
    assert batch.loss == pytest.approx(sum(a.loss for a in alone), rel=TOL, abs=TOL)
    for p in rec.all_param_shapes():
        assert rel(batch.grads[p], sum(a.grads[p] for a in alone)) < TOL, f"d/d{p}"
    for b, (a, n) in enumerate(zip(alone, lengths)):
        for name, var in rec.variables.items():
            if var.kind != "computed" or name == "L":
                continue
            steps = [(n, batch.T)] if var.anchor == "tau" else [(t, t) for t in range(1, n + 1)]
            for own, at in steps:
                assert rel(batch.values[key(name, at)][..., b], a.values[key(name, own)][..., 0]) < TOL, \
                    f"{key(name, own)} of sequence {b}"
                assert rel(batch.grads[key(name, at)][..., b], a.grads[key(name, own)][..., 0]) < TOL, \
                    f"gradient of {key(name, own)} of sequence {b}"


def test_the_padded_batch_differs_from_the_unmasked_one():
    """The reference is not vacuous: without lengths= the padded steps do change the loss and gradients."""
    rec = gr.Recurrence(EARLIER)
    data = rec.random_inputs(5, batch=3, seed=1)
    params = rec.init_params(seed=2)
    masked = rec.run(data, params=params, lengths=[5, 2, 3])
    full = rec.run(data, params=params)
    assert abs(masked.loss - full.loss) > 1e-3
    assert rel(masked.grads["W"], full.grads["W"]) > 1e-3


@pytest.mark.parametrize("copies", [True, False], ids=["engine", "fast path"])
def test_a_contexts_gradient_is_each_sequences_own(copies):
    """fig. 10.9's context x: ∇x L of each column is that sequence's run alone (padded steps send nothing)."""
    rec = gr.load("fig10_9")
    lengths = [5, 2, 3]
    data = rec.random_inputs(5, batch=3, seed=1)
    params = rec.init_params(seed=2)
    batch = rec.run(data, params=params, lengths=lengths, copies=copies)
    assert set(batch.context_grads) == {"x"}
    for b, n in enumerate(lengths):
        mine = {name: (arr[:, b:b + 1] if rec.variables[name].kind == "context"
                       else arr[:max(rec.steps_needed(name, n)[1], n), ..., b:b + 1]) for name, arr in data.items()}
        alone = rec.run(mine, params=params, T=n, copies=copies)
        assert np.abs(alone.context_grads["x"]).max() > 1e-3
        assert rel(batch.context_grads["x"][:, b:b + 1], alone.context_grads["x"]) < TOL, f"sequence {b}"


LEARNED = ("input x: 2\nstate g: 2 = learned\nstate h: 3 = learned\n"
           "g[t] = tanh(W @ g[t+1] + U @ x[t])\n"
           "h[t] = tanh(A @ h[t-1] + B @ g[t] + C @ g[t+2])\n"
           "L[t] = mse(h[t], C2 @ x[t])\n")


def test_the_dummy_copies_of_a_learned_value_read_after_the_end_add_up_to_its_gradient():
    """g0 is read as g[t+1] at each sequence's own end (a tied stand-in in the rewrite): its copies, merged
    back, must add up to ∇g0 L, which is checked against the sequences run alone."""
    rec = gr.Recurrence(LEARNED)
    lengths = [5, 2, 3]
    data, params = rec.random_inputs(5, batch=3, seed=11), rec.init_params(seed=12)
    batch = rec.run(data, params=params, lengths=lengths, copies=True)
    alone = [rec.run({n: a[:k, ..., b:b + 1] for n, a in data.items()}, params=params, T=k, copies=True)
             for b, k in enumerate(lengths)]
    for p in ("g0", "W", "U"):
        want = sum(a.grads[p] for a in alone)
        assert rel(batch.grads[p], want) < TOL, p
        assert rel(sum(batch.copy_grads[p].values()), want) < TOL, f"the copies of {p}"
