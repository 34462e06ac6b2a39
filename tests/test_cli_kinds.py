"""The command line and the zoo for every kind of model: sequence models, encoder-decoders (fig. 10.12) and
recursive nets (fig. 10.14): what works, and a one-line error naming the model, the command and the fix for
what does not."""

import re
import subprocess
import sys

import numpy as np
import pytest

import graphrnn as gr
from graphrnn import zoo
from graphrnn.cli import build_parser, main
from graphrnn.recurrence.encdec import EncoderDecoder
from graphrnn.runtime.encdec import run_encdec

ENCDEC_SPEC = """# my seq2seq
size H = 3, I = 2, K = 3
encoder over a:
  input  a: I
  state  h: H = zero
  h[t] = tanh(W @ h[t-1] + U @ a[t])
C = h[tau]
decoder over z:
  target z: class K
  init   z = zero
  state  s: H = C
  loss   L
  s[t] = tanh(W @ s[t-1] + U @ one_hot(z[t-1]))
  o[t] = V @ s[t]
  L[t] = cross_entropy(o[t], z[t])
"""


def _fails(argv, capsys):
    """Run a command that must fail: exit 2, one line on stderr, no traceback, nothing on stdout."""
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


# --------------------------------------------------------------------------- the zoo


def test_the_catalog_holds_every_kind_in_the_books_order():
    entries = zoo.catalog()
    names = [e.name for e in entries]
    assert set(names) == set(zoo.names()) | set(zoo.encdec_names()) | set(zoo.tree_names())
    assert len(names) == len(set(names))
    figures = [n for n in names if n.startswith("fig10_")]
    assert figures == ["fig10_2", "fig10_3", "fig10_4", "fig10_5", "fig10_6", "fig10_9", "fig10_10", "fig10_11",
                       "fig10_12", "fig10_12_init", "fig10_12_input", "fig10_13a", "fig10_13b", "fig10_13c",
                       "fig10_14"]
    assert names[len(figures):] == ["gru", "halt", "lstm"]  # the others after the book's figures
    kinds = {e.name: e.kind for e in entries}
    assert kinds["fig10_12_input"] == "encdec" and kinds["fig10_14"] == "tree" and kinds["fig10_13b"] == "sequence"


@pytest.mark.parametrize("call, loader", [
    (lambda: gr.load("fig10_12"), "gr.zoo.load_encdec('fig10_12')"),
    (lambda: gr.zoo.load("fig10_12_init"), "gr.zoo.load_encdec('fig10_12_init')"),
    (lambda: gr.load("fig10_14"), "gr.zoo.load_tree('fig10_14')"),
    (lambda: gr.zoo.load_tree("fig10_12"), "gr.zoo.load_encdec('fig10_12')"),
    (lambda: gr.zoo.load_tree("fig10_3"), "gr.load('fig10_3')"),
    (lambda: gr.zoo.load_encdec("fig10_14"), "gr.zoo.load_tree('fig10_14')"),
    (lambda: gr.zoo.load_encdec("lstm"), "gr.load('lstm')"),
    (lambda: gr.zoo.text("fig10_12"), "gr.zoo.load_encdec('fig10_12')"),
])
def test_a_loader_of_the_wrong_kind_names_the_right_one(call, loader):
    with pytest.raises(gr.SpecError) as info:
        call()
    assert loader in str(info.value)


def test_an_unknown_name_lists_every_loader():
    with pytest.raises(gr.SpecError) as info:
        gr.load("seq2seq")
    message = str(info.value)
    assert "no architecture 'seq2seq'" in message and "load_encdec" in message and "load_tree" in message


def test_load_encdec_loads_the_zoo_and_files(tmp_path):
    assert zoo.load_encdec("fig10_12").conditioning == {"C": ("initial state of s", "input at every step")}
    assert zoo.load_encdec("fig10_12_input", sizes={"D": 2}).decoder.rec.variables["s"].rows == 2
    spec = tmp_path / "mine.rnn"
    spec.write_text(ENCDEC_SPEC)
    assert zoo.kind_of(str(spec)) == "encdec"
    model = zoo.load_encdec(str(spec))
    assert isinstance(model, EncoderDecoder) and model.name == "mine"
    with pytest.raises(gr.SpecError, match=r"load_encdec\("):
        gr.load(str(spec))  # a file with sections is not a recurrence over one axis
    with pytest.raises(gr.SpecError, match="no encoder-decoder 'nope'"):
        zoo.load_encdec("nope")


def test_encoder_decoder_run_is_the_runtimes_run():
    model = zoo.load_encdec("fig10_12", sizes={"H": 3})
    data, params = model.random_inputs((3, 2), batch=2, seed=4), model.init_params(seed=4)
    mine, theirs = model.run(data, params), run_encdec(model, data, params)
    assert mine.loss == theirs.loss and mine.T == {"enc": 3, "dec": 2}
    for name in theirs.grads:
        assert np.array_equal(mine.grads[name], theirs.grads[name]), name
    assert not model.run(data, params, backward=False).context_grads


# --------------------------------------------------------------------------- list, show


def test_list_tags_every_model_with_its_kind_in_the_books_order(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [e.name for e in zoo.catalog()]
    kinds = {line.split()[0]: line for line in lines}
    assert "encoder-decoder" in kinds["fig10_12"] and "Fig. 10.12" in kinds["fig10_12"]
    assert "recursive net" in kinds["fig10_14"] and "Fig. 10.14" in kinds["fig10_14"]
    assert "sequence model" in kinds["fig10_13a"] and "sequence model" in kinds["lstm"]


def test_show_an_encoder_decoder(capsys):
    assert main(["show", "fig10_12"]) == 0
    out = capsys.readouterr().out
    assert "encoder over x" in out and "decoder over y" in out and "link: C = h[tau]" in out
    assert "C: initial state of s, input at every step" in out and "parameters: 144 numbers" in out


def test_show_a_recursive_net(capsys):
    assert main(["show", "fig10_14", "--size", "H=2"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"h\[node\] = tanh\(b \+ U @ h\[left\] \+ W @ h\[right\]\)\s+at every node", out)
    assert re.search(r"o = c \+ R @ h\[root\]\s+at the root", out)
    assert "W          2 x 2" in out and "V          2 x 3" in out
    rec = zoo.load_tree("fig10_14", sizes={"H": 2})
    assert f"total: {rec.parameter_count} numbers" in out and rec.parameter_count == 2 * 3 + 2 + 4 + 4 + 3 + 6


def test_show_reads_spec_files_of_every_kind(tmp_path, capsys):
    spec = tmp_path / "mine.rnn"
    spec.write_text(ENCDEC_SPEC)
    assert main(["show", str(spec)]) == 0
    assert "encoder over a" in capsys.readouterr().out
    tree = tmp_path / "mine.tree"
    tree.write_text(zoo.HERE.joinpath("fig10_14.tree").read_text())
    assert main(["show", str(tree)]) == 0
    assert "at every leaf" in capsys.readouterr().out


# --------------------------------------------------------------------------- render


def test_render_an_encoder_decoder_folded_as_printed(tmp_path, capsys):
    out = tmp_path / "fig.dot"
    assert main(["render", "fig10_12", "--folded", "-o", str(out)]) == 0
    dot = out.read_text()
    assert "Encoder" in dot and "Decoder" in dot and "n<SUB>" in dot.replace("<I>", "").replace("</I>", "")


def test_render_an_encoder_decoder_unrolled_on_both_axes(tmp_path, capsys):
    out = tmp_path / "unrolled.dot"
    assert main(["render", "fig10_12", "--unrolled", "--steps", "4,3", "-o", str(out)]) == 0
    dot = out.read_text()
    steps = lambda letter: {int(n) for n in re.findall(rf'tooltip="{letter}\^\((\d+)\)[ "]', dot)}  # noqa: E731
    assert steps("h") == {0, 1, 2, 3, 4} and steps("x") == {1, 2, 3, 4}
    assert steps("s") == {0, 1, 2, 3} and steps("L") == {1, 2, 3}


@pytest.mark.parametrize("argv, needle", [
    (["render", "fig10_12", "--both", "-o", "x.svg"], "draw it --folded"),
    (["render", "fig10_12", "--teacher-forcing", "-o", "x.svg"], "draw it --folded"),
    (["render", "fig10_12", "--folded", "--steps", "3,2", "-o", "x.svg"], "--unrolled --steps TX,TY"),
    (["render", "fig10_12", "--unrolled", "--grad-path", "L:W", "-o", "x.svg"], "--grad-path"),
    (["render", "fig10_12", "--unrolled", "--tree", "(1, 2)", "-o", "x.svg"], "--tree and --unnamed"),
    (["render", "fig10_3", "--unrolled", "--steps", "4,3", "-o", "x.svg"], "give --steps T"),
    (["render", "fig10_14", "--unrolled", "--steps", "4,3", "-o", "x.svg"], "over a tree"),
])
def test_render_refusals_name_the_fix(argv, needle, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    line = _fails(argv, capsys)
    assert needle in line and argv[1] in line
    assert not (tmp_path / "x.svg").exists()


def test_steps_must_be_one_or_two_whole_numbers(capsys):
    with pytest.raises(SystemExit):
        main(["render", "fig10_12", "--unrolled", "--steps", "4,3,2", "-o", "x.svg"])
    assert "TX,TY" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "fig10_12", "--steps", "four"])
    assert "TX,TY" in capsys.readouterr().err


@pytest.mark.parametrize("argv, needle", [
    (["render", "fig10_12", "--unrolled", "--steps", "4,0", "-o", "x.svg"], "at least 1 step on each time axis"),
    (["verify", "fig10_12", "--steps", "0"], "at least 1 step on each time axis"),
    (["run", "fig10_12", "--steps", "0,2"], "at least 1 step on each time axis"),
    (["verify", "fig10_3", "--steps", "0"], "at least 1"),
    (["run", "fig10_3", "--steps", "-1"], "--steps and --batch must be at least 1"),
])
def test_steps_must_be_positive(argv, needle, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert needle in _fails(argv, capsys)


# --------------------------------------------------------------------------- verify


def test_verify_an_encoder_decoder(capsys):
    assert main(["verify", "fig10_12_input", "--steps", "3,2", "--batch", "1", "--size", "H=3", "--size", "D=2"]) == 0
    out = capsys.readouterr().out
    assert "tau_x = 3 encoder steps, tau_y = 2 decoder steps, batch 1" in out
    assert "∇enc.h[1]" in out and "∇dec.s[2]" in out and "∇C" in out
    assert re.search(r"derived equations .*: \d+ gradients, .*: all agree", out)


def test_verify_an_encoder_decoder_fails_on_a_wrong_gradient(monkeypatch, capsys):
    """A gradient 1% off makes the check fail: exit code 1, the failing quantity named."""
    real = EncoderDecoder.run

    def off(self, data, params=None, **options):
        run = real(self, data, params, **options)
        run.grads["enc.U"] = run.grads["enc.U"] * 1.01
        return run

    monkeypatch.setattr(EncoderDecoder, "run", off)
    assert main(["verify", "fig10_12", "--steps", "2,2"]) == 1
    captured = capsys.readouterr()
    assert "FAILED: fig10_12: first failure at ∇enc.U" in captured.err
    assert re.search(r"derived equations .* worst relative difference from the engine 9\.9e-03: FAILED", captured.out)


def test_verify_a_recursive_net(capsys):
    assert main(["verify", "fig10_14", "--tree", "(((1, 2), 3), (4, 5))", "--batch", "1"]) == 0
    out = capsys.readouterr().out
    assert "over the tree (((1, 2), 3), (4, 5)) (5 leaves, depth 3)" in out and "all passed" in out
    assert "⟨∇h[1..2] L, u⟩" in out


def test_verify_a_recursive_net_fails_loudly(monkeypatch, capsys):
    import graphrnn.verify.tree as vt

    monkeypatch.setattr(vt, "TOLERANCE", -1.0)  # no error is small enough: every central-difference row fails
    assert main(["verify", "fig10_14"]) == 1
    assert "FAILED: fig10_14" in capsys.readouterr().err


@pytest.mark.parametrize("argv, needle", [
    (["verify", "fig10_14", "--steps", "3"], "give --tree '((1, 2), (3, 4))' instead of --steps"),
    (["verify", "fig10_14", "--tree", "((1, 2)"], "--tree takes nested pairs"),
    (["verify", "fig10_14", "--tree", "((1, 2), (3, 3))"], ""),  # the tree's own check names the problem
    (["verify", "fig10_12", "--mode", "free"], "--mode: for recurrences over one time axis"),
    (["verify", "fig10_12", "--plot", "p.png"], "--plot"),
    (["verify", "fig10_12", "--tree", "(1, 2)"], "give --steps TX,TY"),
    (["verify", "fig10_3", "--tree", "(1, 2)"], "give --steps T"),
    (["verify", "fig10_3", "--steps", "3,2"], "give --steps T"),
])
def test_verify_refusals(argv, needle, capsys):
    line = _fails(argv, capsys)
    assert needle in line


# --------------------------------------------------------------------------- derive


def test_derive_an_encoder_decoder(tmp_path, capsys):
    assert main(["derive", "fig10_12_init"]) == 0
    out = capsys.readouterr().out
    assert "fig10_12_init: BPTT on two time axes" in out and "∇h(τ) L = ∇C L" in out
    target = tmp_path / "d.txt"
    assert main(["derive", "fig10_12", "-o", str(target)]) == 0
    assert "∇C L = " in target.read_text()


def test_derive_a_recursive_net_prints_back_propagation_through_the_tree(capsys):
    from graphrnn.derive.tree import render

    assert main(["derive", "fig10_14"]) == 0
    out = capsys.readouterr().out
    assert out == render("fig10_14", "text") and "left child of p" in out and "right child of p" in out
    assert main(["derive", "fig10_14", "--format", "latex"]) == 0
    assert "\\begin{align" in capsys.readouterr().out


@pytest.mark.parametrize("argv, needle", [
    (["derive", "fig10_12", "--format", "latex"], "leave out --format latex"),
    (["derive", "fig10_14", "--mode", "free"], "leave out --mode"),
])
def test_derive_refusals(argv, needle, capsys):
    line = _fails(argv, capsys)
    assert needle in line and line.startswith(f"graphrnn derive: error: {argv[1]}")


# --------------------------------------------------------------------------- run


def test_run_an_encoder_decoder_prints_both_phases(capsys):
    assert main(["run", "fig10_12", "--steps", "3,2"]) == 0
    out = capsys.readouterr().out
    assert "tau_x = 3, tau_y = 2, batch 1, teacher mode, loss" in out
    assert "h[3]" in out and "h[4]" not in out and "s[2]" in out and "link C = h[tau]:" in out


def test_run_an_encoder_decoder_saves_what_the_runtime_computes(tmp_path, capsys):
    path = tmp_path / "v.npz"
    assert main(["run", "fig10_12_input", "--steps", "4,2", "--batch", "2", "--seed", "3", "-o", str(path)]) == 0
    model = zoo.load_encdec("fig10_12_input")
    data = model.random_inputs((4, 2), batch=2, seed=3)
    ref = run_encdec(model, data, model.init_params(seed=3))
    with np.load(path, allow_pickle=False) as got:
        assert got["enc.h"].shape == (4, 5, 2) and got["dec.s"].shape == (2, 6, 2)
        assert np.array_equal(got["C"], ref.values["C"])
        assert np.allclose(got["C"], got["enc.h"].mean(axis=0), rtol=0, atol=1e-15)  # C = mean(h)
        assert np.array_equal(got["grad:enc.W"], ref.grads["enc.W"])
        assert np.array_equal(got["grad:dec.W"], ref.grads["dec.W"])
        assert np.array_equal(got["grad:C"], ref.context_grads["C"])
        assert np.array_equal(got["grad:enc.h"][2], ref.grads["enc.h[3]"])
        assert np.array_equal(got["param:enc.W"], model.init_params(seed=3)["enc.W"])
        assert np.array_equal(got["data:x"], data["x"]) and float(got["loss"]) == ref.loss
    forward = tmp_path / "f.npz"
    assert main(["run", "fig10_12_input", "--forward-only", "-o", str(forward)]) == 0
    with np.load(forward, allow_pickle=False) as got:
        assert not [k for k in got.files if k.startswith("grad:")] and "C" in got.files


def test_run_a_recursive_net(tmp_path, capsys):
    assert main(["run", "fig10_14", "--tree", "((1, 2), 3)"]) == 0
    out = capsys.readouterr().out
    assert "over the tree ((1, 2), 3) (3 leaves, depth 2)" in out and "h[1..2]" in out and "h[1..3]" in out
    path = tmp_path / "t.npz"
    assert main(["run", "fig10_14", "--batch", "2", "--seed", "1", "-o", str(path)]) == 0
    rec = zoo.load_tree("fig10_14")
    tree = ((1, 2), (3, 4))
    ref = rec.run(tree, rec.random_inputs(tree, batch=2, seed=1), rec.init_params(seed=1))
    with np.load(path, allow_pickle=False) as got:
        assert np.array_equal(got["h[1..4]"], ref.values["h[1..4]"])
        assert np.array_equal(got["grad:h[3..4]"], ref.node_grads["h[3..4]"])
        assert np.array_equal(got["grad:W"], ref.grads["W"]) and float(got["loss"]) == ref.loss


@pytest.mark.parametrize("argv, needle", [
    (["run", "fig10_12", "--lengths", "3,2"], "--lengths: for recurrences over one time axis"),
    (["run", "fig10_12", "--mode", "free"], "feedback"),
    (["run", "fig10_14", "--steps", "3"], "runs over --tree"),
    (["run", "fig10_14", "--mode", "free"], "--mode"),
    (["run", "fig10_3", "--tree", "(1, 2)"], "give --steps T"),
    (["run", "fig10_3", "--steps", "3,2"], "give --steps T"),
])
def test_run_refusals(argv, needle, capsys):
    assert needle in _fails(argv, capsys)


# --------------------------------------------------------------------------- what is not supported


@pytest.mark.parametrize("arch, kind", [("fig10_12", "an encoder-decoder"), ("fig10_14", "a recursive net")])
@pytest.mark.parametrize("argv", [
    ["explore", "{}", "-o", "page.html"],
    ["export", "{}", "--to", "torch"],
    ["train", "{}", "--task", "adding", "-o", "out"],
])
def test_unsupported_commands_say_so_in_one_line(arch, kind, argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    line = _fails([a.format(arch) for a in argv], capsys)
    assert line.startswith(f"graphrnn {argv[0]}: error: {arch} is {kind}")
    assert f"`graphrnn {argv[0]}` does not take" in line
    assert "`graphrnn verify`" in line and "`graphrnn run`" in line  # what works instead
    assert list(tmp_path.iterdir()) == []


def test_the_help_says_what_each_kind_takes(capsys):
    parser = build_parser()
    helps = {}
    for name, sub in parser._subparsers._group_actions[0].choices.items():
        helps[name] = sub.format_help()
    assert "TX,TY" in helps["render"] and "TX,TY" in helps["verify"] and "TX,TY" in helps["run"]
    assert "--tree" in helps["verify"] and "--tree" in helps["run"] and "--tree" in helps["render"]
    assert "encoder-decoder" in helps["derive"]
    top = parser.format_help()
    assert "encoder-decoder" in top and "recursive net" in top


def test_the_module_runs_an_encoder_decoder_as_a_user_would():
    done = subprocess.run([sys.executable, "-m", "graphrnn.cli", "show", "fig10_12"], capture_output=True, text=True)
    assert done.returncode == 0 and "link: C = h[tau]" in done.stdout
    done = subprocess.run([sys.executable, "-m", "graphrnn.cli", "export", "fig10_14", "--to", "jax"],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "fig10_14 is a recursive net" in done.stderr


def test_verify_an_encoder_decoder_fails_when_only_the_derived_equations_disagree(monkeypatch, capsys):
    from graphrnn.derive.encdec import EncDecDerivation

    real = EncDecDerivation.evaluate

    def off(self, run):
        got = real(self, run)
        got["dec.V"] = got["dec.V"] * 1.01
        return got

    monkeypatch.setattr(EncDecDerivation, "evaluate", off)
    assert main(["verify", "fig10_12_init", "--steps", "2,3"]) == 1
    captured = capsys.readouterr()
    assert "all agree\n" in captured.out  # the central differences pass ...
    assert "FAILED: fig10_12_init: the derived equations disagree" in captured.err  # ... the derivation does not


def test_run_an_encoder_decoder_on_data_from_a_file(tmp_path, capsys):
    model = zoo.load_encdec("fig10_12_init")
    data = model.random_inputs((2, 5), batch=3, seed=9)  # tau_x = 2, tau_y = 5: the file decides the steps
    np.savez(tmp_path / "data.npz", **data)
    out = tmp_path / "v.npz"
    assert main(["run", "fig10_12_init", "--data", str(tmp_path / "data.npz"), "-o", str(out)]) == 0
    ref = run_encdec(model, data, model.init_params(seed=0))
    with np.load(out, allow_pickle=False) as got:
        assert got["enc.h"].shape == (2, 5, 3) and got["dec.s"].shape == (5, 5, 3)
        assert float(got["loss"]) == ref.loss and np.array_equal(got["grad:enc.U"], ref.grads["enc.U"])
    capsys.readouterr()
    np.savez(tmp_path / "bad.npz", x=data["x"])  # no y: the runtime names what is missing
    line = _fails(["run", "fig10_12_init", "--data", str(tmp_path / "bad.npz")], capsys)
    assert line.startswith(f"graphrnn run: error: fig10_12_init, the data of --data {tmp_path / 'bad.npz'}: ")
    assert "'y'" in line
    np.savez(tmp_path / "tree.npz", x=np.zeros((3, 3, 1)), y=np.array([0]))  # 3 leaves for a tree of 4
    line = _fails(["run", "fig10_14", "--data", str(tmp_path / "tree.npz")], capsys)
    assert "fig10_14, the data of --data" in line and "4 leaves" in line


@pytest.mark.parametrize("command", ["run", "verify"])
def test_a_tree_for_a_recurrence_over_time_is_refused_with_what_to_give(command, capsys):
    assert main([command, "fig10_3", "--tree", "((1, 2), 3)"]) == 2
    err = capsys.readouterr().err
    assert f"graphrnn {command}: error: --tree is for recursive nets" in err and "give --steps T" in err


def test_a_commands_help_keeps_its_docstrings_lines(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    # the table of saved arrays keeps one entry per line, as the docstring writes it
    assert re.search(r"^\s+data:X\s+the data the run read", out, re.M), out
    assert re.search(r"^\s+param:W\s+the parameters$", out, re.M), out
