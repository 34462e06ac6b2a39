"""Variable-length batches (issue 13, part 4): ``lengths=`` checked against each sequence run alone.

A batch of sequences of lengths n_b, padded at the end with random numbers (so that a padded step
that leaked into anything would show), must give: the loss and every parameter's gradient of the
sum of the sequences run alone (batch 1, T = n_b); at every real step, every value and every
per-step gradient of that sequence; its own last step as tau; its own final state.  Checked on the
taped engine (copies=True) and on the fast path (copies=False, the compiled program where it can
run the rewritten recurrence), on the zoo, on hand-written constructs (delay 2, a state read at a
later step, reads at tau-1) and on random recurrences of tests/reference/random_specs.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, note, settings
from hypothesis import strategies as st
from reference.random_specs import recurrences

import graphrnn as gr
from graphrnn.errors import DataError, SpecError
from graphrnn.recurrence.padded import padded
from graphrnn.recurrence.unroll import key

TOL = 1e-11


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b), initial=0.0) / max(np.max(np.abs(b), initial=0.0), 1.0))


def alone_data(rec, data, b, n):
    """Sequence b's data for a run of n steps: its first n steps and what the spec reads beyond."""
    out = {}
    for name, arr in data.items():
        var = rec.variables[name]
        if var.kind == "context":
            out[name] = arr[:, b:b + 1]
        else:
            need = max(rec.steps_needed(name, n)[1], n)
            out[name] = arr[:need, ..., b:b + 1]
    return out


def check_against_alone(rec, data, params, lengths, copies, T=None, mode="teacher"):
    batch = rec.run(data, params=params, lengths=lengths, copies=copies, T=T, mode=mode)
    alone = [rec.run(alone_data(rec, data, b, n), params=params, T=n, copies=copies, mode=mode)
             for b, n in enumerate(lengths)]
    assert batch.loss == pytest.approx(sum(a.loss for a in alone), rel=TOL, abs=TOL)
    for p in rec.all_param_shapes():
        assert rel(batch.grads[p], sum(a.grads[p] for a in alone)) < TOL, f"d/d{p}"
    # a loss of the last step counts at step T of the batch, at each sequence's own last step alone
    per_step = all(rec.variables[n].anchor == "t" for n in rec.losses)
    for t in range(1, max(lengths) + 1) if per_step else ():
        if t in batch.step_losses or any(t in a.step_losses for a in alone):
            want = sum(a.step_losses.get(t, 0.0) for a, n in zip(alone, lengths))
            assert batch.step_losses.get(t, 0.0) == pytest.approx(want, rel=TOL, abs=TOL), f"loss of step {t}"
    for b, (a, n) in enumerate(zip(alone, lengths)):
        for name, var in rec.variables.items():
            if var.kind != "computed":
                continue
            steps = [(n, batch.T)] if var.anchor == "tau" else [(t, t) for t in range(1, n + 1)]
            for own, at in steps:
                got, want = batch.values[key(name, at)], a.values[key(name, own)]
                if np.ndim(want) == 0:
                    continue  # a loss of the batch: one number for every sequence, compared above
                assert rel(got[..., b], want[..., 0]) < TOL, f"{key(name, own)} of sequence {b}"
                assert rel(batch.grads[key(name, at)][..., b], a.grads[key(name, own)][..., 0]) < TOL, \
                    f"gradient of {key(name, own)} of sequence {b}"
        for name, state in a.final_state.items():
            assert rel(batch.final_state[name][..., b], state[..., 0]) < TOL, f"final {name} of sequence {b}"
    return batch


ZOO = ["fig10_3", "fig10_4", "fig10_5", "fig10_9", "fig10_10", "fig10_11", "lstm", "gru", "halt"]


@pytest.mark.parametrize("copies", [True, False], ids=["engine", "fast path"])
@pytest.mark.parametrize("name", ZOO)
def test_the_zoo_against_each_sequence_alone(name, copies):
    rec = gr.load(name)
    data, params = rec.random_inputs(6, batch=4, seed=1), rec.init_params(seed=2)
    check_against_alone(rec, data, params, [6, 2, 4, 1], copies)


DELAYS = """
input x: 2
init x = zero
target y: 2
state h: 3 = learned
state g: 2 = zero
h[t] = tanh(b + W @ h[t-2] + A @ h[t-1] + U @ x[t])
g[t] = tanh(W2 @ g[t+2] + U2 @ x[t] + B @ h[t])
o[t] = V @ h[t] + V2 @ g[t]
L[t] = mse(o[t], y[t])
q[tau] = Q @ h[tau-1] + Q2 @ g[tau] + Q3 @ x[tau-1]
E[tau] = bce_with_logits(q[tau], y[tau])
loss L, E
"""


@pytest.mark.parametrize("copies", [True, False], ids=["engine", "fast path"])
def test_delays_of_two_later_reads_and_reads_at_tau_minus_1(copies):
    rec = gr.Recurrence(DELAYS)
    data, params = rec.random_inputs(7, batch=4, seed=3), rec.init_params(seed=4)
    data["y"] = (data["y"] > 0).astype(float)  # bce targets
    check_against_alone(rec, data, params, [7, 1, 3, 5], copies)


@pytest.mark.parametrize("copies", [True, False], ids=["engine", "fast path"])
def test_the_reverse_state_restarts_from_its_initial_value_after_each_sequence(copies):
    rec = gr.load("fig10_11")
    data, params = rec.random_inputs(5, batch=2, seed=5), rec.init_params(seed=6)
    run = check_against_alone(rec, data, params, [5, 2], copies)
    # g(2) of the short sequence reads g(3) = 0, not the g(3) computed from its padding
    W2, b2, U2 = params["W2"], params["b2"], params["U2"]
    np.testing.assert_allclose(run.values["g[2]"][:, 1], np.tanh(b2[:, 0] + U2 @ data["x"][1, :, 1]), atol=1e-14)


def test_padding_adds_nothing_padded_values_and_final_state():
    rec = gr.load("fig10_3")
    data, params = rec.random_inputs(5, batch=2, seed=7), rec.init_params(seed=8)
    run = rec.run(data, params=params, lengths=[5, 3])
    other = dict(data, x=data["x"].copy(), y=data["y"].copy())
    other["x"][3:, :, 1] = 1e3  # different padding: nothing changes
    other["y"][3:, 1] = (data["y"][3:, 1] + 1) % 4
    again = rec.run(other, params=params, lengths=[5, 3])
    assert again.loss == run.loss
    for p in params:
        np.testing.assert_array_equal(again.grads[p], run.grads[p])
    # a state holds its last real value; final_state is each sequence's own
    for t in (4, 5):
        np.testing.assert_array_equal(run.values[f"h[{t}]"][:, 1], run.values["h[3]"][:, 1])
        assert not run.grads[f"o[{t}]"][:, 1].any()
    np.testing.assert_array_equal(run.final_state["h"][:, 1], run.values["h[3]"][:, 1])
    assert run.lengths.tolist() == [5, 3]


def test_masks_and_T_are_accepted():
    rec = gr.load("fig10_3")
    data = rec.random_inputs(5, batch=2, seed=9)
    mask = np.array([[1, 1], [1, 1], [1, 0], [0, 0], [0, 0]])
    a, b = rec.run(data, lengths=[2, 3][::-1][::-1] and [3, 2]), rec.run(data, lengths=mask)
    assert a.loss == b.loss and a.T == b.T == 3
    assert rec.run(data, lengths=[3, 2], T=5).loss == pytest.approx(a.loss, rel=1e-14)


@pytest.mark.parametrize("lengths, T, needle", [
    ([5], None, "gives 1 lengths for a batch of 2"),
    ([5, 0], None, "sequence 1 has length 0"),
    ([6, 2], None, "sequence 0 has length 6, but the data covers only 5 steps"),
    ([5, 2], 4, "the longest sequence has 5 steps, more than T=4"),
    ([2.5, 2], None, "whole numbers"),
    ("ab", None, "one whole number per sequence"),
    (np.array([[1, 0], [0, 1]]), None, "sequence 1 is 0 at step 1 but 1 later"),
])
def test_bad_lengths_are_clear_errors(lengths, T, needle):
    rec = gr.load("fig10_3")
    with pytest.raises(DataError, match=needle):
        rec.run(rec.random_inputs(5, batch=2), lengths=lengths, T=T)


@pytest.mark.parametrize("copies", [True, False], ids=["engine", "fast path"])
@pytest.mark.parametrize("name", ["fig10_6", "fig10_10"])
def test_free_running_against_each_sequence_alone(name, copies):
    """The fed value (argmax of the scores) of each sequence is its own; the padded loss saturates at the
    true label (a copy of y that free running does not replace by the fed value)."""
    rec = gr.load(name)
    data, params = rec.random_inputs(6, batch=3, seed=21), rec.init_params(seed=22)
    free = check_against_alone(rec, data, params, [6, 2, 4], copies, mode="free")
    teacher = rec.run(data, params=params, lengths=[6, 2, 4], copies=copies)
    assert free.loss != teacher.loss  # the fed values did change something
    for p, same in ((1.0, free), (0.0, teacher)):  # scheduled sampling at its two ends
        got = rec.run(data, params=params, lengths=[6, 2, 4], copies=copies, mode="scheduled", p=p)
        assert got.loss == pytest.approx(same.loss, rel=1e-13)


def test_unsupported_constructs_are_refused_by_name():
    rec = gr.Recurrence("input x: 2\ntarget y: class 3\nstate h: 3\ninit y = zero\n"
                        "h[t] = tanh(W @ h[t-1] + U @ x[t])\no[t] = V @ h[t] + Z @ one_hot(y[t+1])\n"
                        "L[t] = cross_entropy(o[t], y[t])\nfeedback y[t] = argmax(V @ h[t])\n")
    data = rec.random_inputs(3, batch=2)
    with pytest.raises(SpecError, match=r"mode='free': `y\[t\+1\]` in the equation of o reads the fed value of "
                                        r"y at a later step"):
        rec.run(data, lengths=[3, 2], mode="free")
    assert np.isfinite(rec.run(data, lengths=[3, 2]).loss)  # teacher forcing: fine
    with pytest.raises(SpecError, match="no `feedback` line"):
        gr.load("fig10_3").run(gr.load("fig10_3").random_inputs(3, batch=2), lengths=[3, 2], mode="free")


LEARNED = """
input x: 2
state g: 2 = learned
state h: 3 = learned
g[t] = tanh(W @ g[t+1] + U @ x[t])
h[t] = tanh(A @ h[t-1] + B @ g[t] + C @ g[t+2])
L[t] = mse(h[t], C2 @ x[t])
"""


@pytest.mark.parametrize("copies", [True, False], ids=["engine", "fast path"])
def test_a_learned_initial_value_read_after_each_sequences_end(copies):
    rec = gr.Recurrence(LEARNED)
    p = padded(rec)
    assert p.tied == {"g0_after": "g0"} and "g0_after" in p.rec.equations["g"].text
    data, params = rec.random_inputs(5, batch=3, seed=11), rec.init_params(seed=12)
    run = check_against_alone(rec, data, params, [5, 2, 3], copies)
    assert set(run.grads) >= {"g0", "h0"} and "g0_after" not in run.grads and "g0_after" not in run.values
    assert "g0_after" not in run.copy_grads


def test_the_rewrite_is_written_in_the_notation():
    p = padded(gr.load("fig10_5"))
    assert p.rec.equations["L"].text == "L[tau] = cross_entropy(o[tau], y_at_taup0[tau])"
    assert p.masks == {"mask_5": 5} and p.at_tau == {"y_at_taup0": ("y", 0)}
    g = padded(gr.load("fig10_11")).rec.equations["g"].text
    assert "(mask_4[t+1] * g[t+1])" in g


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(drawn=recurrences(), lengths=st.lists(st.integers(1, 5), min_size=2, max_size=3),
       copies=st.booleans(), seed=st.integers(0, 2 ** 16), free=st.booleans())
def test_random_recurrences_against_each_sequence_alone(drawn, lengths, copies, seed, free):
    note(drawn.text)
    rec = gr.Recurrence(drawn.text)
    assume(rec.losses)
    try:
        pad = padded(rec)
    except SpecError as exc:  # refused by name
        assert "lengths= cannot be used" in str(exc)
        assume(False)
    mode = "free" if free and drawn.feedback and pad.not_free is None else "teacher"
    note(mode)
    event(mode)
    T = max(lengths)
    data, params = rec.random_inputs(T, batch=len(lengths), seed=seed), rec.init_params(seed=seed + 1)
    for name, arr in data.items():  # bounded logs and powers: keep the values tame
        if arr.dtype.kind == "f" and rec.variables[name].kind != "context":
            data[name] = np.tanh(arr)
    params = {n: 0.5 * np.tanh(a) for n, a in params.items()}
    try:
        alone = [rec.run(alone_data(rec, data, b, n), params=params, T=n, mode=mode) for b, n in enumerate(lengths)]
    except DataError:
        assume(False)  # a value of the spec overflows on this data
    assume(all(np.isfinite(a.loss) for a in alone))
    check_against_alone(rec, data, params, lengths, copies, mode=mode)


@pytest.mark.parametrize("copies", [True, False], ids=["engine", "fast path"])
@pytest.mark.parametrize("name", ["fig10_3", "lstm", "fig10_4"])
def test_checkpointed_and_truncated_runs_of_a_padded_batch(name, copies):
    """Checkpointing gives the same gradients; truncated BPTT cuts at the batch's steps k1, 2k1, ..., T,
    so it matches each sequence alone when every length is a multiple of k1 (a shorter last window of
    a sequence alone would start later)."""
    rec = gr.load(name)
    data, params = rec.random_inputs(6, batch=3, seed=13), rec.init_params(seed=14)
    lengths = [6, 2, 4]
    for options in ({"checkpoint": 2}, {"truncate": (2, 3)}):
        batch = rec.run(data, params=params, lengths=lengths, copies=copies, **options)
        alone = [rec.run(alone_data(rec, data, b, n), params=params, T=n, copies=copies, **options)
                 for b, n in enumerate(lengths)]
        assert batch.loss == pytest.approx(sum(a.loss for a in alone), rel=TOL)
        for p in rec.all_param_shapes():
            assert rel(batch.grads[p], sum(a.grads[p] for a in alone)) < TOL, (options, p)


def test_initial_state_and_final_state_of_a_padded_batch():
    """A long padded batch run in two pieces: the second starts from the first's final_state, each
    sequence's own last state (a sequence ended in the first piece carries its final state through)."""
    rec = gr.load("lstm")
    data, params = rec.random_inputs(6, batch=2, seed=15), rec.init_params(seed=16)
    whole = rec.run(data, params=params, lengths=[6, 5])
    first = rec.run({n: a[:3] for n, a in data.items()}, params=params, lengths=[3, 3])
    second = rec.run({n: a[3:] for n, a in data.items()}, params=params, lengths=[3, 2],
                     initial_state=first.final_state)
    for name in ("h", "s"):
        np.testing.assert_allclose(second.final_state[name], whole.final_state[name], rtol=0, atol=1e-14)
        np.testing.assert_allclose(whole.final_state[name][:, 1], whole.values[f"{name}[5]"][:, 1], atol=0)


def test_cli_run_takes_lengths(tmp_path, capsys):
    from graphrnn.cli import main

    out = tmp_path / "v.npz"
    assert main(["run", "fig10_3", "--steps", "4", "--batch", "2", "--lengths", "4,2", "-o", str(out)]) == 0
    rec = gr.load("fig10_3")
    run = rec.run(rec.random_inputs(4, batch=2, seed=0), params=rec.init_params(seed=0), lengths=[4, 2])
    with np.load(out, allow_pickle=False) as got:
        assert got["lengths"].tolist() == [4, 2] and float(got["loss"]) == run.loss
    assert main(["run", "fig10_3", "--lengths", "4,x"]) == 2
    assert "--lengths takes whole numbers" in capsys.readouterr().err


def test_a_lean_compiled_run_of_a_padded_batch(monkeypatch):
    """A long run keeps per step only what the backward pass reads (runner.LEAN_BYTES): same numbers."""
    from graphrnn.runtime import runner

    rec = gr.load("lstm")
    data, params = rec.random_inputs(8, batch=3, seed=17), rec.init_params(seed=18)
    monkeypatch.setattr(runner, "LEAN_BYTES", 1)
    lean = check_against_alone(rec, data, params, [8, 3, 5], copies=False)
    assert lean.program is not None and lean.program.lean


@pytest.mark.parametrize("copies", [True, False], ids=["engine", "fast path"])
def test_the_final_state_of_a_checkpointed_padded_batch(copies):
    """A segmented run keeps no per-step values: a held state's value at step T is each sequence's last;
    a state read two steps back needs more, and says so instead of answering zeros."""
    rec = gr.load("lstm")
    data = rec.random_inputs(6, batch=2, seed=19)
    whole = rec.run(data, lengths=[6, 3], copies=copies)
    for options in ({"checkpoint": 2}, {"truncate": (2, 2)}):
        part = rec.run(data, lengths=[6, 3], copies=copies, **options)
        for name in ("h", "s"):
            np.testing.assert_allclose(part.final_state[name], whole.final_state[name], rtol=0, atol=1e-14)
    two = gr.Recurrence("input x: 2\nstate h: 2\nh[t] = tanh(W @ h[t-2] + U @ x[t])\nL[t] = mse(h[t], x[t])\n")
    with pytest.raises(DataError, match=r"final_state\['h'\] of a padded batch needs h at each sequence's last 2 "
                                        r"steps.*run without checkpoint="):
        _ = two.run(two.random_inputs(6, batch=2), lengths=[6, 3], checkpoint=2, copies=copies).final_state
