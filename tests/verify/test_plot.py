"""Gradient norms back in time: vanishing below σ_max = 1, room to explode above (Pascanu et al. 2013)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from _deps import require

from graphrnn import zoo
from graphrnn.verify.check import VerifyError
from graphrnn.verify.plot import gradient_norms, plot_gradient_norms, recurrent_params


@pytest.mark.parametrize("arch, expected", [
    ("fig10_3", ("h", ("W",))),
    ("fig10_4", ("h", ("W",))),  # the recurrence goes through the output o
    ("fig10_11", ("h", ("W",))),
    ("lstm", ("h", ("Wf", "Wi", "Wq", "Wg"))),
])
def test_the_recurrent_matrix_is_found_on_the_folded_graph(arch, expected):
    assert recurrent_params(zoo.load(arch)) == expected


def test_a_spec_linked_only_through_data_has_no_matrix_to_rescale():
    with pytest.raises(VerifyError, match="no recurrent matrix"):
        recurrent_params(zoo.load("fig10_6"))


def test_below_one_the_gradient_vanishes_at_least_geometrically():
    g = gradient_norms("fig10_3", steps=20, sigma=0.5, batch=2)
    assert g.sigma == pytest.approx(0.5)
    assert list(g.lags) == list(range(20))
    bound = g.norms[0] * 0.5 ** g.lags
    assert np.all(g.norms <= bound * (1 + 1e-9))  # ‖∇h(t)‖ ≤ σ_max^(τ−t) ‖∇h(τ)‖ since tanh' ≤ 1
    assert g.norms[-1] < 1e-6 * g.norms[0]


def test_well_above_one_a_wide_layer_explodes():
    g = gradient_norms("fig10_3", steps=25, sigma=8.0, sizes={"H": 32}, batch=4)
    assert g.norms[-1] > 1e3 * g.norms[0]


def test_the_plot_is_written_as_a_png(tmp_path):
    require("matplotlib")
    path = tmp_path / "norms.png"
    fig = plot_gradient_norms("fig10_3", path, steps=12, batch=2)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert any("as initialised" in s for s in labels)
    assert any("below 1" in s for s in labels) and any("above 1" in s for s in labels)


def test_without_matplotlib_the_plot_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(VerifyError, match=r"pip install 'graphrnn\[plot\]'"):
        plot_gradient_norms("fig10_3", tmp_path / "x.png", steps=5)
