"""The README's Python examples run as written, and its two commands are what CI runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_examples_run(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)  # the examples write fig.svg
    namespace: dict = {}
    exec(compile("\n".join(blocks), "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["report"].ok
    assert (tmp_path / "fig.svg").read_text().lstrip().startswith(("<?xml", "<svg"))


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "bash dev test" in readme and "bash dev demo" in readme
    assert "bash dev test" in ci


def test_readme_encoder_decoder_and_tree_examples_give_what_they_say(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile("\n".join(blocks), "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["s2s"].T == {"enc": 5, "dec": 3} and namespace["s2s"].grads["enc.W"].shape == (5, 5)
    assert namespace["tree_run"].values["h[1..4]"].shape == (4, 2) and namespace["tree_run"].loss > 0


def test_readme_zoo_table_names_every_model_with_its_loader():
    from graphrnn import zoo

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("### The zoo"):text.index("### Encoder–decoders")]
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    loader = {"sequence": "gr.load(name)", "encdec": "gr.zoo.load_encdec(name)", "tree": "gr.zoo.load_tree(name)"}
    for entry in zoo.catalog():
        row = next(line for line in rows.values() if f"`{entry.name}`" in line)
        assert loader[entry.kind] in row, entry.name


def test_readme_shell_commands_parse():
    """Every `graphrnn ...` line of the README's bash blocks is a command the parser takes."""
    import shlex

    from graphrnn.cli import build_parser

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = [line.strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S) for line in block.splitlines()]
    commands = [shlex.split(line, comments=True) for line in lines if line.startswith("graphrnn ")]
    assert len(commands) >= 10
    for argv in commands:
        build_parser().parse_args(argv[1:])  # argparse exits (a test failure) on a wrong option
