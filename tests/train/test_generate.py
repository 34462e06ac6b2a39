"""predict and generate: forward only, and free running from a prefix with the state carried.

The reference for generate is the O(T²) way the issue's user took: re-run the whole growing sequence
at every step and read the last output."""

from __future__ import annotations

import numpy as np
import pytest

import graphrnn as gr
from graphrnn.train import TrainError, Trainer, Text
from graphrnn.train.generate import generate, predict


def _one_hot(labels, K):
    out = np.zeros((len(labels), K, 1))
    out[np.arange(len(labels)), labels, 0] = 1
    return out


def _quadratic_reference(rec, params, prefix, steps, K):
    """Each new symbol: the argmax of o at the last step of one run over everything so far."""
    seq = list(prefix)
    for _ in range(steps):
        run = rec.run({"x": _one_hot(seq, K), "y": np.zeros((len(seq), 1), dtype=np.int64)}, params=params,
                      copies=False, backward=False)
        seq.append(int(np.argmax(run.values[f"o[{len(seq)}]"][:, 0])))
    return seq[len(prefix):]


@pytest.mark.parametrize("arch", ["fig10_3", "lstm", "gru"])
def test_greedy_generation_equals_rerunning_the_growing_sequence(arch):
    K = 5
    rec = gr.load(arch, sizes={"I": K, "K": K, "H": 6})
    params = rec.init_params(seed=3)
    params = {n: p * 3 for n, p in params.items()}  # larger weights: less uniform outputs, more varied symbols
    prefix = [0, 3, 1]
    got = generate(rec, params, prefix, 12, greedy=True)
    assert list(got) == _quadratic_reference(rec, params, prefix, 12, K)
    assert len(set(got.tolist())) > 1


def test_sampling_is_seeded_and_follows_the_temperature():
    K = 4
    rec = gr.load("fig10_3", sizes={"I": K, "K": K})
    params = rec.init_params(seed=1)
    a = generate(rec, params, np.zeros((1, 200), dtype=np.int64), 5, seed=7)
    b = generate(rec, params, np.zeros((1, 200), dtype=np.int64), 5, seed=7)
    np.testing.assert_array_equal(a, b)
    # the first sampled symbol of 200 sequences: its frequencies follow softmax(o / temperature)
    o = predict(rec, params, {"x": _one_hot([0], K)})["o"][-1, :, 0]
    for temperature in (0.5, 2.0):
        got = generate(rec, params, np.zeros((1, 4000), dtype=np.int64), 1, temperature=temperature, seed=1)
        p = np.exp(o / temperature) / np.exp(o / temperature).sum()
        freq = np.bincount(got[0], minlength=K) / 4000
        np.testing.assert_allclose(freq, p, atol=0.03)
    cold = generate(rec, params, np.zeros((1, 300), dtype=np.int64), 1, temperature=1e-3, seed=2)
    assert np.all(cold == np.argmax(o))


def test_predict_is_forward_only_and_returns_the_outputs():
    rec = gr.load("lstm")
    data = rec.random_inputs(6, batch=2, seed=4)
    params = rec.init_params(seed=4)
    got = predict(rec, params, data, ("o", "h"), final_state=True)
    run = rec.run(data, params=params)
    np.testing.assert_allclose(got["o"], run.stacked("o"), rtol=1e-12)
    assert got["h"].shape == (6, 4, 2) and got["loss"] == pytest.approx(run.loss)
    assert set(got["final_state"]) == {"h", "s"}
    no_targets = predict(rec, params, {"x": data["x"]})
    np.testing.assert_allclose(no_targets["o"], got["o"]) and "loss" not in no_targets


def test_generate_refuses_what_it_cannot_do():
    rec = gr.load("fig10_3")  # x has 3 rows, o 4 classes
    with pytest.raises(TrainError, match="must be equal"):
        generate(rec, rec.init_params(), [0], 3)
    square = gr.load("fig10_3", sizes={"I": 4})
    with pytest.raises(TrainError, match="class labels 0..3"):
        generate(square, square.init_params(), [5], 3)
    with pytest.raises(TrainError, match="temperature"):
        generate(square, square.init_params(), [1], 3, temperature=0)


def test_the_trainer_carries_the_state_along_a_text_stream():
    """With carry=True each chunk starts where the previous one ended: its loss is that of the same
    steps inside one run over the whole track (the parameters barely move at this learning rate)."""
    text = "the quick brown fox jumps over the lazy dog. " * 6
    task = Text(text=text, T=10)
    trainer = Trainer(gr.load("gru", sizes={"H": 8}), task, batch=2, optimizer="sgd", lr=1e-12, carry=True,
                      dtype=np.float64, loss_scale="sum", progress=False)
    params = {n: p.copy() for n, p in trainer.params.items()}
    trainer.fit(3)
    track = (len(task.ids) - 1) // 2
    seqs = np.stack([task.ids[b * track: b * track + 31] for b in range(2)], axis=1)
    x = np.zeros((30, task.classes, 2))
    x[np.arange(30)[:, None], seqs[:-1], np.arange(2)[None, :]] = 1
    whole = trainer.rec.run({"x": x, "y": seqs[1:]}, params=params, copies=False)
    for i in range(3):
        expected = sum(whole.step_losses[t] for t in range(10 * i + 1, 10 * i + 11))
        assert trainer.history["loss"][i] == pytest.approx(expected, rel=1e-9)
    assert trainer.state is not None and trainer.state["h"].shape == (8, 2)
