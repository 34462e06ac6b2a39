"""`graphrnn train`: the files it writes, and what they load back into."""

from __future__ import annotations

import json

import numpy as np
import pytest

import graphrnn as gr
from _deps import require
from graphrnn.cli import main


def test_train_writes_params_history_and_curves_that_load_back(tmp_path, capsys):
    require("matplotlib")  # curves.png
    out = tmp_path / "run"
    code = main(["train", "gru", "--task", "adding", "--T", "6", "--steps", "12", "--batch", "4",
                 "--optimizer", "adam", "--lr", "0.01", "--clip", "1", "--seed", "3", "-o", str(out), "-q"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "gru-adding on adding: 12 steps" in printed and "a fresh batch: mse" in printed
    history = json.loads((out / "history.json").read_text())
    assert len(history["loss"]) == 12 and set(history["grad_norm_param"]) >= {"Wu", "Un", "V"}
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    # the trained model: its spec as trained, and its parameters, go back into rec.run and verify
    rec = gr.load(str(out / "spec.rnn"))
    with np.load(out / "params.npz", allow_pickle=False) as f:
        params = {k: f[k] for k in f.files}
    assert all(p.dtype == np.float32 for p in params.values())
    data = gr.train.Adding(T=6).batch(np.random.default_rng(0), 2)
    run = rec.run(data, params=params, copies=False, dtype=np.float32)
    assert np.isfinite(run.loss)
    report = gr.verify.verify(rec, steps=4, params={k: v.astype(np.float64) for k, v in params.items()})
    assert report.ok


def test_train_resumes_from_its_checkpoint(tmp_path, capsys):
    args = ["train", "fig10_3", "--task", "copy", "--n", "2", "--delay", "2", "--batch", "4", "--seed", "1",
            "-q", "-o"]
    assert main(args + [str(tmp_path / "a"), "--steps", "6"]) == 0
    assert main(args + [str(tmp_path / "b"), "--steps", "3"]) == 0
    assert main(args + [str(tmp_path / "b"), "--steps", "3", "--resume"]) == 0
    assert "resumed from" in capsys.readouterr().out
    with np.load(tmp_path / "a" / "params.npz") as a, np.load(tmp_path / "b" / "params.npz") as b:
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])
    ha = json.loads((tmp_path / "a" / "history.json").read_text())
    hb = json.loads((tmp_path / "b" / "history.json").read_text())
    assert ha["loss"] == hb["loss"]


@pytest.mark.parametrize("argv, message", [
    (["train", "gru", "--task", "text"], "needs a file: --text FILE"),
    (["train", "gru", "--task", "reber", "--mode", "scheduled"], "has no `feedback` line"),
    (["train", "halt", "--task", "copy"], "halt does not fit"),
    (["train", "gru", "--task", "copy", "--resume"], "no .*checkpoint.npz to continue from"),
])
def test_train_errors_are_one_line(tmp_path, capsys, argv, message):
    assert main(argv + ["-o", str(tmp_path / "x"), "-q", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("graphrnn train: error:") and err.count("\n") == 1
    import re

    assert re.search(message, err)


def test_train_scheduled_sampling_on_a_spec_that_feeds_back_and_prints_grammar_checked_samples(tmp_path, capsys):
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "experiments" / "reber_fed.rnn"
    code = main(["train", str(path), "--task", "reber", "--mode", "scheduled", "--p", "0.5", "--steps", "4",
                 "--batch", "4", "--samples", "2", "-q", "-o", str(tmp_path / "r")])
    assert code == 0
    out = capsys.readouterr().out
    samples = [line for line in out.splitlines() if line.startswith("  B")]
    assert len(samples) == 2 and all("whole strings" in s for s in samples)
    history = json.loads((tmp_path / "r" / "history.json").read_text())
    assert history["p"][0] == 0.0 and 0 < history["p"][-1] < 0.5  # raised linearly from 0 towards P


def test_train_on_a_text_file_carries_the_state_and_prints_samples(tmp_path, capsys):
    text = tmp_path / "book.txt"
    text.write_text("hello world! " * 60, encoding="utf-8")
    code = main(["train", "fig10_3", "--task", "text", "--text", str(text), "--T", "12", "--carry",
                 "--truncate", "4,6", "--steps", "6", "--batch", "3", "--samples", "2", "-q", "-o", str(tmp_path / "t")])
    assert code == 0
    out = capsys.readouterr().out
    samples = [line for line in out.splitlines() if line.startswith("  '")]
    assert len(samples) == 2 and "accuracy" in out
    with np.load(tmp_path / "t" / "checkpoint.npz", allow_pickle=False) as f:
        assert f["state/h"].shape == (5, 3)  # the carried state is part of the checkpoint
