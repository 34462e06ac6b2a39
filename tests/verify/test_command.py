"""`graphrnn verify`: prints the report, exits 0 / 1 / 2, exports and plots."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from _deps import require

from graphrnn.cli import main


def test_a_passing_check_prints_the_report_and_exits_0(capsys):
    assert main(["verify", "fig10_3", "--steps", "3", "--batch", "1"]) == 0
    out = capsys.readouterr().out
    assert "by the book (eqs. 10.17–10.21)" in out and "10.21†" in out and "does not type-check" in out
    assert "Derived equations:" in out
    assert "∇h[3] L" in out and "all passed" in out


def test_every_option_is_accepted(capsys):
    code = main(["verify", "lstm", "-T", "3", "-B", "1", "--seed", "4", "--dtype", "float32", "--size", "H=3",
                 "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "float32" in out and "all passed" in out and "∇Wf^(" not in out  # --quiet: no rows


def test_a_failing_check_exits_1_naming_the_step_and_variable(capsys, wrong_rule):
    wrong_rule("tanh", lambda g, out, args, need, saved, attrs: (g,))
    assert main(["verify", "fig10_3", "--steps", "4", "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "FAILED" in captured.err and "step 3, ∇h[3] L (variable h)" in captured.err
    assert "FAIL" in captured.out


def test_a_spec_without_a_loss_exits_2_with_a_message(capsys):
    assert main(["verify", "fig10_2"]) == 2
    err = capsys.readouterr().err
    assert "fig10_2 has no loss" in err and "Traceback" not in err


def test_export_and_plot_files_are_written(tmp_path, capsys):
    require("matplotlib")
    npz, png = tmp_path / "run.npz", tmp_path / "norms.png"
    assert main(["verify", "fig10_3", "-T", "3", "-q", "--export", str(npz), "--plot", str(png),
                 "--plot-steps", "10"]) == 0
    assert np.load(npz, allow_pickle=False)["grad/W"].shape == (5, 5)
    assert png.read_bytes()[:4] == b"\x89PNG"
    out = capsys.readouterr().out
    assert f"wrote {npz}" in out and f"wrote {png}" in out


def test_plot_without_matplotlib_fails_before_the_check_with_the_install_hint(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["verify", "fig10_3", "--plot", str(tmp_path / "x.png")]) == 2
    captured = capsys.readouterr()
    assert "pip install" in captured.err and "BPTT check" not in captured.out


def test_plot_of_a_spec_without_a_recurrent_matrix_fails_before_the_check(capsys, tmp_path):
    require("matplotlib")
    assert main(["verify", "fig10_6", "--plot", str(tmp_path / "x.png")]) == 2
    captured = capsys.readouterr()
    assert "no recurrent matrix" in captured.err and "BPTT check" not in captured.out
