"""Runs that used to go quietly wrong are clear errors (issue 13, part 5): data arrays of different
lengths without T=, and free running or scheduled sampling on a spec without a `feedback` line."""

from __future__ import annotations

import pytest

import graphrnn as gr
from graphrnn.cli import main


def test_data_of_different_lengths_is_an_error_naming_each_array_and_the_fix():
    rec = gr.load("fig10_3")
    data = rec.random_inputs(4, batch=2)
    data["y"] = data["y"][:3]
    with pytest.raises(gr.DataError, match=r"'x' has 4 steps, 'y' has 3 steps; y\[4\] is missing.*pass T= "
                                           r"\(e\.g\. T=3\)"):
        rec.run(data)
    assert rec.run(data, T=3).T == 3  # asked for: fine


def test_a_read_of_y_at_t_plus_1_needs_one_more_step_of_y():
    rec = gr.Recurrence("input x: 2\ntarget y: class 3\nstate h: 3\nh[t] = tanh(W @ h[t-1] + U @ x[t])\n"
                        "L[t] = cross_entropy(V @ h[t], y[t+1])\n")
    data = rec.random_inputs(4)
    assert data["y"].shape[0] == 5 and rec.run(data).T == 4  # y[1..tau+1]: the lengths agree
    data["y"] = data["y"][:4]
    with pytest.raises(gr.DataError, match=r"'y' has 4 steps \(read up to y\[tau\+1\]\), enough for 3; y\[5\] "
                                           r"is missing"):
        rec.run(data)
    assert gr.load("fig10_9").run(gr.load("fig10_9").random_inputs(4)).T == 4


@pytest.mark.parametrize("mode", ["free", "scheduled"])
def test_free_running_without_feedback_is_an_error_in_the_api(mode):
    rec = gr.load("fig10_3")
    with pytest.raises(gr.SpecError, match=rf"mode='{mode}'.*no `feedback` line.*`feedback y\[t\] = "
                                           rf"argmax\(o\[t\]\)`.*mode='teacher'"):
        rec.run(rec.random_inputs(3), mode=mode)
    with pytest.raises(gr.SpecError, match="no `feedback` line"):
        gr.verify.verify("fig10_3", steps=3, mode=mode)
    fed = gr.load("fig10_6")
    assert fed.run(fed.random_inputs(3), mode=mode).T == 3


@pytest.mark.parametrize("command", [["run"], ["verify", "--steps", "3"], ["render", "--folded"], ["derive"]])
def test_free_running_without_feedback_is_an_error_in_the_cli(command, capsys, tmp_path):
    argv = [command[0], "fig10_3", *command[1:], "--mode", "free"]
    if command[0] == "render":
        argv += ["-o", str(tmp_path / "f.svg")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "no `feedback` line" in err and "Traceback" not in err
