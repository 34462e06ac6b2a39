"""`graphrnn derive`: text, LaTeX and markdown, to the terminal or a file; clear errors."""

from __future__ import annotations

import pytest

import graphrnn as gr
from graphrnn.cli import main
from graphrnn.zoo import text as zoo_text


def test_text_is_the_default(capsys):
    assert main(["derive", "fig10_3"]) == 0
    out = capsys.readouterr().out
    assert out == gr.derive("fig10_3").text() + "\n"
    assert "(10.21†)" in out and "∇W L = Σ_t diag(1 − (h(t))²) ∇h(t) L h(t−1)ᵀ" in out


def test_latex_is_an_align_with_one_line_per_equation(capsys, tmp_path):
    path = tmp_path / "lstm.tex"
    assert main(["derive", "lstm", "--format", "latex", "-o", str(path)]) == 0
    assert "wrote" in capsys.readouterr().err
    tex = path.read_text(encoding="utf-8")
    d = gr.derive("lstm")
    assert tex.startswith("\\begin{align}") and "\\end{align}" in tex
    body = tex.split("\\begin{align}")[1].split("\\end{align}")[0]
    assert body.count("\\\\\n") == len([e for e in d.equations if e.kind != "none"]) - 1
    assert body.count("\\left(") == body.count("\\right)") and body.count("{") == body.count("}")
    assert "\\tag" not in body  # numbered by amsmath: only fig. 10.3 carries the book's numbers


def test_fig10_3_latex_carries_the_books_numbers(capsys):
    assert main(["derive", "fig10_3", "-f", "latex"]) == 0
    out = capsys.readouterr().out
    for number in ("10.17", "10.18", "10.19", "10.21\\dagger", "10.22", "10.23", "10.24", "10.25--26", "10.27--28"):
        assert f"\\tag{{{number}}}" in out


def test_markdown_has_display_math_and_the_remarks(capsys):
    assert main(["derive", "fig10_6", "--format", "markdown", "--mode", "free"]) == 0
    out = capsys.readouterr().out
    assert out.count("$$") % 2 == 0 and out.count("$$") >= 16
    assert "No gradient:" in out and "without gradient" in out


def test_a_spec_file_and_size_overrides(tmp_path, capsys):
    path = tmp_path / "mine.rnn"
    path.write_text(zoo_text("fig10_11"), encoding="utf-8")
    assert main(["derive", str(path), "--size", "H=7"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("mine:") and "∇g(1) L = V2ᵀ ∇o(1) L" in out


@pytest.mark.parametrize("argv,message", [
    (["derive", "fig10_2"], "fig10_2 has no loss"),
    (["derive", "lstm", "-o", "/nonexistent-dir/x.txt"], "cannot write"),
    (["derive", "nosuchthing"], "nosuchthing"),
])
def test_errors_exit_2_with_a_message(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_the_jupyter_display_is_the_markdown():
    d = gr.derive("gru")
    assert d._repr_markdown_() == d.markdown()
    assert "$$" in d._repr_markdown_()
