"""Reverse mode: walk the graph from a root back to its leaves, applying each op's VJP.

The walk is iterative (no Python recursion, so a chain of 100,000 ops is fine at
the default recursion limit).  :func:`backward_steps` hands out the walk one
node at a time, for step-by-step displays; :func:`backward` simply runs it.
"""

from __future__ import annotations

import operator
from typing import Iterator

import numpy as np

from ..errors import BackwardError, ShapeError
from .ops import SliceGrad, unbroadcast
from .tensor import MODE, Tensor, anomaly_check


def topological_order(root: Tensor, only_grad: bool = True) -> list[Tensor]:
    """Nodes reachable from ``root`` through their parents, each after all of its parents.

    With ``only_grad`` (the default) the walk keeps to nodes that require a gradient.
    """
    # Every node is created after its parents, so its ``uid`` is larger than theirs and
    # sorting the reachable nodes by uid is a topological order.  That is much cheaper
    # than a depth-first post-order; the latter remains as the fallback for a graph
    # whose parents were rewired by hand (the check costs one comparison per edge).
    # Tensors hash by identity, so they serve as their own keys here and in backward.
    seen = {root}
    stack = [root]
    monotone = True
    while stack:
        node = stack.pop()
        uid = node.uid
        for parent in node.parents:
            if parent.uid >= uid:
                monotone = False
            if parent not in seen and (parent.requires_grad or not only_grad):
                seen.add(parent)
                stack.append(parent)
    if monotone:
        return sorted(seen, key=_by_uid)
    return _depth_first_order(root, only_grad)


_by_uid = operator.attrgetter("uid")


def _depth_first_order(root: Tensor, only_grad: bool) -> list[Tensor]:
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for parent in node.parents:
            if id(parent) not in seen and (parent.requires_grad or not only_grad):
                stack.append((parent, False))
    return order


def _seed(root: Tensor, grad) -> np.ndarray:
    if grad is None:
        if root.data.size != 1:
            raise BackwardError(
                f"backward() from a tensor of shape {root.shape} needs a seed gradient of that "
                f"shape (grad=...); only a single-entry tensor (a loss) can be seeded with 1"
            )
        return np.ones(root.data.shape, dtype=root.data.dtype)
    grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=root.data.dtype)
    if grad.shape != root.data.shape:
        raise ShapeError(f"backward(): the seed gradient has shape {grad.shape}, the root {root.shape}")
    return grad


def backward_steps(
    root: Tensor, grad=None, retain_graph: bool = False, accumulate: bool = True
) -> Iterator[tuple[Tensor, np.ndarray]]:
    """Run backward one node at a time, yielding ``(node, gradient)`` in the order visited.

    Each node is yielded once, with its complete gradient (every path from the
    root already summed), before its VJP passes the gradient on to its parents.
    Leaves that require a gradient accumulate it into ``.grad``; so do nodes on
    which ``retain_grad()`` was called (unless ``accumulate`` is false).

    >>> import graphrnn as gr
    >>> x = gr.Tensor(2.0, requires_grad=True, name="x")
    >>> y = gr.tanh(x * x)
    >>> [(n.op.name if n.op else n.name) for n, g in gr.backward_steps(y)]
    ['tanh', 'mul', 'x']
    """
    if not root.requires_grad:
        raise BackwardError(
            "backward() from a tensor that does not require a gradient: no input it was computed "
            "from has requires_grad=True (or it was computed under no_grad())"
        )
    grads: dict[Tensor, np.ndarray] = {root: _seed(root, grad)}
    owned: set[Tensor] = set()  # nodes whose gradient buffer this walk allocated, safe to add into in place
    anomaly = MODE.anomaly
    order = topological_order(root)
    for i in range(len(order) - 1, -1, -1):  # runs once per node: kept lean
        node = order[i]
        g = grads.pop(node, None)
        if g is None:
            continue
        owned.discard(node)
        if type(g) is not np.ndarray:  # numpy hands back 0-d results as scalars
            g = np.asarray(g)
        op = node.op
        if accumulate and (op is None or node.retains_grad):
            node.grad = g.copy() if node.grad is None else np.asarray(node.grad + g)
        yield node, g
        if op is None:
            continue
        if node.freed:
            raise BackwardError(
                f"backward() through the graph a second time: the saved values of {op.name!r}"
                f"{' (' + node.name + ')' if node.name else ''} were freed by the first backward(); "
                f"pass retain_graph=True to the first call if you need to go back twice"
            )
        parents = node.parents
        if len(parents) == 2:
            p0, p1 = parents
            need = (p0.requires_grad, p1.requires_grad)
            args = (p0.data, p1.data)
        elif len(parents) == 1:
            need = (parents[0].requires_grad,)
            args = (parents[0].data,)
        else:
            need = tuple([p.requires_grad for p in parents])
            args = tuple([p.data for p in parents])
        pgrads = op.vjp(g, node.data, args, need, node.saved, node.attrs)
        for parent, pg, wanted in zip(parents, pgrads, need):
            if not wanted or pg is None:
                continue
            data = parent.data
            if type(pg) is SliceGrad:  # zero outside a slice: add it into one buffer in place
                if anomaly:
                    anomaly_check(op, pg.values, parents, "backward")
                acc = grads.get(parent)
                if parent not in owned:
                    acc = np.zeros(data.shape, dtype=data.dtype) if acc is None else acc.astype(data.dtype)
                    owned.add(parent)
                pg.add_into(acc)
                grads[parent] = acc
                continue
            if pg.shape != data.shape:
                pg = unbroadcast(pg, data.shape)
            if pg.dtype != data.dtype:  # e.g. float32 x times a float64 constant: x's gradient is float32
                pg = pg.astype(data.dtype)
            if anomaly:
                anomaly_check(op, pg, parents, "backward")
            acc = grads.get(parent)
            if acc is None:
                grads[parent] = pg  # may be shared with another node's gradient: never written into
            elif parent in owned:
                acc += pg
            else:
                acc = acc + pg
                if type(acc) is np.ndarray:  # (a 0-d sum comes back as a numpy scalar: not writable)
                    owned.add(parent)
                grads[parent] = acc
        if not retain_graph:
            node.saved = None
            node.freed = True


def backward(root: Tensor, grad=None, retain_graph: bool = False) -> None:
    """Accumulate the gradient of ``root`` into ``.grad`` of every leaf that requires one.

    ``grad`` seeds the walk (needed when ``root`` has more than one entry).  The
    walk frees the graph unless ``retain_graph`` is true; a second backward over
    a freed graph raises :class:`~graphrnn.errors.BackwardError` instead of
    double counting.
    """
    for _ in backward_steps(root, grad, retain_graph):
        pass


def grad(root: Tensor, inputs, grad_output=None, retain_graph: bool = False) -> list:
    """The gradient of ``root`` with respect to each tensor in ``inputs`` (leaves or not),
    leaving every ``.grad`` untouched; ``None`` for an input ``root`` does not depend on.

    >>> import graphrnn as gr
    >>> x = gr.Tensor(3.0, requires_grad=True)
    >>> y = x * x
    >>> gr.grad(y * 2, [x, y])
    [array(12.), array(2.)]
    """
    wanted = {id(t): i for i, t in enumerate(inputs)}
    out: list = [None] * len(inputs)
    for node, g in backward_steps(root, grad_output, retain_graph, accumulate=False):
        i = wanted.get(id(node))
        if i is not None:
            out[i] = g.copy()
    return out
