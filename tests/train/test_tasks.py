"""The generated tasks: their data as the papers define them, the grammar checked by enumeration,
and the architectures adapted to them."""

from __future__ import annotations

import numpy as np
import pytest

import graphrnn as gr
from graphrnn.train import Adding, Copy, Reber, Text, TrainError, make_task
from graphrnn.train.tasks import (
    embedded_reber_string, is_embedded_reber, is_reber, reber_check, reber_next, reber_string,
)


def test_adding_marks_one_number_in_each_half_and_targets_their_sum():
    T, B = 12, 50
    data = Adding(T=T).batch(np.random.default_rng(0), B)
    x, y = data["x"], data["y"]
    marks = x[:, 1, :]
    assert set(np.unique(marks)) == {0.0, 1.0}
    assert np.all(marks[: T // 2].sum(axis=0) == 1) and np.all(marks[T // 2:].sum(axis=0) == 1)
    np.testing.assert_allclose(y[-1, 0], (x[:, 0, :] * marks).sum(axis=0))
    assert np.all((x[:, 0] >= 0) & (x[:, 0] < 1))


def test_copy_shows_symbols_then_go_then_asks_for_them_back():
    task = Copy(n=3, delay=4, alphabet=5)
    data = task.batch(np.random.default_rng(1), 6)
    inputs = data["x"].argmax(axis=1)
    assert data["x"].shape == (task.T, task.classes, 6) and task.T == 10
    np.testing.assert_array_equal(data["y"][-3:], inputs[:3])  # recalled in order
    assert np.all(data["y"][:-3] == 0) and np.all(inputs[3:6] == 0)
    assert np.all(inputs[6] == task.alphabet + 1) and np.all(inputs[7:] == 0)
    assert np.all((inputs[:3] >= 1) & (inputs[:3] <= 5))


def _all_reber(max_len=12):
    """Every Reber string up to max_len, by breadth-first search over the grammar's graph (independent
    of reber_string's random walk)."""
    from graphrnn.train.tasks import _REBER

    out, frontier = [], [("", 0)]
    while frontier:
        nxt = []
        for s, state in frontier:
            for symbol, to in _REBER[state]:
                if to is None:
                    out.append(s + symbol)
                elif len(s) + 1 < max_len:
                    nxt.append((s + symbol, to))
        frontier = nxt
    return out


def test_reber_strings_are_grammatical_and_the_checker_rejects_corruptions():
    rng = np.random.default_rng(2)
    language = set(_all_reber(14))
    assert "BTXSE" in language and "BPVVE" in language and "BTSSXXTVVE" in language
    for _ in range(200):
        s = reber_string(rng)
        assert is_reber(s)
        if len(s) <= 13:
            assert s in language
        e = embedded_reber_string(rng)
        assert is_embedded_reber(e) and e[1] == e[-2]
        wrong = e[:-2] + ("P" if e[-2] == "T" else "T") + "E"  # the long-range dependency broken
        assert not is_embedded_reber(wrong)
    assert not is_reber("BTXSEE") and not is_reber("BTX")


def test_reber_next_agrees_with_the_enumerated_language():
    """After each prefix, the successors reber_next allows are those seen in the enumerated language
    (all of them for prefixes short enough that every continuation fits in the enumeration)."""
    strings = [f"B{b}{s}{b}E" for s in _all_reber(14) for b in "TP"]
    seen: dict[str, set] = {}
    for s in strings:
        for i in range(len(s)):
            seen.setdefault(s[:i], set()).add(s[i])
    for prefix, successors in seen.items():
        allowed, long_range = reber_next(prefix)
        assert successors <= allowed, prefix
        if len(prefix) <= 8:
            assert successors == allowed, prefix
        assert long_range == (len(prefix) > 2 and is_reber(prefix[2:])), prefix
    assert reber_next("BTBTSSXSETE") == ({"B"}, False)
    assert reber_next("BTBPX") == (set(), False)  # not a prefix of the grammar


def test_reber_score_counts_allowed_predictions():
    task = Reber(T=30)
    data = task.batch(np.random.default_rng(3), 4)
    y = data["y"]

    class Perfect:  # predicts the true next symbol: always allowed
        T = 30

        def stacked(self, name):
            o = np.zeros((30, 7, 4))
            o[np.arange(30)[:, None], y, np.arange(4)[None, :]] = 1
            return o

    score = task.score(Perfect(), data)
    assert score["allowed_accuracy"] == 1.0 and score["long_range_accuracy"] == 1.0


def test_text_builds_its_vocabulary_and_walks_tracks_in_order(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("hello world! " * 40, encoding="utf-8")
    task = Text.from_file(path, T=8)
    assert task.vocab == " !dehlorw"
    assert task.decode(task.encode("hello")) == "hello"
    first, second = task.chunk(0, 3), task.chunk(1, 3)
    # the second chunk of a track starts where the first ended (its last target is the next input)
    np.testing.assert_array_equal(second["x"][0].argmax(axis=0), first["y"][-1])
    data = task.batch(np.random.default_rng(0), 5)
    np.testing.assert_array_equal(data["x"][1:].argmax(axis=1), data["y"][:-1])
    with pytest.raises(TrainError, match="not in the text's vocabulary"):
        task.encode("xyz")
    with pytest.raises(TrainError, match="cannot read the text file"):
        Text.from_file(tmp_path / "missing.txt")
    with pytest.raises(TrainError, match="at least T"):
        Text(text="abc", T=10)


@pytest.mark.parametrize("arch", ["fig10_3", "lstm", "gru"])
def test_adding_keeps_the_cell_and_reads_the_sum_at_the_last_step(arch):
    rec = Adding(T=6).adapt(gr.load(arch))
    base = gr.load(arch)
    assert rec.variables["y"].rows == 1
    for name, eq in base.equations.items():
        if name != "L":
            assert rec.equations[name].text == eq.text
    # the loss is the mse of o at the last step against the sum, computed here by hand from the run's own o
    data = Adding(T=6).batch(np.random.default_rng(0), 3)
    params = rec.init_params(seed=1)
    run = rec.run(data, params=params, copies=False)
    o = run.values["o[6]"]
    assert run.program is not None  # the compiled fast path runs it
    assert run.loss == pytest.approx(float(np.sum((o[0] - data["y"][-1, 0]) ** 2)), rel=1e-12)
    # and its gradients are those of fig. 10.5's form, L[tau] = mse(o[tau], y[tau]), run on the engine
    tau = gr.Recurrence(rec.text.replace("input m: 1", "").replace(
        "L[t] = mse(m[t] * o[t], m[t] * y[t])", "L[tau] = mse(o[tau], y[tau])").replace(
        "o[t] = ", "o[tau] = ").replace("V @ h[t]", "V @ h[tau]"))
    ref = tau.run({"x": data["x"], "y": data["y"]}, params=params)
    assert ref.loss == pytest.approx(run.loss, rel=1e-12)
    for n in params:
        np.testing.assert_allclose(run.grads[n], ref.grads[n], rtol=1e-10, atol=1e-14, err_msg=n)


def test_class_tasks_resize_the_architecture():
    rec = Copy(n=2, delay=3, alphabet=6).adapt(gr.load("lstm", sizes={"H": 7}))
    assert rec.variables["x"].rows == 8 and rec.variables["y"].classes == 8 and rec.sizes["H"] == 7


def test_an_architecture_that_does_not_fit_is_refused_clearly():
    with pytest.raises(TrainError, match="also reads stop.*halt does not fit"):
        Reber().adapt(gr.load("halt"))
    with pytest.raises(TrainError, match="fig10_9 does not fit"):
        Copy().adapt(gr.load("fig10_9"))
    with pytest.raises(TrainError, match="o is recurrent"):
        Adding().adapt(gr.load("fig10_4"))
    with pytest.raises(TrainError, match="unknown task"):
        make_task("sorting")
    with pytest.raises(TrainError, match="--text FILE"):
        make_task("text")


def test_reber_feeds_back_its_own_symbols_when_the_spec_has_no_input():
    import graphrnn as gr
    from pathlib import Path

    task = Reber(T=20)
    rec = task.adapt(gr.Recurrence.from_file(Path(__file__).resolve().parents[2] / "examples" / "experiments" /
                                             "reber_fed.rnn"))
    assert task.fed and rec.variables["y"].classes == 7
    data = task.batch(np.random.default_rng(0), 3)
    assert set(data) == {"y"} and data["y"].shape == (20, 3)
    for b in range(3):  # y[0] (class 0) is the first B; y[1..] the rest of the stream
        assert reber_check("B" + task.decode(data["y"][:, b]))[0] == 21
