"""Running a recursive network (§10.6) on the engine: forward over a tree, and backward.

The tree is unrolled into engine ops: each leaf evaluates the leaf equations on its
input, each internal node the node equations on its two children (children first),
the root equations once.  Every use of a parameter at a tree node goes through a
dummy copy of it (``W^(1..2)``, the copy of W used at the node over leaves 1..2), as
§10.2.2 does for the steps of an RNN: its gradient is that node's share, and the
shares add up to the parameter's gradient.

A batch is ``B`` trees of the same shape: inputs ``(leaves, rows, B)``, one class label
per tree ``(B,)``; every operation acts on the ``B`` columns independently and the
losses are summed over them, as in :mod:`graphrnn.runtime`.

>>> import graphrnn as gr
>>> rec = gr.zoo.load_tree("fig10_14")
>>> tree = ((1, 2), (3, 4))
>>> run = rec.run(tree, rec.random_inputs(tree, batch=2, seed=0), rec.init_params(seed=0))
>>> sorted(run.copy_grads["W"])            # W is used at the three internal nodes
['1..2', '1..4', '3..4']
>>> import numpy as np
>>> bool(np.allclose(sum(run.copy_grads["W"].values()), run.grads["W"]))
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import engine as E
from ..errors import DataError
from ..recurrence.spec import Bin, Call, Name, Num, Ref, Transpose, Unary
from ..recurrence.tree import Tree, TreeRecurrence, check_data


@dataclass
class TreeRun:
    """A run over a tree: every value, the loss, and (after backward) every gradient.

    ``values`` and ``node_grads`` are keyed like the unrolled graph (``h[3]``, ``h[1..2]``,
    ``o``, ``L``); ``grads`` by parameter; ``copy_grads[W][node]`` is the share of ∇W
    from the copy of W used at that tree node (``"root"`` for the root equations).
    """

    rec: object
    tree: Tree
    values: dict
    loss: float | None
    grads: dict = field(default_factory=dict)
    node_grads: dict = field(default_factory=dict)
    copy_grads: dict = field(default_factory=dict)
    batch: int = 1
    #: what the run read: the data (checked arrays) and the parameters (the derived equations evaluate from them)
    data: dict = field(default_factory=dict, repr=False)
    params: dict = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        loss = "no loss" if self.loss is None else f"loss {self.loss:.6g}"
        return f"TreeRun({self.rec.name}, {self.tree.n_leaves} leaves, depth {self.tree.depth}, batch {self.batch}, {loss})"


class _Evaluator:
    """Evaluates the notation's expressions on engine tensors at one place of the tree."""

    def __init__(self, rec, data, params, copies):
        self.rec, self.data, self.params, self.copies = rec, data, params, copies
        self.tensors: dict = {}
        #: the number of classes of each label computed here (an argmax's), by the label tensor's id
        self.label_classes: dict = {}

    def copy(self, p, at):
        per = self.copies.setdefault(p, {})
        if at not in per:
            per[at] = E.identity(self.params[p], name=f"{p}^({at})")
        return per[at]

    def value(self, e, at, children):
        """``e`` at tree node ``at`` (``children``: its (left, right) keys, or None)."""
        ev = self.value
        if isinstance(e, Num):
            return E.Tensor(np.asarray(e.value, dtype=np.float64))
        if isinstance(e, Name):
            if e.name in self.rec.param_shapes:
                return self.copy(e.name, at)
            if e.name in self.data:
                return self.data[e.name]
            return self.tensors[e.name]  # a root variable
        if isinstance(e, Ref):
            if e.anchor in ("left", "right"):
                where = children[0 if e.anchor == "left" else 1]
            else:
                where = at
            key = f"{e.name}[{where}]" if e.anchor != "root" else f"{e.name}[{self.root}]"
            if e.name in self.rec.spec.inputs:
                return self.data[key]
            return self.tensors[key]
        if isinstance(e, Unary):
            v = ev(e.operand, at, children)
            return E.neg(v) if e.op == "-" else v
        if isinstance(e, Transpose):
            return E.transpose(ev(e.operand, at, children))
        if isinstance(e, Bin):
            a, b = ev(e.left, at, children), ev(e.right, at, children)
            return {"+": E.add, "-": E.sub, "*": E.mul, "/": E.div, "@": E.matmul, "**": E.power}[e.op](a, b)
        if isinstance(e, Call):
            return self.call(e, at, children)
        raise TypeError(f"cannot evaluate {e!r}")  # unreachable for a parsed spec

    def call(self, e, at, children):
        fn = e.fn
        args = [self.value(a, at, children) for a in e.args]
        if fn in ("tanh", "sigmoid", "relu", "exp", "log"):
            return getattr(E, fn)(args[0])
        if fn in ("softmax", "log_softmax"):
            return getattr(E, fn)(args[0], axis=0)
        if fn == "cross_entropy":
            return E.cross_entropy(args[0], args[1].data, axis=0, reduction="sum")
        if fn == "mse":  # the mean over a column's entries, summed over the batch
            return E.div(E.mse(args[0], args[1], reduction="sum"), float(args[0].data.shape[0]))
        if fn == "bce_with_logits":
            return E.bce_with_logits(args[0], args[1], reduction="sum")
        if fn == "one_hot":
            label = e.args[0]
            classes = self.rec.classes.get(label.name) if isinstance(label, (Name, Ref)) else None
            if classes is None:
                classes = self.label_classes.get(id(args[0]))
            if classes is None:
                raise DataError(f"one_hot at {at}: the number of classes of its label is not known; declare the "
                                f"label as `target NAME: class K`, or one-hot an argmax(...)")
            return E.one_hot(args[0].data, classes)
        if fn == "argmax":
            out = E.argmax(args[0], axis=0)
            self.label_classes[id(out)] = args[0].data.shape[0]
            return out
        raise DataError(f"{fn} is not available in a recursive network")


class RecursiveNet(TreeRecurrence):
    """A recursive network that runs: the notation (:class:`~graphrnn.recurrence.tree.TreeRecurrence`)
    plus :meth:`run` on the engine.  ``graphrnn.zoo.load_tree`` returns one."""

    def run(self, tree, data: dict, params: dict | None = None, backward: bool = True,
            shift: dict | None = None) -> TreeRun:
        """Run over ``tree`` (one tree shape for the whole batch); see :func:`run_tree`."""
        return run_tree(self, tree, data, params if params is not None else self.init_params(), backward, shift)


def run_tree(rec, tree, data: dict, params: dict, backward: bool = True, shift: dict | None = None) -> TreeRun:
    """Run ``rec`` over ``tree`` for a batch of trees of that shape; differentiate unless ``backward=False``.

    ``data``: each input as ``(leaves, rows, B)`` (leaf ``i`` reads ``data[x][i - 1]``), each
    target as ``(B,)`` class labels (or ``(rows, B)``); ``params``: every parameter, as
    :meth:`~graphrnn.recurrence.tree.TreeRecurrence.init_params` gives them; ``shift``: arrays
    added to the values of some nodes as they are computed (``{"h[1..2]": delta}``, for checks).
    """
    t = rec.tree_of(tree)
    arrays = check_data(rec, t, data)
    missing = [p for p in rec.param_shapes if p not in params]
    if missing:
        raise DataError(f"no value for the parameter(s) {', '.join(missing)}; use rec.init_params()")
    P = {}
    for p, shape in rec.param_shapes.items():
        a = np.asarray(params[p], dtype=np.float64)
        if a.shape != shape:
            raise DataError(f"the parameter {p} must have shape {shape}; got {a.shape}")
        P[p] = E.Tensor(a, requires_grad=True, name=p)
    inputs = {}
    for n in rec.spec.inputs:
        for i, leaf in enumerate(t.leaves):
            inputs[f"{n}[{leaf}]"] = E.Tensor(arrays[n][t.leaf_input[leaf] - 1], name=f"{n}[{leaf}]")
    for n in rec.spec.targets:
        if n in arrays:
            inputs[n] = E.Tensor(arrays[n], name=n)
    batch = next(iter(arrays.values())).shape[-1] if arrays else 1
    copies: dict = {}
    ev = _Evaluator(rec, inputs, P, copies)
    ev.root = t.root
    with E.enable_grad():
        for place, keys in (("leaf", t.leaves), ("node", t.internal)):
            eqs = rec.order(place)
            for k in keys:
                children = t.children.get(k)
                for eq in eqs:
                    key = f"{eq.name}[{k}]"
                    ev.tensors[key] = _shifted(ev.value(eq.expr, k, children), key, shift)
        for eq in rec.order("root"):
            ev.tensors[eq.name] = _shifted(ev.value(eq.expr, "root", None), eq.name, shift)
    values = {k: v.data for k, v in ev.tensors.items()}
    losses = [ev.tensors[n] for n in rec.losses if n in ev.tensors]
    total = None
    if losses:
        total = losses[0]
        for extra in losses[1:]:
            total = E.add(total, extra)
    run = TreeRun(rec, t, values, None if total is None else float(total.data), batch=batch, data=arrays,
                  params=params)
    if total is None or not backward:
        return run
    want = {id(v): k for k, v in ev.tensors.items()}
    want_copy = {id(c): (p, at) for p, per in copies.items() for at, c in per.items()}
    for node, g in E.backward_steps(total):
        if id(node) in want:
            run.node_grads[want[id(node)]] = np.array(g, dtype=np.float64)
        if id(node) in want_copy:
            p, at = want_copy[id(node)]
            run.copy_grads.setdefault(p, {})[at] = np.array(g, dtype=np.float64)
    for p, tensor in P.items():
        run.grads[p] = np.array(tensor.grad, dtype=np.float64) if tensor.grad is not None else \
            np.zeros(rec.param_shapes[p])
    return run


def _shifted(value, key, shift):
    if not shift or key not in shift:
        return value
    return E.add(value, np.asarray(shift[key], dtype=np.float64))


def run_forest(rec, trees, data: list, params: dict, backward: bool = True) -> TreeRun:
    """Run trees of different shapes: ``trees[i]`` with ``data[i]`` (a batch of that shape each).

    The loss is the sum of the runs' losses and the gradients the sums of theirs (each tree's
    values stay in its own run: ``run.parts``).
    """
    if len(trees) != len(data):
        raise DataError(f"give one data dict per tree: {len(trees)} trees, {len(data)} data dicts")
    if not trees:
        raise DataError("run_forest needs at least one tree")
    parts = [run_tree(rec, t, d, params, backward) for t, d in zip(trees, data)]
    out = TreeRun(rec, parts[0].tree, {}, None if parts[0].loss is None else sum(p.loss for p in parts),
                  batch=sum(p.batch for p in parts))
    if backward and out.loss is not None:
        out.grads = {p: sum(r.grads[p] for r in parts) for p in rec.param_shapes}
    out.parts = parts
    return out
