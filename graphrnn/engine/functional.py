"""The engine's functions: each one applies a registered op (see :mod:`.ops`).

Vectors are columns, as in the book, so the class axis of ``softmax`` and
``cross_entropy`` defaults to 0: ``o`` of shape ``(classes, batch)``.

>>> import numpy as np, graphrnn as gr
>>> o = gr.Tensor(np.zeros((3, 2)), requires_grad=True)
>>> loss = gr.cross_entropy(o, np.array([0, 2]), reduction="sum")
>>> round(loss.item(), 6)  # two columns, each -log(1/3)
2.197225
"""

from __future__ import annotations

import numpy as np

from .ops import REGISTRY, _check_reduction
from .tensor import Tensor, apply

_ADD, _SUB, _MUL, _DIV = REGISTRY["add"], REGISTRY["sub"], REGISTRY["mul"], REGISTRY["div"]
_MATMUL, _POW, _POWT = REGISTRY["matmul"], REGISTRY["pow"], REGISTRY["powt"]


def add(a, b) -> Tensor:
    return apply(_ADD, a, b)


def sub(a, b) -> Tensor:
    return apply(_SUB, a, b)


def mul(a, b) -> Tensor:
    return apply(_MUL, a, b)


def div(a, b) -> Tensor:
    return apply(_DIV, a, b)


def neg(a) -> Tensor:
    return apply(REGISTRY["neg"], a)


def power(a, b) -> Tensor:
    """``a ** b``; a Python-number exponent is an attribute, a tensor exponent is differentiated."""
    if isinstance(b, (int, float)) and not isinstance(b, bool):
        return apply(_POW, a, p=b)
    return apply(_POWT, a, b)


def matmul(a, b) -> Tensor:
    """Matrix product ``a @ b``; a mismatch names both shapes."""
    return apply(_MATMUL, a, b)


def transpose(a, axes=None) -> Tensor:
    return apply(REGISTRY["transpose"], a, axes=None if axes is None else tuple(axes))


def reshape(a, shape) -> Tensor:
    return apply(REGISTRY["reshape"], a, shape=tuple(shape) if not np.isscalar(shape) else (shape,))


def sum(a, axis=None, keepdims=False) -> Tensor:  # noqa: A001 - mirrors numpy
    return apply(REGISTRY["sum"], a, axis=_axis(axis), keepdims=keepdims)


def mean(a, axis=None, keepdims=False) -> Tensor:
    return apply(REGISTRY["mean"], a, axis=_axis(axis), keepdims=keepdims)


def _axis(axis):
    return tuple(axis) if isinstance(axis, list) else axis


def getitem(a, index) -> Tensor:
    if isinstance(index, Tensor):
        index = index.data
    if isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return apply(REGISTRY["getitem"], a, index=index)


def concat(tensors, axis=0) -> Tensor:
    """Join tensors along an existing axis (``np.concatenate``)."""
    return apply(REGISTRY["concat"], *tensors, axis=axis)


def stack(tensors, axis=0) -> Tensor:
    """Join tensors along a new axis (``np.stack``)."""
    return apply(REGISTRY["stack"], *tensors, axis=axis)


def identity(a, name=None) -> Tensor:
    """A copy of ``a`` as a node of its own; its gradient is this use's contribution."""
    out = apply(REGISTRY["identity"], a)
    out.name = name
    return out


def exp(a) -> Tensor:
    return apply(REGISTRY["exp"], a)


def log(a) -> Tensor:
    return apply(REGISTRY["log"], a)


def tanh(a) -> Tensor:
    return apply(REGISTRY["tanh"], a)


def sigmoid(a) -> Tensor:
    return apply(REGISTRY["sigmoid"], a)


def relu(a) -> Tensor:
    return apply(REGISTRY["relu"], a)


def softmax(a, axis=0) -> Tensor:
    return apply(REGISTRY["softmax"], a, axis=axis)


def log_softmax(a, axis=0) -> Tensor:
    return apply(REGISTRY["log_softmax"], a, axis=axis)


def cross_entropy(logits, target, axis=0, reduction="mean") -> Tensor:
    """Softmax cross-entropy of ``logits`` against integer class labels ``target``.

    ``axis`` is the class axis (0: columns are examples, as in the book);
    ``target`` has the logits' shape without that axis.  ``reduction`` is
    ``"mean"`` (over examples, as PyTorch), ``"sum"`` (the book's summed loss,
    eq. 10.13) or ``"none"``.  Finite for any finite logits, even ±1e4.
    """
    _check_reduction(reduction)  # before apply, which reads ValueErrors as shape mismatches
    return apply(REGISTRY["cross_entropy"], logits, target, axis=axis, reduction=reduction)


def mse(a, b, reduction="mean") -> Tensor:
    """Squared error ``(a - b)**2``, averaged (``"mean"``), summed or left per entry."""
    _check_reduction(reduction)
    return apply(REGISTRY["mse"], a, b, reduction=reduction)


def bce_with_logits(logits, target, reduction="mean") -> Tensor:
    """Binary cross-entropy of ``sigmoid(logits)`` against targets in [0, 1], computed stably."""
    _check_reduction(reduction)
    return apply(REGISTRY["bce_with_logits"], logits, target, reduction=reduction)


def one_hot(labels, num_classes: int, dtype=np.float64) -> Tensor:
    """Columns of one-hot vectors: shape ``(num_classes, *labels.shape)``; no gradient."""
    return apply(REGISTRY["one_hot"], labels, classes=int(num_classes), dtype=np.dtype(dtype))


def argmax(a, axis=0) -> Tensor:
    """Index of the largest entry along ``axis`` (an integer tensor; no gradient)."""
    data = a.data if isinstance(a, Tensor) else np.asarray(a)
    return Tensor(np.argmax(data, axis=axis))
