"""Likely mistakes get a clear answer (issue 13, part 5): a variable no loss depends on, a parameter
named like another, a spec too large to read, and how `show` describes a same-step gate."""

from __future__ import annotations

import warnings

import pytest

import graphrnn as gr
from graphrnn import zoo
from graphrnn.cli import main
from graphrnn.recurrence.recurrence import _near_duplicate_pairs, _near_duplicates
from graphrnn.recurrence import spec as spec_module
from graphrnn.recurrence.spec import MAX_STATEMENTS, MAX_TEXT

RNN = """size H = 3
input x: 2
target y: class 2
state h: H
h[t] = tanh(b + W @ h[t-1] + U @ x[t])
o[t] = c + V @ h[t]
L[t] = cross_entropy(o[t], y[t])
"""


def build(text):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = gr.Recurrence(text)
    return rec, [w for w in caught if issubclass(w.category, gr.GraphrnnWarning)]


def test_the_zoo_and_a_plain_rnn_give_no_warning():
    for name in zoo.names():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            gr.load(name)
    assert build(RNN)[1] == []


def test_a_variable_no_loss_depends_on_is_a_warning_naming_it_and_its_line():
    rec, got = build(RNN + "z[t] = A @ h[t]\nstate z: 2\n")
    (w,) = got
    assert w.category is gr.UnusedWarning and issubclass(w.category, UserWarning)
    assert "no loss (L) depends on z (line 8)" in str(w.message) and "remove it" in str(w.message)
    rec, got = build(RNN.replace("input x: 2", "input x: 2\ninput u: 4"))
    assert "input u (line 3)" in str(got[0].message)


def test_no_unused_warning_without_a_loss_or_for_what_only_free_running_reads():
    assert build("input x: 2\nstate h: 3\nh[t] = tanh(W @ h[t-1] + U @ x[t])\n")[1] == []  # forward only
    fed = RNN.replace("o[t] = c + V @ h[t]", "o[t] = c + V @ h[t]\np[t] = softmax(o[t])")
    fed += "feedback y[t] = sample(p[t])\n"
    fed = fed.replace("U @ x[t])", "U @ x[t] + R @ one_hot(y[t-1]))")
    assert build(fed)[1] == []  # p feeds the loss in free-running mode


@pytest.mark.parametrize("old, new, odd, like", [
    ("b + W", "bb + W", "bb", "b"),
    ("U @ x[t])", "U @ x[t] + Ww @ h[t-1])", "Ww", "W"),
    ("c + V", "c + Vl @ h[t] + V1", "V1", "Vl"),
])
def test_a_parameter_named_like_another_is_a_warning_with_did_you_mean(old, new, odd, like):
    text = RNN.replace(old, new)
    if odd == "bb":
        text = text.replace("tanh(bb", "tanh(b + bb")
    rec, got = build(text)
    (w,) = [w for w in got if w.category is gr.NameWarning]
    assert f"parameter {odd!r}" in str(w.message) and f"did you mean {like}?" in str(w.message)


def test_a_misspelt_parameter_whose_shape_cannot_be_found_says_did_you_mean():
    with pytest.raises(gr.SpecError, match=r"parameter 'Vv'.*did you mean V\?"):
        build(RNN.replace("o[t] = c + V @ h[t]", "o[t] = c + V @ h[t]\nz[t] = Vv @ h[t]"))


def test_names_that_mean_something_are_not_near_duplicates():
    for a, b in [("b", "c"), ("W1", "W2"), ("W1", "W11"), ("Uf", "Ui"), ("bias_f", "bias_i"), ("b", "bf"),
                 ("Wxh", "Whx"), ("b2", "b")]:
        assert not _near_duplicates(a, b), (a, b)
    for a, b in [("b", "bb"), ("W", "Ww"), ("W1", "Wl"), ("b0", "bO"), ("Wx", "WX"), ("Wgate", "Wgat")]:
        assert _near_duplicates(a, b), (a, b)
    names = [f"W{i}" for i in range(3000)] + ["Wgate", "Wgat"]
    assert sorted(map(sorted, _near_duplicate_pairs(names))) == [["Wgat", "Wgate"]]


def test_a_spec_too_large_is_refused_before_anything_is_parsed(monkeypatch):
    many = "input x: 2\nstate h0: 2\nh0[t] = tanh(W @ h0[t-1] + U @ x[t])\n" + "".join(
        f"h{i}[t] = tanh(W @ h{i - 1}[t])\n" for i in range(1, 225_000))
    fewer = "# many\n\n" + "\n".join(many.splitlines()[:MAX_STATEMENTS + 5])
    assert len(fewer) < MAX_TEXT

    def no_parsing(*args, **kwargs):
        raise AssertionError("an equation was parsed before the size was checked")

    monkeypatch.setattr(spec_module, "parse_equation", no_parsing)  # the time goes there (about 1 ms each)
    with pytest.raises(gr.SpecError, match=r"characters long; at most 1,000,000"):
        gr.Recurrence(many)
    with pytest.raises(gr.SpecError, match=r"more than 10,000 statements \(line 10003 is number 10,001"):
        gr.Recurrence(fewer)
    monkeypatch.undo()
    assert len(gr.Recurrence("\n".join(many.splitlines()[:200])).equations) == 198


def test_show_gives_the_initial_value_only_of_variables_read_at_another_step(capsys):
    text = gr.load("lstm").describe()
    lines = {line.split()[0]: line for line in text.split("variables:")[1].split("parameters:")[0].splitlines()
             if line.strip()}
    assert "outside the steps: zero" in lines["h"] and "outside the steps: zero" in lines["s"]
    for gate in "fiqgo":
        assert "outside the steps" not in lines[gate], lines[gate]
    assert main(["show", "fig10_4"]) == 0
    out = capsys.readouterr().out
    assert "o          computed  4 x B, outside the steps: zero" in out
    assert "h          computed  5 x B\n" in out
