"""Holes found by mutation testing the recursive net (fig. 10.14), closed against finite differences.

``verify_tree``'s node checks (⟨∇h(n) L, u⟩ against central differences of the loss with h(n)
shifted) could be loosened to a 5% tolerance and no test noticed: a node gradient 1% wrong must make
the report fail at that node, while the parameters' rows stay green.  The node gradients themselves
are also checked here at every node of an unbalanced tree, along every coordinate, against central
differences of the run's own forward pass (``shift=``), independent of verify_tree.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphrnn as gr
from graphrnn.runtime.tree import RecursiveNet
from graphrnn.verify.tree import verify_tree

TREE = (((1, 2), 3), (4, (5, 6)))


@pytest.fixture(scope="module")
def rec():
    return gr.zoo.load_tree("fig10_14")


@pytest.mark.parametrize("node", ["h[1..2]", "h[5]", "h[1..6]"])
def test_verify_catches_a_node_gradient_one_percent_wrong(rec, node, monkeypatch):
    honest = RecursiveNet.run

    def skewed(self, *args, **kw):
        out = honest(self, *args, **kw)
        if node in out.node_grads:
            out.node_grads[node] = out.node_grads[node] * 1.01
        return out

    monkeypatch.setattr(RecursiveNet, "run", skewed)
    report = verify_tree(rec, TREE, batch=2)
    assert not report.ok
    failed = [row[0] for row in report.rows if not row[4]]
    assert failed == [f"⟨∇{node} L, u⟩"], report.text()


def test_every_node_gradient_against_central_differences(rec):
    data = rec.random_inputs(TREE, batch=2, seed=5)
    params = rec.init_params(seed=6)
    run = rec.run(TREE, data, params)
    eps = 1e-6
    checked = 0
    for key, g in run.node_grads.items():
        value = run.values.get(key)
        if value is None or np.ndim(value) != 2:
            continue
        num = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            d = np.zeros_like(value)
            d[idx] = eps
            up = rec.run(TREE, data, params, backward=False, shift={key: d}).loss
            down = rec.run(TREE, data, params, backward=False, shift={key: -d}).loss
            num[idx] = (up - down) / (2 * eps)
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9, err_msg=key)
        checked += 1
    assert checked == 11 + 1  # h at 6 leaves and 5 internal nodes, and o at the root
