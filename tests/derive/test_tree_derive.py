"""Back-propagation through structure, derived (graphrnn/derive/tree.py): the equations as the book writes
them for fig. 10.14, and their numbers equal to the engine's backward pass over many tree shapes and specs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import graphrnn as gr
from graphrnn.derive import DeriveError
from graphrnn.derive import tree as T
from graphrnn.derive.rules import RULES
from graphrnn.derive.symbols import scale
from graphrnn.runtime.tree import RecursiveNet

REPO = Path(__file__).resolve().parents[2]

SHAPES = {
    "balanced": ((1, 2), (3, 4)),
    "chain": (1, (2, (3, (4, 5)))),
    "left chain": ((((1, 2), 3), 4), 5),
    "unbalanced": (((1, 2), 3), (4, (5, 6))),
    "permuted leaves": ((3, 1), (2, 4)),
    "pair": (1, 2),
    "single leaf": 1,
}

#: a gate at every place, a product of the two children (its terms read the sibling), a class target
GATED = """\
# a gated recursive net: gates at the leaves and at the nodes
size H = 3, I = 2, K = 4
input  x: I
target y: class K
hidden h: H
hidden g: H
g[leaf] = sigmoid(E @ x[leaf])
h[leaf] = g[leaf] * tanh(V @ x[leaf])
g[node] = sigmoid(bg + G @ h[left] - F @ h[right])
h[node] = g[node] * tanh(b + U @ h[left] + W @ h[right]) + (1 - g[node]) * (h[left] * h[right]) / 2
o = c + R @ h[root]
L = cross_entropy(o, y)
"""

#: two losses, a per-tree variable read by another, relu/exp/powers, a vector target
TWO_LOSSES = """\
# two losses on the root, through a chain of per-tree values
size H = 3, I = 2, Z = 2
input  x: I
target z: Z
hidden h: H
loss   L, M
h[leaf] = relu(V @ x[leaf] + e) - 0.5 * sigmoid(V @ x[leaf])
h[node] = tanh(b + U @ h[left] + W @ h[right]) + 0.25 * h[right]
o = c + R @ h[root]
q = tanh(o) * o
L = mse(q, z)
M = bce_with_logits(o ** 2 - exp(-o), sigmoid(z))
"""

#: h read at its own leaf by k, so a leaf's and an internal node's equations differ; k of a right child
#: has no path to the loss
MIXED = """\
# places that differ: a leaf's h has a reader at its own leaf, an internal node's does not
size H = 3, I = 2, K = 3
input  x: I
target y: class K
hidden h: H
hidden k: H
h[leaf] = tanh(V @ x[leaf])
k[leaf] = sigmoid(E @ h[leaf]) * h[leaf]
h[node] = tanh(b + U @ k[left] + W @ h[right])
k[node] = h[node] + 0.5 * h[left]
o = c + R @ k[root] + Q @ h[root]
L = cross_entropy(o, y)
"""


@pytest.fixture(scope="module")
def fig10_14():
    return gr.zoo.load_tree("fig10_14")


def _run(rec, tree, batch, seed=0):
    data = rec.random_inputs(tree, batch=batch, seed=seed)
    params = rec.init_params(seed=seed + 1)
    return rec.run(tree, data, params), data, params


def _close(got, ref, what):
    """Equal to 1e-10 relative to the largest entry (a tiny entry is held to the same absolute error)."""
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, f"{what}: shape {got.shape}, the engine's {ref.shape}"
    scale_ = max(float(np.max(np.abs(ref))), 1e-300)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10 * scale_, err_msg=what)


def _assert_equal_to_engine(rec, tree, batch, seed=0):
    run, data, params = _run(rec, tree, batch, seed)
    got = T.derive_tree(rec).evaluate(run, data, params)
    assert set(run.node_grads) <= set(got), set(run.node_grads) - set(got)
    for key in set(got) - set(run.node_grads) - set(run.grads):  # the engine skips what has no path to the loss
        assert not np.any(got[key]), f"∇{key}: the engine found no path to the loss, the derivation {got[key]}"
    for key, ref in run.node_grads.items():
        _close(got[key], ref, f"∇{key}")
    for p, ref in run.grads.items():
        _close(got[p], ref, f"∇{p}")
    for p, per in run.copy_grads.items():
        assert set(per) <= set(got.copies[p]), (p, set(got.copies[p]), set(per))
        for at in set(got.copies[p]) - set(per):
            assert not np.any(got.copies[p][at]), f"∇{p}^({at}): no path to the loss, yet not zero"
        for at, ref in per.items():
            _close(got.copies[p][at], ref, f"∇{p}^({at})")
    return got


# ------------------------------------------------------------------------------ the numbers


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_fig10_14_equals_the_engine_on_every_tree_shape(fig10_14, shape, batch):
    _assert_equal_to_engine(fig10_14, SHAPES[shape], batch, seed=batch)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_gated_spec_with_a_product_of_the_children_equals_the_engine(shape):
    rec = RecursiveNet(GATED, name="gated")
    _assert_equal_to_engine(rec, SHAPES[shape], batch=2, seed=4)


@pytest.mark.parametrize("shape", ["balanced", "chain", "unbalanced", "single leaf"])
def test_two_losses_and_a_chain_of_root_values_equal_the_engine(shape):
    rec = RecursiveNet(TWO_LOSSES, name="two_losses")
    got = _assert_equal_to_engine(rec, SHAPES[shape], batch=3, seed=7)
    assert got["L"] == 1.0 and got["M"] == 1.0


@pytest.mark.parametrize("shape", list(SHAPES))
def test_places_with_different_readers_and_no_path_equal_the_engine(shape):
    _assert_equal_to_engine(RecursiveNet(MIXED, name="mixed"), SHAPES[shape], batch=2, seed=5)


def test_places_with_different_readers_are_separate_cases():
    d = T.derive_tree(RecursiveNet(MIXED, name="mixed"))
    k_eqs = [eq.text() for eq in d.for_variable("k")]
    assert k_eqs[2] == "∇k(n) L = 0    if n is the right child of p    (no equation reads it there: no path to the loss)"
    h_eqs = [eq.text() for eq in d.for_variable("h")]
    assert len(h_eqs) == 6
    assert h_eqs[1] == "∇h(n) L = ∇k(n) L + Qᵀ ∇o L    if n is the root (n an internal node)"
    assert h_eqs[0].endswith("if n is the root (n a leaf)") and h_eqs[0].startswith("∇h(n) L = Eᵀ diag(σ(E h(n))")
    assert d.equation_for("h", "leaf", "right").text() == h_eqs[4]


def test_a_networkx_tree_gives_the_same_gradients(fig10_14):
    import networkx as nx

    g = nx.DiGraph([("r", "a"), ("r", "b"), ("a", "x1"), ("a", "x2"), ("b", "x3"), ("b", "x4")])
    for i, leaf in enumerate(("x1", "x2", "x3", "x4"), start=1):
        g.nodes[leaf]["leaf"] = i
    _assert_equal_to_engine(fig10_14, g, batch=2)


def test_the_copies_add_up_to_the_parameter(fig10_14):
    run, data, params = _run(fig10_14, SHAPES["unbalanced"], 2)
    got = T.derive_tree(fig10_14).evaluate(run, data, params)
    for p in ("U", "W", "V", "b"):
        np.testing.assert_allclose(sum(got.copies[p].values()), got[p], rtol=1e-12, atol=1e-15)
    assert sorted(got.copies["U"]) == sorted(run.tree.internal)
    assert sorted(got.copies["V"]) == sorted(run.tree.leaves)


# ------------------------------------------------------------------------------ the equations


def test_fig10_14_reads_like_the_book(fig10_14):
    d = T.derive_tree(fig10_14)
    lines = [eq.text() for eq in d.equations if eq.shown]
    assert lines[:5] == [
        "∂L/∂L = 1",
        "∇o L = ŷ − 1_{y}",
        "∇h(n) L = Rᵀ ∇o L    if n is the root",
        "∇h(n) L = Uᵀ diag(1 − (h(p))²) ∇h(p) L    if n is the left child of p",
        "∇h(n) L = Wᵀ diag(1 − (h(p))²) ∇h(p) L    if n is the right child of p",
    ]
    params = {eq.name: eq.text() for eq in d.equations if eq.kind == "parameter"}
    assert params["U"] == "∇U L = Σ_{internal n} diag(1 − (h(n))²) ∇h(n) L h(left(n))ᵀ"
    assert params["W"] == "∇W L = Σ_{internal n} diag(1 − (h(n))²) ∇h(n) L h(right(n))ᵀ"
    assert params["V"] == "∇V L = Σ_{leaves n} diag(1 − (h(n))²) ∇h(n) L x(n)ᵀ"
    assert params["b"] == "∇b L = Σ_{internal n} diag(1 − (h(n))²) ∇h(n) L"
    assert params["R"] == "∇R L = ∇o L h(root)ᵀ" and params["c"] == "∇c L = ∇o L"
    copies = [eq.text() for eq in d.equations if eq.kind == "copy" and eq.shown]
    assert "∇U(n) L = diag(1 − (h(n))²) ∇h(n) L h(left(n))ᵀ    for each internal node n" in copies
    assert "∇V(n) L = diag(1 − (h(n))²) ∇h(n) L x(n)ᵀ    for each leaf n" in copies
    assert not any(c.startswith("∇c") for c in copies)  # c is used once, at the root: its copy is itself
    assert d.equation_for("h", "leaf", "left").text() == lines[3]
    assert d.equation_for("h", "node", "root").text() == lines[2]


def test_the_full_text_latex_and_markdown(fig10_14):
    d = T.derive_tree(fig10_14)
    text = d.text()
    assert text.startswith("fig10_14: Fig. 10.14")
    assert "  h[node] = tanh(b + U @ h[left] + W @ h[right])" in text
    assert re.search(r"\( 4\)  ∇h\(n\) L = Uᵀ .* if n is the left child of p", text)
    assert "where p is n's parent" in text and "ŷ = softmax(o)" in text
    tex = d.latex()
    assert tex.startswith("\\begin{align}") and tex.endswith("\\end{align}")
    assert ("\\nabla_{\\boldsymbol{h}^{(n)}} L &= \\boldsymbol{U}^\\top \\operatorname{diag}\\left(1 - \\left("
            "\\boldsymbol{h}^{(p)}\\right)^{2}\\right) \\nabla_{\\boldsymbol{h}^{(p)}} L && \\text{if $n$ is the left "
            "child of $p$} \\tag{4}") in tex
    assert "\\sum_{\\text{internal } n}" in tex and "\\boldsymbol{h}^{(\\mathrm{left}(n))\\top}" in tex
    assert tex.count("\\tag{") == 11 and tex.count("{") == tex.count("}")
    md = d.markdown()
    assert md.count("$$") == 2 * (11 + 4)  # 11 numbered equations, 4 copies (V, b, U, W)
    assert "```\nh[leaf] = tanh(V @ x[leaf])" in md
    assert T.render("fig10_14", "latex") == tex + "\n"
    assert T.render(fig10_14) == text + "\n"


def test_the_gated_spec_shows_its_cases():
    d = T.derive_tree(RecursiveNet(GATED, name="gated"))
    g_eqs = [eq.text() for eq in d.for_variable("g")]
    # g is read only by h at its own node: one equation per place (leaf, internal)
    assert g_eqs == [
        "∇g(n) L = diag(tanh(V x(n))) ∇h(n) L    for every leaf n",
        "∇g(n) L = diag(tanh(b + U h(left(n)) + W h(right(n))) − (1/2) h(left(n)) ⊙ h(right(n))) ∇h(n) L    "
        "for every internal node n",
    ]
    h_eqs = [eq.text() for eq in d.for_variable("h")]
    assert len(h_eqs) == 3
    left, right = h_eqs[1], h_eqs[2]
    assert left.endswith("if n is the left child of p") and right.endswith("if n is the right child of p")
    assert "h(right(p))" in left and "Gᵀ" in left and "−Fᵀ" not in left
    assert "h(left(p))" in right and "−Fᵀ" in right and "Uᵀ" not in right


def test_bad_input_is_a_clear_error(fig10_14):
    d = T.derive_tree(fig10_14)
    run, data, params = _run(fig10_14, (1, 2), 1)
    # a run keeps what it read: evaluate(run) alone gives the same numbers as with the data and parameters
    alone, given = d.evaluate(run), d.evaluate(run, data, params)
    assert alone.keys() == given.keys() and all(np.array_equal(alone[k], given[k]) for k in given)
    with pytest.raises(DeriveError, match="parameter.*U"):
        d.evaluate(run, data, {k: v for k, v in params.items() if k != "U"})
    with pytest.raises(DeriveError, match="format must be"):
        T.render("fig10_14", "html")
    with pytest.raises(DeriveError, match="no loss"):
        T.derive_tree(RecursiveNet("size H = 2, I = 2\ninput x: I\nhidden h: H\nh[leaf] = tanh(V @ x[leaf])\n"
                                   "h[node] = tanh(U @ h[left] + W @ h[right])\n", name="lossless"))
    with pytest.raises(DeriveError, match="'Q' has no derived equation"):
        d.for_variable("Q")


def test_the_docs_show_the_derived_equations(fig10_14):
    page = (REPO / "docs" / "recursive.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- derived: fig10_14 -->\n```text\n(.*?)```\n", page, re.S)
    assert block, "docs/recursive.md lost its block of derived equations"
    assert block.group(1) == T.render("fig10_14"), "regenerate it with graphrnn.derive.tree.render('fig10_14')"


# ------------------------------------------------------------------------------ mutations: these tests can fail


def _differs(rec, tree):
    try:
        _assert_equal_to_engine(rec, tree, batch=2)
    except AssertionError:
        return True
    return False


@pytest.mark.parametrize("op", ["tanh", "@", "cross_entropy", "+"])
def test_a_rule_one_percent_wrong_is_caught(fig10_14, monkeypatch, op):
    honest = RULES[op]

    def wrong(args, out, g, info):
        grads = honest(args, out, g, info)
        return (scale(1.01, grads[0]),) + tuple(grads[1:])

    assert not _differs(fig10_14, SHAPES["unbalanced"])
    monkeypatch.setitem(RULES, op, wrong)
    assert _differs(fig10_14, SHAPES["unbalanced"])


def test_left_and_right_children_swapped_are_caught(fig10_14, monkeypatch):
    honest = T._Builder.case_terms
    swap = {"left": "right", "right": "left", "root": "root"}
    monkeypatch.setattr(T._Builder, "case_terms", lambda self, name, kind, pos: honest(self, name, kind, swap[pos]))
    assert _differs(fig10_14, SHAPES["balanced"])


def test_the_sibling_read_wrong_is_caught(monkeypatch):
    # fig. 10.14's terms read only the parent; the gated spec's h[left] * h[right] reads the sibling
    rec = RecursiveNet(GATED, name="gated")
    assert not _differs(rec, SHAPES["balanced"])
    monkeypatch.setitem(T._FROM_CHILD, "left", {**T._FROM_CHILD["left"], T.RIGHT: T.Place("left(p)")})
    assert _differs(rec, SHAPES["balanced"])


def test_a_gate_rule_one_percent_wrong_is_caught(monkeypatch):
    rec = RecursiveNet(GATED, name="gated")
    honest = RULES["sigmoid"]
    monkeypatch.setitem(RULES, "sigmoid", lambda a, o, g, i: tuple(scale(1.01, x) for x in honest(a, o, g, i)))
    assert _differs(rec, SHAPES["chain"])


def test_where_no_gradient_flows_it_says_so():
    hard = GATED.replace("W @ h[right])", "W @ one_hot(argmax(h[right])))").replace("size H = 3, I = 2, K = 4",
                                                                                   "size H = 3, I = 2, K = 3")
    d = T.derive_tree(RecursiveNet(hard, name="hard"))
    assert d.remarks == ["one_hot(...) in the equation of h[node]: a class label: no gradient"]
    assert "no gradient:\n  one_hot(...) in the equation of h[node]" in d.text()
    assert "∇W L = Σ_{internal n} " in d.text() and "1_{argmax(h(right(n)))}ᵀ" in d.text()
    # and numerically: the engine's run of the argmax net equals the derived equations
    _assert_equal_to_engine(RecursiveNet(hard, name="hard"), SHAPES["balanced"], batch=2)
    assert "Wᵀ" not in d.equation_for("h", "leaf", "right").text()


def test_the_docs_example_runs_and_agrees_with_the_engine():
    page = (REPO / "docs" / "recursive.md").read_text(encoding="utf-8")
    code = next(b for b in re.findall(r"```python\n(.*?)```", page, re.S) if "derive_tree" in b)
    scope: dict = {}
    exec(compile(code, "docs/recursive.md", "exec"), scope)  # noqa: S102 - our own documentation
    run, grads = scope["run"], scope["grads"]
    assert scope["text"] == T.render("fig10_14").rstrip("\n")
    assert scope["tex"].startswith("\\begin{align}") and "$$" in scope["md"]
    for key in ("h[1..2]", "h[3]", "o"):
        _close(grads[key], run.node_grads[key], key)
    _close(grads["W"], run.grads["W"], "W")
    _close(grads.copies["W"]["1..2"], run.copy_grads["W"]["1..2"], "W^(1..2)")
