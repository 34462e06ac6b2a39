"""`graphrnn explore`: writes the page, exits 0; too many steps and bad input exit 2 with a message."""

from __future__ import annotations

from graphrnn.cli import main


def test_the_command_writes_a_page(tmp_path, capsys):
    out = tmp_path / "page.html"
    assert main(["explore", "fig10_3", "--steps", "3", "--batch", "1", "--seed", "3", "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!doctype html>") and '"seed":3' in text
    said = capsys.readouterr().out
    assert f"wrote {out}" in said and "9 forward and 9 backward steps" in said and "agree with finite" in said


def test_sizes_and_no_checks(tmp_path, capsys):
    out = tmp_path / "lstm.html"
    assert main(["explore", "lstm", "-T", "2", "--size", "H=2", "--no-checks", "-o", str(out)]) == 0
    assert '"checks":{}' in out.read_text(encoding="utf-8")


def test_more_than_50_steps_exits_2_with_a_clear_message(tmp_path, capsys):
    assert main(["explore", "fig10_3", "--steps", "51", "-o", str(tmp_path / "p.html")]) == 2
    err = capsys.readouterr().err
    assert "steps = 51 is too many" in err and "at most 50" in err and "Traceback" not in err
    assert not (tmp_path / "p.html").exists()


def test_a_failing_check_exits_1(tmp_path, capsys, wrong_rule):
    wrong_rule("tanh", lambda g, out, args, need, saved, attrs: (g,))
    assert main(["explore", "fig10_3", "--steps", "3", "-o", str(tmp_path / "p.html")]) == 1
    assert "a check FAILED" in capsys.readouterr().err
    assert (tmp_path / "p.html").is_file()  # the page is written anyway: it shows where


def test_the_command_is_listed(capsys):
    try:
        main(["--help"])
    except SystemExit:
        pass
    assert "explore" in capsys.readouterr().out
