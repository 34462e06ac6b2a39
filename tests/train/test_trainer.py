"""The trainer: one step against a hand computation, loss scales, clipping, history, checkpoints
and resuming, float32 end to end, a clear error when gradients explode, and learning."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import graphrnn as gr
from graphrnn.train import SGD, Adam, Adding, Copy, Reber, StepDecay, Trainer, TrainError


def _first_batch(task, seed, B, dtype):
    return task.batch(np.random.default_rng(seed), B, dtype)


def test_one_adam_step_is_the_hand_computed_update():
    """Gradient from the taped run (dummy copies, another code path than the trainer's compiled one),
    divided by T·B, then Adam's first step written out: θ − ε ĝ/(|ĝ| + δ) with ĝ = g."""
    task = Copy(n=2, delay=2)
    trainer = Trainer(gr.load("fig10_3"), task, batch=3, lr=0.05, dtype=np.float64, progress=False, seed=5)
    before = {n: p.copy() for n, p in trainer.params.items()}
    data = _first_batch(task, 5, 3, np.float64)
    run = trainer.rec.run(data, params=before)  # taped, with dummy copies
    trainer.step()
    for n, p in before.items():
        g = run.grads[n] / (task.T * 3)
        m, v = 0.1 * g, 0.001 * g * g
        expected = p - 0.05 * (m / 0.1) / (np.sqrt(v / 0.001) + 1e-8)
        np.testing.assert_allclose(trainer.params[n], expected, rtol=1e-10, atol=1e-12, err_msg=n)
    assert trainer.history["loss"][0] == pytest.approx(run.loss / (task.T * 3), rel=1e-12)


def test_sum_scale_is_the_books_loss_and_mean_divides_by_steps_and_sequences():
    task = Adding(T=7)
    got = {}
    for scale in ("sum", "mean"):
        tr = Trainer(gr.load("gru"), task, batch=4, optimizer=SGD(lr=1e-3), dtype=np.float64, loss_scale=scale,
                     progress=False)
        tr.step()
        got[scale] = tr.history
    # the adding problem has one loss term per sequence (at tau): mean = sum / B
    assert got["mean"]["loss"][0] == pytest.approx(got["sum"]["loss"][0] / 4, rel=1e-12)
    assert got["mean"]["grad_norm"][0] == pytest.approx(got["sum"]["grad_norm"][0] / 4, rel=1e-12)
    with pytest.raises(TrainError, match="loss_scale"):
        Trainer(gr.load("gru"), task, loss_scale="average")


def test_clip_norm_bounds_the_step_as_eq_10_48_says():
    task = Copy(n=2, delay=2)
    tr = Trainer(gr.load("fig10_3"), task, batch=4, optimizer=SGD(lr=1.0), dtype=np.float64, clip_norm=0.01,
                 loss_scale="sum", progress=False)
    before = {n: p.copy() for n, p in tr.params.items()}
    tr.step()
    step = math.sqrt(sum(float(np.sum((tr.params[n] - before[n]) ** 2)) for n in before))
    assert tr.history["clipped"] == [True] and tr.history["grad_norm"][0] > 0.01
    assert step == pytest.approx(0.01, rel=1e-9)  # lr · v


def test_history_records_norms_per_parameter_and_the_state_gradient_profile():
    task = Copy(n=2, delay=3)
    tr = Trainer(gr.load("lstm"), task, batch=2, lr=0.01, dtype=np.float64, profile_every=3, progress=False)
    before = {n: p.copy() for n, p in tr.params.items()}
    history = tr.fit(7)
    assert len(history["loss"]) == 7 and history["profile"]["step"] == [0, 3, 6]
    assert history["profile"]["variable"] == "h"
    run = tr.rec.run(_first_batch(task, 0, 2, np.float64), params=before, copies=False)
    scale = 1 / (task.T * 2)
    expected = [np.linalg.norm(run.grads[f"h[{t}]"]) * scale for t in range(1, task.T + 1)]
    np.testing.assert_allclose(history["profile"]["norms"][0], expected, rtol=1e-10)
    per = {n: np.linalg.norm(run.grads[n]) * scale for n in before}
    for n, v in per.items():
        assert history["grad_norm_param"][n][0] == pytest.approx(v, rel=1e-10)
    assert history["grad_norm"][0] == pytest.approx(math.sqrt(sum(v * v for v in per.values())), rel=1e-10)
    json.dumps(history)  # plain JSON


def test_resuming_from_a_checkpoint_continues_exactly(tmp_path):
    task = Reber(T=12)

    def make():
        return Trainer(gr.load("gru"), task, batch=3, lr=StepDecay(0.02, every=3), progress=False, seed=7)

    straight = make()
    straight.fit(8)
    first = make()
    first.fit(4, checkpoint=tmp_path / "ck.npz")
    with np.load(tmp_path / "ck.npz", allow_pickle=False) as f:  # no pickled objects inside
        assert "meta" in f.files and all(f[k].dtype != object for k in f.files)
    resumed = make().load(tmp_path / "ck.npz")
    resumed.fit(4)
    for n in straight.params:
        np.testing.assert_array_equal(resumed.params[n], straight.params[n])
    assert resumed.history["loss"] == straight.history["loss"]
    assert resumed.history["lr"] == straight.history["lr"]


def test_a_checkpoint_of_another_model_is_refused(tmp_path):
    tr = Trainer(gr.load("gru"), Adding(T=5), batch=2, progress=False)
    tr.fit(1, checkpoint=tmp_path / "a.npz")
    other = Trainer(gr.load("lstm"), Adding(T=5), batch=2, progress=False)
    with pytest.raises(TrainError, match="another recurrence"):
        other.load(tmp_path / "a.npz")
    sgd = Trainer(gr.load("gru"), Adding(T=5), batch=2, optimizer="sgd", progress=False)
    with pytest.raises(TrainError, match="Adam optimizer, not SGD"):
        sgd.load(tmp_path / "a.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(TrainError, match="cannot read checkpoint"):
        tr.load(tmp_path / "junk.npz")


def test_float32_end_to_end():
    tr = Trainer(gr.load("gru"), Copy(n=2, delay=2), batch=4, lr=0.01, dtype=np.float32, progress=False)
    tr.fit(3)
    assert all(p.dtype == np.float32 for p in tr.params.values())
    assert all(a.dtype == np.float32 for a in tr.optimizer.state().values() if a.ndim)
    assert all(np.isfinite(tr.history["loss"]))


def test_truncated_bptt_inside_each_chunk_trains_and_profiles():
    tr = Trainer(gr.load("fig10_3"), Copy(n=2, delay=8), batch=4, lr=0.01, truncate=(4, 4), dtype=np.float64,
                 profile_every=1, progress=False)
    tr.fit(2)
    assert len(tr.history["profile"]["norms"][0]) == 12
    # truncation changes the gradient: the same step without it moves the parameters elsewhere
    full = Trainer(gr.load("fig10_3"), Copy(n=2, delay=8), batch=4, lr=0.01, dtype=np.float64, progress=False)
    full.fit(2)
    assert not np.allclose(full.params["W"], tr.params["W"])


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")
def test_exploding_gradients_stop_with_a_clear_error():
    tr = Trainer(gr.load("fig10_3"), Copy(n=2, delay=2), batch=4, optimizer=SGD(lr=1e37), loss_scale="sum",
                 dtype=np.float32, progress=False)
    with pytest.raises(TrainError, match=r"step \d+: .*non-finite.*exploded.*clip"):
        tr.fit(20)
    assert 1 <= len(tr.history["loss"]) < 20


def test_bad_settings_are_refused():
    with pytest.raises(TrainError, match="carry=True"):
        Trainer(gr.load("gru"), Adding(T=5), carry=True)
    with pytest.raises(TrainError, match="threshold"):
        Trainer(gr.load("gru"), Adding(T=5), clip_norm=-1)
    with pytest.raises(TrainError, match="mode"):
        Trainer(gr.load("gru"), Adding(T=5), mode="beam")
    with pytest.raises(TrainError, match="params must hold exactly"):
        Trainer(gr.load("gru"), Adding(T=5), params={"W": np.zeros((4, 4))})


def test_a_gru_learns_the_copy_task():
    task = Copy(n=2, delay=3, alphabet=4)
    tr = Trainer(gr.load("gru", sizes={"H": 24}), task, batch=32, optimizer=Adam(lr=0.02), progress=False,
                 clip_norm=1.0)
    tr.fit(150)
    data = _first_batch(task, 99, 256, np.float32)
    run = tr.rec.run(data, params=tr.params, copies=False, backward=False, dtype=np.float32)
    assert task.score(run, data)["recall_accuracy"] > 0.9  # chance: 0.25
    assert np.mean(tr.history["loss"][-10:]) < 0.3 * tr.history["loss"][0]
