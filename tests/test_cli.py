"""The `graphrnn` command line: list, show, demo, and errors without tracebacks."""

import subprocess
import sys

import pytest

from graphrnn import zoo
from graphrnn.cli import main


def test_list_names_every_zoo_architecture(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in zoo.names():
        assert out.count(f"{name} ") >= 1
    assert "Fig. 10.3" in out


def test_show_prints_equations_shapes_count_and_delays(capsys):
    assert main(["show", "fig10_3"]) == 0
    out = capsys.readouterr().out
    assert "h[t] = tanh(b + W @ h[t-1] + U @ x[t])" in out
    assert "W          5 x 5" in out
    assert "total: 69 numbers" in out  # b 5 + W 25 + U 15 + c 4 + V 20
    assert "h -> h  delay 1 via W" in out


def test_show_takes_size_overrides_and_spec_files(tmp_path, capsys):
    spec = tmp_path / "mine.rnn"
    spec.write_text("size H = 2\ninput x: 3\nstate h: H\nh[t] = tanh(W @ h[t-1] + U @ x[t])\n")
    assert main(["show", str(spec), "--size", "H=7"]) == 0
    assert "W          7 x 7" in capsys.readouterr().out


@pytest.mark.parametrize("argv, needle", [
    (["show", "nope"], "no architecture 'nope'"),
    (["show", "fig10_3", "--size", "Q=3"], "unknown size 'Q'"),
    (["show", "fig10_3", "--size", "H"], "--size takes NAME=NUMBER"),
    (["show", "missing/file.rnn"], "no spec file"),
])
def test_errors_are_one_line_on_stderr_with_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert needle in captured.err and "Traceback" not in captured.err
    assert captured.out == ""


def test_a_broken_spec_names_the_line_and_column(tmp_path, capsys):
    spec = tmp_path / "bad.rnn"
    spec.write_text("input x: 3\nh[t] = tanh(W @ h[t-1] + U @ x[t]\n")
    assert main(["show", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "bad.rnn:2" in err and "Traceback" not in err


def test_demo_draws_and_verifies(tmp_path, capsys):
    assert main(["demo", "--steps", "3", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "all passed" in out and "eq. 10.21 is printed in the book" in out
    written = sorted(p.name for p in tmp_path.iterdir())
    assert len(written) == 3 and all(name.startswith("fig10_3_") for name in written)


def test_console_script_runs_as_a_module():
    done = subprocess.run([sys.executable, "-m", "graphrnn.cli", "show", "fig10_5"], capture_output=True, text=True)
    assert done.returncode == 0 and "o[tau] = c + V @ h[tau]" in done.stdout


def test_python_dash_m_graphrnn_is_the_graphrnn_command():
    import subprocess
    import sys

    got = subprocess.run([sys.executable, "-m", "graphrnn", "list"], capture_output=True, text=True, timeout=120)
    assert got.returncode == 0 and got.stdout.split()[0] == "fig10_2" and "fig10_12" in got.stdout
