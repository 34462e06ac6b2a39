"""Running a recursive network (fig. 10.14) on the engine: against PyTorch, central differences,
one tree at a time, and with bad data."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

import graphrnn as gr
from _deps import require
from graphrnn.errors import DataError
from graphrnn.runtime.tree import run_forest, run_tree
from graphrnn.verify.tree import verify_tree

TREES = [((1, 2), (3, 4)), (((1, 2), 3), (4, (5, 6))), (1, 2), 1]


@pytest.fixture(scope="module")
def rec():
    return gr.zoo.load_tree("fig10_14")


def _torch_recursive(torch, P, x, y, tree):
    """Fig. 10.14 written out in PyTorch, from the book: leaf i: tanh(V x(i)); node: tanh(b + U left + W right);
    o = c + R h(root); L = -log softmax(o)[y], summed over the batch."""
    def h(t):
        if isinstance(t, tuple):
            return torch.tanh(P["b"] + P["U"] @ h(t[0]) + P["W"] @ h(t[1]))
        return torch.tanh(P["V"] @ x[t - 1])
    o = P["c"] + P["R"] @ h(tree)
    return -torch.log_softmax(o, dim=0).gather(0, y.view(1, -1)).sum()


@pytest.mark.parametrize("tree", TREES)
@pytest.mark.parametrize("batch", [1, 3])
def test_loss_and_gradients_match_pytorch(rec, tree, batch):
    torch = require("torch")
    data = rec.random_inputs(tree, batch=batch, seed=7)
    params = rec.init_params(seed=8)
    run = rec.run(tree, data, params)
    P = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    loss = _torch_recursive(torch, P, torch.tensor(data["x"]), torch.tensor(data["y"]), tree)
    loss.backward()
    assert run.loss == pytest.approx(loss.item(), rel=1e-12)
    for k in P:
        expected = P[k].grad.numpy() if P[k].grad is not None else np.zeros(P[k].shape)
        np.testing.assert_allclose(run.grads[k], expected, rtol=1e-10, atol=1e-13, err_msg=k)


def test_a_permuted_tree_reads_each_leafs_own_input(rec):
    torch = require("torch")
    tree = ((3, 1), (4, 2))
    data = rec.random_inputs(tree, batch=2, seed=1)
    params = rec.init_params(seed=2)
    P = {k: torch.tensor(v) for k, v in params.items()}
    ref = _torch_recursive(torch, P, torch.tensor(data["x"]), torch.tensor(data["y"]), tree)
    assert rec.run(tree, data, params).loss == pytest.approx(ref.item(), rel=1e-12)
    assert rec.run(((1, 2), (3, 4)), data, params).loss != pytest.approx(ref.item(), rel=1e-6)


@pytest.mark.parametrize("tree", TREES[:3])
def test_verify_passes_central_differences_and_node_checks(rec, tree):
    report = verify_tree(rec, tree, batch=2, seed=3)
    assert report.ok, report.text()
    assert any("⟨∇h[1] L" in r[0] for r in report.rows)
    assert report.worst < 1e-6


def test_a_batch_is_the_sum_of_its_trees_run_alone(rec):
    tree = ((1, 2), (3, (4, 5)))
    data = rec.random_inputs(tree, batch=3, seed=4)
    params = rec.init_params(seed=5)
    whole = rec.run(tree, data, params)
    alone = [rec.run(tree, {"x": data["x"][:, :, b:b + 1], "y": data["y"][b:b + 1]}, params) for b in range(3)]
    assert whole.loss == pytest.approx(sum(r.loss for r in alone), rel=1e-12)
    for k in params:
        np.testing.assert_allclose(whole.grads[k], sum(r.grads[k] for r in alone), rtol=1e-12, atol=1e-15)


def test_trees_of_different_shapes_run_as_a_forest(rec):
    trees = [((1, 2), (3, 4)), (1, (2, 3))]
    data = [rec.random_inputs(t, batch=2, seed=i) for i, t in enumerate(trees)]
    params = rec.init_params(seed=6)
    forest = run_forest(rec, trees, data, params)
    runs = [rec.run(t, d, params) for t, d in zip(trees, data)]
    assert forest.loss == pytest.approx(sum(r.loss for r in runs), rel=1e-12)
    for k in params:
        np.testing.assert_allclose(forest.grads[k], sum(r.grads[k] for r in runs), rtol=1e-12)
    assert forest.batch == 4 and len(forest.parts) == 2


def test_a_networkx_tree_runs_like_its_nested_pairs(rec):
    g = nx.DiGraph([("r", "a"), ("r", "b"), ("a", 1), ("a", 2), ("b", 3), ("b", 4)])
    data = rec.random_inputs(((1, 2), (3, 4)), batch=2)
    assert rec.run(g, data).loss == rec.run(((1, 2), (3, 4)), data).loss


def test_the_dummy_copies_add_up_and_each_node_has_its_own(rec):
    tree = ((1, 2), (3, 4))
    run = rec.run(tree, rec.random_inputs(tree, batch=2), rec.init_params())
    assert sorted(run.copy_grads["U"]) == ["1..2", "1..4", "3..4"]
    assert sorted(run.copy_grads["V"]) == ["1", "2", "3", "4"]
    assert sorted(run.copy_grads["R"]) == ["root"]
    for p, shares in run.copy_grads.items():
        np.testing.assert_allclose(sum(shares.values()), run.grads[p], rtol=1e-12, atol=1e-15)
    assert set(run.node_grads) >= {"h[1]", "h[1..2]", "h[1..4]", "o"}


def test_a_forward_only_run_has_values_and_no_gradients(rec):
    tree = (1, 2)
    run = rec.run(tree, rec.random_inputs(tree), backward=False)
    assert run.grads == {} and run.loss is not None and run.values["h[1..2]"].shape == (4, 1)


@pytest.mark.parametrize("data,match", [
    ({"y": np.array([0])}, "no data for the input x"),
    ({"x": np.zeros((3, 3, 1)), "y": np.array([0])}, r"\(4, 3, B\) for a tree of 4 leaves"),
    ({"x": np.zeros((4, 3, 2)), "y": np.array([0])}, "batch of 1, the inputs 2"),
    ({"x": np.zeros((4, 3, 1)), "y": np.array([5])}, "outside 0..2"),
    ({"x": np.full((4, 3, 1), np.nan), "y": np.array([0])}, "finite"),
    ({"x": np.zeros((4, 3, 1))}, "no data for the target y"),
])
def test_bad_data_is_a_data_error(rec, data, match):
    with pytest.raises(DataError, match=match):
        rec.run(((1, 2), (3, 4)), data)


def test_a_wrong_parameter_shape_is_a_data_error(rec):
    tree = (1, 2)
    params = rec.init_params()
    params["W"] = params["W"][:, :2]
    with pytest.raises(DataError, match=r"W must have shape \(4, 4\)"):
        run_tree(rec, tree, rec.random_inputs(tree), params)


GATED = """\
# a recursive net with a gate at each node and a vector target, to exercise the rest of the notation
size H = 3, I = 2, Z = 2
input  x: I
target z: Z
hidden h: H
hidden a: H
loss   L, M
h[leaf] = relu(V @ x[leaf] + e) - 0.5 * sigmoid(V @ x[leaf])
a[node] = sigmoid(bg + G @ h[left] + F @ h[right])
h[node] = a[node] * tanh(b + U @ h[left] + W @ h[right]) + (1 - a[node]) * h[left] / 2
o = c + R @ h[root]
L = mse(o, z)
M = bce_with_logits(o ** 2 - exp(-o), sigmoid(z))
"""


def test_gates_several_losses_mse_and_bce_match_pytorch():
    torch = require("torch")
    from graphrnn.runtime.tree import RecursiveNet
    rec = RecursiveNet(GATED, name="gated")
    tree = ((1, (2, 3)), 4)
    data = rec.random_inputs(tree, batch=3, seed=2)
    params = rec.init_params(seed=3)
    run = rec.run(tree, data, params)
    P = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    x, z = torch.tensor(data["x"]), torch.tensor(data["z"])

    def h(t):
        if not isinstance(t, tuple):
            v = P["V"] @ x[t - 1]
            return torch.relu(v + P["e"]) - 0.5 * torch.sigmoid(v)
        left, right = h(t[0]), h(t[1])
        a = torch.sigmoid(P["bg"] + P["G"] @ left + P["F"] @ right)
        return a * torch.tanh(P["b"] + P["U"] @ left + P["W"] @ right) + (1 - a) * left / 2
    o = P["c"] + P["R"] @ h(tree)
    L = ((o - z) ** 2).mean(dim=0).sum()  # the mean over a column's entries, summed over the batch
    M = torch.nn.functional.binary_cross_entropy_with_logits(o ** 2 - torch.exp(-o), torch.sigmoid(z),
                                                             reduction="sum")
    (L + M).backward()
    assert run.loss == pytest.approx((L + M).item(), rel=1e-12)
    assert run.values["L"] == pytest.approx(L.item(), rel=1e-12)
    for k in P:
        np.testing.assert_allclose(run.grads[k], P[k].grad.numpy(), rtol=1e-10, atol=1e-13, err_msg=k)
    assert verify_tree(rec, tree, batch=2).ok


def test_a_root_that_reads_what_its_place_does_not_define_is_a_data_error():
    from graphrnn.runtime.tree import RecursiveNet
    rec = RecursiveNet(GATED.replace("o = c + R @ h[root]", "o = c + R @ a[root]"), name="gated")
    with pytest.raises(DataError, match=r"root of this tree is a leaf.*a\[leaf\]"):
        rec.run(1, {"x": np.zeros((1, 2, 1)), "z": np.zeros((2, 1))})
    assert rec.run((1, 2), rec.random_inputs((1, 2))).loss is not None


def test_verify_catches_a_gradient_one_percent_wrong(rec, monkeypatch):
    from graphrnn.runtime.tree import RecursiveNet
    honest = RecursiveNet.run

    def skewed(self, *args, **kw):
        out = honest(self, *args, **kw)
        if out.grads:
            out.grads["W"] = out.grads["W"] * 1.01
        return out
    monkeypatch.setattr(RecursiveNet, "run", skewed)
    report = verify_tree(rec, ((1, 2), (3, 4)))
    assert not report.ok
    failed = [r[0] for r in report.rows if not r[4]]
    assert failed == ["∇W L (central differences)", "Σ_nodes ∇W^(node) L (3 copies)"]
    assert "2 FAILED" in report.text()


def test_the_verify_module_runs_from_the_command_line(capsys):
    from graphrnn.verify.tree import main
    assert main(["fig10_14", "--tree", "(((1, 2), 3), (4, 5))", "--batch", "3"]) == 0
    out = capsys.readouterr().out
    assert "fig10_14 over the tree (((1, 2), 3), (4, 5)) (5 leaves, depth 3)" in out and "all passed" in out
    assert main(["fig10_14", "--tree", "((1, 2), (3"]) == 2
    assert "nested pairs" in capsys.readouterr().out
    assert main(["nothere"]) == 2
