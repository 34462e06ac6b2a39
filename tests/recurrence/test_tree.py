"""The notation of recursive networks (§10.6, fig. 10.14): trees, parsing, errors, the unrolled DAG."""

from __future__ import annotations

import networkx as nx
import pytest

import graphrnn as gr
from graphrnn.errors import DataError, SpecError
from graphrnn.recurrence.tree import Tree, TreeRecurrence

GOOD = """\
size H = 3, I = 2, K = 2
input  x: I
target y: class K
hidden h: H
loss   L
h[leaf] = tanh(V @ x[leaf])
h[node] = tanh(b + U @ h[left] + W @ h[right])
o = c + R @ h[root]
L = cross_entropy(o, y)
"""


def test_the_books_tree_has_four_leaves_three_internal_nodes_and_depth_two():
    t = Tree.of(((1, 2), (3, 4)))
    assert t.leaves == ["1", "2", "3", "4"]
    assert t.internal == ["1..2", "3..4", "1..4"]
    assert t.children["1..4"] == ("1..2", "3..4")
    assert t.root == "1..4" and t.depth == 2


def test_a_chain_is_a_tree_of_depth_n_minus_one_and_a_balanced_tree_of_depth_log_n():
    chain = 1
    for i in range(2, 17):
        chain = (chain, i)
    assert Tree.of(chain).depth == 15

    def balanced(lo, hi):
        return lo if lo == hi else (balanced(lo, (lo + hi) // 2), balanced((lo + hi) // 2 + 1, hi))
    assert Tree.of(balanced(1, 16)).depth == 4  # O(log τ), §10.6


def test_leaves_that_are_numbers_name_the_input_they_read():
    t = Tree.of(((3, 1), (2, 4)))
    assert [t.leaf_input[k] for k in t.leaves] == [3, 1, 2, 4]
    assert t.root == "3..4"


def test_leaves_that_are_words_are_numbered_left_to_right():
    t = Tree.of((("the", "cat"), "sat"))
    assert t.leaves == ["1", "2", "3"] and t.nested == ((1, 2), 3)


def test_a_networkx_tree_is_read_with_children_in_insertion_order():
    g = nx.DiGraph()
    g.add_edges_from([("s", "np"), ("s", "vp"), ("np", 1), ("np", 2), ("vp", 3), ("vp", 4)])
    assert Tree.of(g).nested == ((1, 2), (3, 4))
    assert Tree.of(g.reverse()).nested == ((1, 2), (3, 4))  # child -> parent edges too


def test_a_networkx_tree_may_name_each_leafs_input():
    g = nx.DiGraph()
    g.add_edges_from([("r", "a"), ("r", "b")])
    g.nodes["a"]["leaf"] = 2
    g.nodes["b"]["leaf"] = 1
    assert Tree.of(g).nested == (2, 1)


@pytest.mark.parametrize("tree,match", [
    ((1, 2, 3), "two children"),
    (((1, 2), (2, 3)), "leaf 2 appears more than once"),
    (((1, 2), (3, 5)), r"1\.\.4 each once"),
])
def test_bad_trees_are_data_errors(tree, match):
    with pytest.raises(DataError, match=match):
        Tree.of(tree)


def test_a_graph_that_is_not_a_tree_is_refused():
    g = nx.DiGraph([(1, 2), (2, 3), (3, 1)])
    with pytest.raises(DataError, match="not a tree"):
        Tree.of(g)


def test_a_deep_tree_does_not_hit_the_recursion_limit():
    chain = 1
    for i in range(2, 3001):
        chain = (chain, i)
    assert Tree.of(chain).depth == 2999


def test_the_zoo_spec_parses_with_the_books_weights():
    rec = gr.zoo.load_tree("fig10_14")
    assert "fig10_14" in gr.zoo.tree_names() and "fig10_14" not in gr.zoo.names()
    assert set(rec.param_shapes) == {"U", "V", "W", "b", "c", "R"}
    assert rec.param_shapes["U"] == rec.param_shapes["W"] == (4, 4) and rec.param_shapes["V"] == (4, 3)
    assert rec.losses == ["L"]


def test_the_parameter_count_does_not_depend_on_the_tree():
    rec = TreeRecurrence(GOOD)
    assert rec.parameter_count == 3 * 2 + 3 + 9 + 9 + 2 + 2 * 3


def test_the_unrolled_graph_has_one_circle_per_node_and_the_same_weights_everywhere():
    rec = TreeRecurrence(GOOD)
    g = rec.unroll((((1, 2), 3), (4, 5)))
    assert nx.is_directed_acyclic_graph(g)
    hs = [n for n, d in g.nodes(data=True) if d["var"] == "h"]
    assert len(hs) == 5 + 4
    internal = [n for n in hs if ".." in n]
    for n in internal:
        sides = sorted((d["side"], d["param"]) for _, _, d in g.in_edges(n, data=True))
        assert sides == [("left", "U"), ("right", "W")]
    assert all(g.edges[f"x[{i}]", f"h[{i}]"]["param"] == "V" for i in range(1, 6))
    assert g.has_edge("h[1..5]", "o") and g.has_edge("o", "L") and g.edges["y", "L"]["target"]


@pytest.mark.parametrize("change,match", [
    (("h[node] = tanh(b + U @ h[left] + W @ h[right])", "h[node] = tanh(b + U @ h[left] + W @ h[t-1])"),
     r"a node equation reads its children"),
    (("h[leaf] = tanh(V @ x[leaf])", "h[leaf] = tanh(V @ x[root])"), "a leaf equation reads the leaf"),
    (("o = c + R @ h[root]", "o = c + R @ h"), r"has a value at every node: say which, e.g. `h\[root\]`"),
    (("h[leaf] = tanh(V @ x[leaf])\n", ""), r"h must be defined at every place it is read.*h\[leaf\]"),
    (("L = cross_entropy(o, y)", "L = cross_entropy(o, y[root])"), "a target has one value for the tree"),
    (("tanh(b + U", "tahn(b + U"), "did you mean tanh"),
    (("h[node] =", "h[branch] ="), r"at every leaf \(`h\[leaf\] = ...`\)"),
    (("o = c + R @ h[root]", "o = c + R @ g[root]"), "no equation defines g"),
    (("h[node] = tanh(b + U @ h[left] + W @ h[right])", "h[node] = tanh(b + U @ h[node])"), "algebraic loop"),
    (("L = cross_entropy(o, y)", "L = cross_entropy(o, y)\nh = o"), "defined both at the root"),
    (("loss   L", "loss   Q"), "the loss Q"),
    (("o = c + R @ h[root]", "o = c + R @ h[root]" + " + c" * 600), "in the equation of o: .*too large"),
    (("o = c + R @ h[root]", "o = " + "tanh(" * 70 + "c + R @ h[root]" + ")" * 70), "nested too deeply"),
])
def test_mistakes_are_spec_errors_that_say_what_to_write(change, match):
    old, new = change
    assert old in GOOD
    with pytest.raises(SpecError, match=match):
        TreeRecurrence(GOOD.replace(old, new, 1))


def test_a_shape_mismatch_names_the_equation():
    with pytest.raises(SpecError, match="do not fit") as err:
        TreeRecurrence(GOOD.replace("h[leaf] = tanh(V @ x[leaf])", "h[leaf] = tanh(V @ x[leaf]) + x[leaf]"))
    assert err.value.line == 6


def test_docs_recursive_shows_the_zoo_spec_and_its_example_runs():
    import re
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "recursive.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(\w*)\n(.*?)```", text, re.S)
    spec = next(b for lang, b in blocks if lang == "" and b.startswith("# Fig. 10.14"))
    assert spec == (Path(gr.zoo.__file__).parent / "fig10_14.tree").read_text(encoding="utf-8")
    code = next(b for lang, b in blocks if lang == "python")
    scope: dict = {}
    exec(compile(code, "docs/recursive.md", "exec"), scope)  # noqa: S102 - our own documentation
    assert scope["run"].grads["W"].shape == (4, 4) and scope["data"]["x"].shape == (4, 3, 8)
    rec = scope["rec"]
    assert rec.tree_of(((1, 2), (3, 4))).depth == 2
