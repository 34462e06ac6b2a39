"""Folded and unfolded side by side (figs. 10.2, 10.3), the pair of fig. 10.6, figs. 10.7/10.8."""

from __future__ import annotations

import itertools

import pytest

import graphrnn as gr
from graphrnn.recurrence import Recurrence
from graphrnn.render import SEQUENCE_MODEL, draw_fold_unfold, draw_graphical_models, draw_teacher_forcing

M = "\u2212"


@pytest.mark.parametrize("arch", ["fig10_2", "fig10_3", "fig10_4"])
def test_fold_unfold_shows_both_joined_by_an_unfold_arrow(arch):
    d = draw_fold_unfold(gr.load(arch))
    s = d.scene
    assert s.find("h") is not None and s.find("h", "t") is not None
    assert ("h", "h", "W", 1) in s.connections() or ("o", "h", "W", 1) in s.connections()
    arrows = [e for e in s.edges if s.nodes[e.src].role == "arrow" and s.nodes[e.dst].role == "arrow"]
    assert len(arrows) == 1 and "Unfold" in arrows[0].label and "Unfold" in d.source
    # folded on the left, the arrow in the middle, unfolded on the right
    a = s.nodes[arrows[0].src]
    assert s.find("h").col < a.col < s.find("h", "t").col


def test_fold_unfold_rows_are_shared_by_both_halves():
    s = draw_fold_unfold(gr.load("fig10_3")).scene
    for v in "xhoLy":
        assert s.find(v).row == s.find(v, "t").row


def test_teacher_forcing_pair():
    s = draw_teacher_forcing(gr.load("fig10_6")).scene
    assert s.panels == {0: "Train time", 1: "Test time"}
    train, test = s.connections(panel=0), s.connections(panel=1)
    assert (f"y^(t{M}1)", "h^(t)", "W", 0) in train
    assert (f"o^(t{M}1)", "h^(t)", "W", 0) in test
    assert {t[0] for t in s.titles(panel=1) for _ in [0]} <= {"x", "h", "o"}
    assert not any(n.name in ("L", "y") for n in s.nodes.values() if n.panel == 1)
    assert not s.of_role("continuation")  # two steps, as printed


def test_teacher_forcing_needs_a_fed_back_output():
    with pytest.raises(gr.RenderError, match="feedback"):
        draw_teacher_forcing(gr.load("fig10_3"))


def test_graphical_models_count_their_parameters():
    d = draw_graphical_models(tau=5)
    info = d.scene.info
    assert info["table_parameters"] == 4 ** 5 - 1 == 1023
    assert info["rnn_parameters"] == Recurrence(SEQUENCE_MODEL).parameter_count
    assert "1,023" in d.source and f"{info['rnn_parameters']:,}" in d.source
    # the RNN's count does not grow with tau; the table's does, exponentially
    assert draw_graphical_models(tau=8).scene.info["rnn_parameters"] == info["rnn_parameters"]
    assert draw_graphical_models(tau=8).scene.info["table_parameters"] == 4 ** 8 - 1


def test_fig10_7_is_fully_connected_and_fig10_8_goes_through_h():
    s = draw_graphical_models(tau=5).scene
    full = s.connections(panel=0)
    for i, j in itertools.combinations(range(1, 6), 2):
        assert (f"y^({i})", f"y^({j})", None, 0) in full
    assert len([c for c in full if c[1] != "y^(...)"]) == 10
    through = s.connections(panel=1)
    for t in range(1, 5):
        assert {(f"y^({t})", f"h^({t})", None, 0), (f"h^({t})", f"h^({t + 1})", None, 0),
                (f"h^({t})", f"y^({t + 1})", None, 0)} <= through
    assert not any(a.startswith("y") and b.startswith("y") for a, b, _, _ in through)


def test_graphical_models_refuse_a_bad_tau():
    with pytest.raises(gr.RenderError):
        draw_graphical_models(tau=0)
