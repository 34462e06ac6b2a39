"""Forward-only runs (issue 13, part 3): a spec without a loss runs forward by default, its
values checked against plain numpy; `graphrnn run` prints or saves them."""

import numpy as np
import pytest

import graphrnn as gr
from graphrnn.cli import main


def _numpy_fig10_2(data, params, T):
    """h(t) = tanh(W h(t-1) + U x(t) + b), h(0) = 0: fig. 10.2 by hand."""
    h = np.zeros((params["W"].shape[0], data["x"].shape[-1]))
    out = []
    for t in range(T):
        h = np.tanh(params["W"] @ h + params["U"] @ data["x"][t] + params["b"])
        out.append(h)
    return out


@pytest.mark.parametrize("copies", [True, False])
def test_a_spec_without_a_loss_runs_forward_by_default(copies):
    rec = gr.load("fig10_2")
    data, params = rec.random_inputs(5, batch=2, seed=1), rec.init_params(seed=2)
    run = rec.run(data, params=params, copies=copies)
    expected = _numpy_fig10_2(data, params, 5)
    for t in range(1, 6):
        np.testing.assert_allclose(run.values[f"h[{t}]"], expected[t - 1], rtol=0, atol=1e-14)
    assert len(run.grads) == 0 and np.isnan(run.loss)
    again = rec.run(data, params=params, copies=copies, backward=False)
    np.testing.assert_array_equal(again.values["h[5]"], run.values["h[5]"])


def test_backward_true_on_a_spec_without_a_loss_is_a_clear_error():
    rec = gr.load("fig10_2")
    with pytest.raises(gr.SpecError, match=r"no loss to differentiate.*backward=False"):
        rec.run(rec.random_inputs(3), backward=True)


def test_a_spec_with_a_loss_still_goes_backward_by_default_and_can_run_forward_only():
    rec = gr.load("fig10_3")
    data = rec.random_inputs(4, batch=2)
    both, forward = rec.run(data), rec.run(data, backward=False)
    assert "W" in both.grads and len(forward.grads) == 0
    assert forward.loss == pytest.approx(both.loss, rel=1e-15)


def test_cli_run_prints_a_table(capsys):
    assert main(["run", "fig10_2", "--steps", "3", "--batch", "2", "--seed", "0"]) == 0
    out = capsys.readouterr().out
    rec = gr.load("fig10_2")
    run = rec.run(rec.random_inputs(3, batch=2, seed=0), params=rec.init_params(seed=0))
    assert "forward only (no loss)" in out
    assert f"h[3]  [{' '.join(f'{v: .4f}' for v in run.values['h[3]'][:, 0])}]" in out


@pytest.mark.parametrize("arch", ["fig10_2", "fig10_3", "fig10_5"])
def test_cli_run_saves_every_value_as_npz(arch, tmp_path, capsys):
    out = tmp_path / "values.npz"
    assert main(["run", arch, "--steps", "4", "--batch", "2", "--seed", "3", "-o", str(out)]) == 0
    rec = gr.load(arch)
    run = rec.run(rec.random_inputs(4, batch=2, seed=3), params=rec.init_params(seed=3))
    with np.load(out, allow_pickle=False) as got:
        np.testing.assert_array_equal(got["h"], run.stacked("h"))
        np.testing.assert_array_equal(got["param:W"], rec.init_params(seed=3)["W"])
        if rec.losses:
            assert float(got["loss"]) == run.loss
            np.testing.assert_array_equal(got["grad:W"], run.grads["W"])
        else:
            assert "loss" not in got.files and "grad:W" not in got.files
        if arch == "fig10_5":  # o and L are defined at the last step only
            np.testing.assert_array_equal(got["o"], run.values["o[4]"])


def test_cli_run_reads_data_from_an_npz(tmp_path, capsys):
    rec = gr.load("fig10_2")
    data = rec.random_inputs(2, batch=1, seed=9)
    np.savez(tmp_path / "in.npz", **data)
    assert main(["run", "fig10_2", "--data", str(tmp_path / "in.npz"), "-o", str(tmp_path / "o.npz")]) == 0
    with np.load(tmp_path / "o.npz", allow_pickle=False) as got:
        assert got["h"].shape == (2, 3, 1)
        np.testing.assert_array_equal(got["data:x"], data["x"])


def test_cli_run_errors_have_no_traceback(capsys):
    assert main(["run", "fig10_2", "--steps", "0"]) == 2
    assert "--steps and --batch must be at least 1" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["teacher", "free"])
def test_cli_run_saves_the_fed_values_of_free_running(mode, tmp_path, capsys):
    out = tmp_path / "values.npz"
    assert main(["run", "fig10_6", "--steps", "3", "--batch", "2", "--mode", mode, "-o", str(out)]) == 0
    rec = gr.load("fig10_6")
    run = rec.run(rec.random_inputs(3, batch=2, seed=0), params=rec.init_params(seed=0), mode=mode, seed=0)
    with np.load(out, allow_pickle=False) as got:
        assert float(got["loss"]) == run.loss
        if mode == "free":
            np.testing.assert_array_equal(got["y_fed"], np.stack([run.fed[f"y_fed[{t}]"] for t in (1, 2, 3)]))
        else:
            assert "y_fed" not in got.files
    assert main(["run", "fig10_6", "--steps", "3", "--mode", mode]) == 0
