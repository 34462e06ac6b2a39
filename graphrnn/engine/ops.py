"""The table of primitive operations: each forward beside its vector-Jacobian product.

Every differentiable operation the engine knows is one :class:`Op` in
:data:`REGISTRY`.  An op works on plain numpy arrays:

``forward(*arrays, **attrs) -> (out, saved)``
    computes the result and, optionally, something the VJP will need
    (``saved``; ``None`` for most ops).
``vjp(g, out, args, need, saved, attrs) -> tuple``
    given the gradient ``g`` of the loss with respect to ``out``, returns the
    gradient with respect to each argument in ``args`` (``None`` where
    ``need[i]`` is false, so no work is spent on constants such as input data).

Gradients may have the *broadcast* shape; the engine undoes broadcasting in one
place (:func:`unbroadcast`), so no rule below has to.  Attributes (an axis, an
exponent) are keyword arguments that are not differentiated.

Other code enumerates the table: the renderer names ops by ``Op.name`` and the
test-suite checks every entry against finite differences.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import InputError, ShapeError


@dataclass(frozen=True)
class Op:
    """One primitive: its name, forward rule, VJP rule and a one-line doc."""

    name: str
    forward: Callable[..., tuple[np.ndarray, Any]] = field(repr=False)
    vjp: Callable[..., tuple] = field(repr=False)
    doc: str = ""
    differentiable: bool = True
    #: which arguments' values the VJP reads (None: all of them; their shapes are always kept)
    reads_args: tuple[int, ...] | None = None
    #: whether the VJP reads the op's own output
    reads_out: bool = True

    def reads_arg(self, i: int) -> bool:
        return self.reads_args is None or i in self.reads_args


REGISTRY: dict[str, Op] = {}


def defop(name: str, doc: str, differentiable: bool = True, reads_args=None, reads_out: bool = True):
    """Register ``forward`` (the decorated function) with the VJP it names.

    ``reads_args`` (indices; None for all) and ``reads_out`` say which values the
    VJP reads, so that an evaluator may release the others early (shapes are
    always available to it).

    Used as::

        @defop("exp", "e to the x, elementwise", reads_args=(), reads_out=True)
        def exp_fwd(a): ...
        @exp_fwd.vjp
        def exp_vjp(g, out, args, need, saved, attrs): ...
    """

    def wrap(forward):
        class _Pending:
            def vjp(self, rule):
                REGISTRY[name] = Op(name, forward, rule, doc, differentiable, reads_args, reads_out)
                return rule

        return _Pending()

    return wrap


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``g`` over the axes numpy broadcasting added or stretched to reach ``shape``."""
    gshape = g.shape
    if gshape == shape:
        return g
    extra = len(gshape) - len(shape)
    if extra > 0:
        g = _add_reduce(g, axis=tuple(range(extra)))
        gshape = g.shape
    stretched = tuple([i for i, n in enumerate(shape) if n == 1 and gshape[i] != 1])
    if stretched:
        g = _add_reduce(g, axis=stretched, keepdims=True)
    return g if g.shape == shape else g.reshape(shape)


_add_reduce = np.add.reduce  # g.sum() without the Python wrapper (it runs on every broadcast operand)


# --------------------------------------------------------------------------- arithmetic


@defop("add", "a + b", reads_args=(), reads_out=False)
def _add(a, b):
    return a + b, None


@_add.vjp
def _(g, out, args, need, saved, attrs):
    return g, g


@defop("sub", "a - b", reads_args=(), reads_out=False)
def _sub(a, b):
    return a - b, None


@_sub.vjp
def _(g, out, args, need, saved, attrs):
    return g, (-g if need[1] else None)


@defop("mul", "a * b (elementwise)", reads_args=(0, 1), reads_out=False)
def _mul(a, b):
    return a * b, None


@_mul.vjp
def _(g, out, args, need, saved, attrs):
    a, b = args
    return (g * b if need[0] else None), (g * a if need[1] else None)


@defop("div", "a / b (elementwise)", reads_args=(1,), reads_out=True)
def _div(a, b):
    return a / b, None


@_div.vjp
def _(g, out, args, need, saved, attrs):
    b = args[1]
    ga = g / b if need[0] else None
    gb = -g * out / b if need[1] else None
    return ga, gb


@defop("neg", "-a", reads_args=(), reads_out=False)
def _neg(a):
    return -a, None


@_neg.vjp
def _(g, out, args, need, saved, attrs):
    return (-g,)


@defop("pow", "a ** p for a constant exponent p", reads_args=(0,), reads_out=False)
def _pow(a, *, p):
    return a**p, None


@_pow.vjp
def _(g, out, args, need, saved, attrs):
    p = attrs["p"]
    a = args[0]
    if p == 2:
        return (2.0 * g * a,)
    return (g * p * a ** (p - 1),)


@defop("powt", "a ** b where the exponent b is a tensor too")
def _powt(a, b):
    return a**b, None


@_powt.vjp
def _(g, out, args, need, saved, attrs):
    a, b = args
    ga = g * b * a ** (b - 1) if need[0] else None
    gb = None
    if need[1]:
        with np.errstate(divide="ignore", invalid="ignore"):
            gb = g * out * np.log(a)
    return ga, gb


# --------------------------------------------------------------------------- linear algebra


def _matmul_check(a, b):
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError("matmul needs arrays of at least one dimension; use * for a scalar")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ShapeError(
            f"matmul: cannot multiply shape {a.shape} by shape {b.shape}: the inner sizes "
            f"{k_a} and {k_b} differ"
        )


@defop("matmul", "a @ b, matrix product (vectors are columns)", reads_args=(0, 1), reads_out=False)
def _matmul(a, b):
    try:
        return a @ b, None
    except ValueError:
        _matmul_check(a, b)  # our message, naming both shapes (else numpy's, e.g. batch sizes)
        raise


@_matmul.vjp
def _(g, out, args, need, saved, attrs):
    a, b = args
    ga = gb = None
    if a.ndim >= 2 and b.ndim >= 2:
        if need[0]:
            ga = g @ b.swapaxes(-1, -2)
        if need[1]:
            gb = a.swapaxes(-1, -2) @ g
    elif a.ndim == 1 and b.ndim == 1:
        ga = g * b if need[0] else None
        gb = g * a if need[1] else None
    elif a.ndim == 1:  # (k,) @ (..., k, n) -> (..., n)
        if need[0]:
            ga = (b @ g[..., None])[..., 0]
        if need[1]:
            gb = a[:, None] * g[..., None, :]
    else:  # (..., m, k) @ (k,) -> (..., m)
        if need[0]:
            ga = g[..., :, None] * b
        if need[1]:
            gb = (a.swapaxes(-1, -2) @ g[..., None])[..., 0]
    return ga, gb


@defop("transpose", "a transposed (axes reversed, or permuted by `axes`)", reads_args=(), reads_out=False)
def _transpose(a, *, axes=None):
    return np.transpose(a, axes), None


@_transpose.vjp
def _(g, out, args, need, saved, attrs):
    axes = attrs.get("axes")
    if axes is None:
        return (np.transpose(g),)
    return (np.transpose(g, np.argsort([ax % g.ndim for ax in axes])),)  # negative axes allowed


# --------------------------------------------------------------------------- reductions & shapes


def _expand_reduced(g, ndim, axis, keepdims):
    """Give a reduced gradient back its reduced axes (as size 1), ready to broadcast."""
    if keepdims:
        return g
    if axis is None:
        return np.reshape(g, (1,) * ndim)
    axes = (axis,) if np.isscalar(axis) else tuple(axis)
    return np.expand_dims(g, tuple(ax % ndim for ax in axes))


@defop("sum", "sum over `axis` (all axes when None)", reads_args=(), reads_out=False)
def _sum(a, *, axis=None, keepdims=False):
    return np.sum(a, axis=axis, keepdims=keepdims), None


@_sum.vjp
def _(g, out, args, need, saved, attrs):
    a = args[0]
    g = _expand_reduced(g, a.ndim, attrs.get("axis"), attrs.get("keepdims", False))
    return (np.broadcast_to(g, a.shape),)


@defop("mean", "mean over `axis` (all axes when None)", reads_args=(), reads_out=False)
def _mean(a, *, axis=None, keepdims=False):
    return np.mean(a, axis=axis, keepdims=keepdims), None


@_mean.vjp
def _(g, out, args, need, saved, attrs):
    a = args[0]
    n = a.size // max(np.size(out), 1) if a.size else 1
    g = _expand_reduced(g, a.ndim, attrs.get("axis"), attrs.get("keepdims", False))
    return (np.broadcast_to(g / n, a.shape),)


@defop("reshape", "the same entries in a new shape", reads_args=(), reads_out=False)
def _reshape(a, *, shape):
    try:
        return np.reshape(a, shape), None
    except ValueError:
        raise ShapeError(f"reshape: cannot reshape {a.shape} ({a.size} entries) into {shape}") from None


@_reshape.vjp
def _(g, out, args, need, saved, attrs):
    return (np.reshape(g, args[0].shape),)


def _is_basic_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


class SliceGrad:
    """A gradient that is zero except at ``index``, where it is ``values``.

    The VJP of indexing returns one, so that T slices of one stacked array cost T
    small additions into a single buffer (see ``autograd.backward_steps``) rather
    than T full-size arrays of zeros.  ``np.asarray`` gives the dense array.
    """

    __slots__ = ("index", "values", "shape", "dtype", "basic")

    def __init__(self, index, values, shape, dtype):
        self.index, self.values, self.shape, self.dtype = index, values, shape, dtype
        self.basic = _is_basic_index(index)

    def add_into(self, buffer: np.ndarray) -> None:
        if self.basic:
            buffer[self.index] += self.values  # a basic index names every entry at most once
        else:
            np.add.at(buffer, self.index, self.values)  # fancy indices may repeat: accumulate

    def astype(self, dtype):
        return SliceGrad(self.index, self.values.astype(dtype), self.shape, np.dtype(dtype))

    def __array__(self, dtype=None, copy=None):
        dense = np.zeros(self.shape, dtype=dtype or self.dtype)
        self.add_into(dense)
        return dense


@defop("getitem", "a[index]: indexing and slicing", reads_args=(), reads_out=False)
def _getitem(a, *, index):
    return a[index], None


@_getitem.vjp
def _(g, out, args, need, saved, attrs):
    a = args[0]
    return (SliceGrad(attrs["index"], g, a.shape, g.dtype),)


@defop("concat", "join tensors along an existing `axis`", reads_args=(), reads_out=False)
def _concat(*arrays, axis=0):
    return np.concatenate(arrays, axis=axis), None


@_concat.vjp
def _(g, out, args, need, saved, attrs):
    axis = attrs.get("axis", 0)
    bounds = np.cumsum([x.shape[axis] for x in args])[:-1]
    return tuple(np.split(g, bounds, axis=axis))


@defop("stack", "join tensors along a new `axis`", reads_args=(), reads_out=False)
def _stack(*arrays, axis=0):
    return np.stack(arrays, axis=axis), None


@_stack.vjp
def _(g, out, args, need, saved, attrs):
    axis = attrs.get("axis", 0)
    return tuple(np.take(g, i, axis=axis) for i in range(len(args)))


@defop("identity", "a copy of a: the book's dummy copy W^(t) (§10.2.2)", reads_args=(), reads_out=False)
def _identity(a):
    return a, None


@_identity.vjp
def _(g, out, args, need, saved, attrs):
    return (g,)


# --------------------------------------------------------------------------- elementwise functions


@defop("exp", "e ** a", reads_args=(), reads_out=True)
def _exp(a):
    return np.exp(a), None


@_exp.vjp
def _(g, out, args, need, saved, attrs):
    return (g * out,)


@defop("log", "natural logarithm", reads_args=(0,), reads_out=False)
def _log(a):
    return np.log(a), None


@_log.vjp
def _(g, out, args, need, saved, attrs):
    return (g / args[0],)


@defop("tanh", "hyperbolic tangent", reads_args=(), reads_out=True)
def _tanh(a):
    return np.tanh(a), None


@_tanh.vjp
def _(g, out, args, need, saved, attrs):
    if np.size(out) < LARGE:
        return (g * (1.0 - out * out),)
    t = out * out
    np.subtract(1.0, t, out=t)
    return (_times(g, t, into=t),)


def _stable_sigmoid(a):
    e = np.exp(-np.abs(a))  # never overflows
    return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@defop("sigmoid", "logistic function 1 / (1 + e^-a)", reads_args=(), reads_out=True)
def _sigmoid(a):
    return _stable_sigmoid(a).astype(a.dtype, copy=False), None


@_sigmoid.vjp
def _(g, out, args, need, saved, attrs):
    if np.size(out) < LARGE:
        return (g * out * (1.0 - out),)
    t = 1.0 - out
    return (_times(g * out, t, into=t),)


@defop("relu", "max(a, 0)", reads_args=(0,), reads_out=False)
def _relu(a):
    return np.maximum(a, 0), None


@_relu.vjp
def _(g, out, args, need, saved, attrs):
    return (g * (args[0] > 0),)


# --------------------------------------------------------------------------- softmax & losses


def _log_softmax(a, axis):
    shifted = a - np.max(a, axis=axis, keepdims=True)  # largest entry becomes 0: exp cannot overflow
    log_total = np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
    return np.subtract(shifted, log_total, out=shifted) if shifted.dtype == log_total.dtype else shifted - log_total


@defop("softmax", "exp(a) / sum(exp(a)) along `axis`", reads_args=(), reads_out=True)
def _softmax(a, *, axis=0):
    return np.exp(_log_softmax(a, axis)), None


@_softmax.vjp
def _(g, out, args, need, saved, attrs):
    axis = attrs.get("axis", 0)
    t = g * out
    s = np.sum(t, axis=axis, keepdims=True)
    if np.size(out) >= LARGE and t.dtype == np.result_type(g, s) and t.shape == g.shape:
        return (_times(out, np.subtract(g, s, out=t), into=t),)
    return (out * (g - s),)


@defop("log_softmax", "log of softmax along `axis`, computed stably", reads_args=(), reads_out=True)
def _logsm(a, *, axis=0):
    return _log_softmax(a, axis), None


@_logsm.vjp
def _(g, out, args, need, saved, attrs):
    axis = attrs.get("axis", 0)
    e = np.exp(out)
    e = _times(e, np.sum(g, axis=axis, keepdims=True), into=e)
    if np.size(out) >= LARGE and e.shape == g.shape and e.dtype == np.result_type(g, e):
        return (np.subtract(g, e, out=e),)
    return (g - e,)


#: arrays of at least this many entries are large: the VJP rules then avoid temporaries (see _times);
#: below it, fewer numpy calls cost less
LARGE = 1 << 14


def _times(a, b, into):
    """``a * b``, written into ``into`` (``a`` or ``b``, a temporary of the caller's) when it has the
    result's shape and dtype.  The VJP rules below then hold one large temporary instead of three:
    each large temporary can cost fresh pages from the operating system.  Same product, bit for bit."""
    if type(a) is np.ndarray and type(b) is np.ndarray and a.shape == b.shape and a.dtype == b.dtype:
        shape, dtype = a.shape, a.dtype
    else:
        shape, dtype = np.broadcast_shapes(np.shape(a), np.shape(b)), np.result_type(a, b)
    if type(into) is np.ndarray and into.shape == shape and into.dtype == dtype:
        return np.multiply(a, b, out=into)
    return a * b


@defop("one_hot", "columns of one-hot vectors for integer labels (constant in the labels: no gradient)",
       differentiable=False, reads_args=(), reads_out=False)
def _one_hot(labels, *, classes, dtype=np.float64):
    labels = np.asarray(labels).astype(np.intp, copy=False)
    out = np.zeros((classes,) + labels.shape, dtype=dtype)
    np.put_along_axis(out, labels[None], 1.0, axis=0)
    return out, None


@_one_hot.vjp
def _(g, out, args, need, saved, attrs):
    return (None,)


def _reduce(losses, reduction):
    if reduction == "sum":
        return np.sum(losses)
    if reduction == "mean":
        return np.mean(losses)
    return losses


def _reduced_grad(g, reduction, shape, dtype):
    """The gradient of each unreduced loss term, from the gradient of the reduced loss."""
    if reduction == "none":
        return g
    n = int(np.prod(shape)) if reduction == "mean" else 1
    return np.full(shape, g / max(n, 1), dtype=dtype)


def _check_reduction(reduction):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', not {reduction!r}")


def check_class_targets(target, logits_shape, axis) -> np.ndarray:
    """Validate integer class labels for logits of ``logits_shape`` (classes along ``axis``)."""
    target = np.asarray(target)
    if not np.issubdtype(target.dtype, np.integer):
        if np.issubdtype(target.dtype, np.floating) and np.all(np.mod(target, 1) == 0):
            target = target.astype(np.int64)
        else:
            raise InputError(
                f"cross_entropy: targets must be integer class labels, got dtype {target.dtype}"
            )
    ax = axis % len(logits_shape)
    expected = logits_shape[:ax] + logits_shape[ax + 1 :]
    if target.shape != expected:
        raise ShapeError(
            f"cross_entropy: logits of shape {logits_shape} with classes along axis {axis} need "
            f"targets of shape {expected}, got {target.shape}"
        )
    k = logits_shape[ax]
    if target.size and (target.min() < 0 or target.max() >= k):
        bad = target[(target < 0) | (target >= k)].flat[0]
        raise InputError(f"cross_entropy: class label {bad} is outside 0..{k - 1}")
    return target.astype(np.intp, copy=False)


@defop("cross_entropy", "-log softmax(logits)[target] along `axis`, reduced by `reduction`",
       reads_args=(), reads_out=False)  # its VJP reads the saved probabilities
def _xent(logits, target, *, axis=0, reduction="mean"):
    _check_reduction(reduction)
    target = check_class_targets(target, logits.shape, axis)
    shifted = logits - np.max(logits, axis=axis, keepdims=True)  # largest entry 0: exp cannot overflow
    e = np.exp(shifted)
    total = np.sum(e, axis=axis, keepdims=True)
    index = np.expand_dims(target, axis)
    picked = np.take_along_axis(shifted, index, axis=axis) - np.log(total)  # log softmax at the target only
    losses = -np.squeeze(picked, axis=axis)
    probs = np.divide(e, total, out=e) if e.dtype == total.dtype else e / total  # eq. 10.18's y-hat, for the VJP
    return np.asarray(_reduce(losses, reduction), dtype=logits.dtype), (probs, target)


@_xent.vjp
def _(g, out, args, need, saved, attrs):
    probs, target = saved
    axis = attrs.get("axis", 0)
    reduction = attrs.get("reduction", "mean")
    per = _reduced_grad(g, reduction, target.shape, probs.dtype)
    grad = probs.copy()  # y-hat - one_hot(y), eq. 10.18 (the saved values stay for another backward pass)
    index = np.expand_dims(target, axis)
    np.put_along_axis(grad, index, np.take_along_axis(grad, index, axis=axis) - 1.0, axis=axis)
    return _times(grad, np.expand_dims(per, axis), into=grad), None


@defop("mse", "mean squared error (a - b)^2, reduced by `reduction`")
def _mse(a, b, *, reduction="mean"):
    _check_reduction(reduction)
    d = a - b
    return np.asarray(_reduce(d * d, reduction), dtype=np.result_type(a, b)), None


@_mse.vjp
def _(g, out, args, need, saved, attrs):
    a, b = args
    d = a - b
    reduction = attrs.get("reduction", "mean")
    per = _reduced_grad(g, reduction, d.shape, d.dtype)
    ga = 2.0 * per * d
    return (ga if need[0] else None), (-ga if need[1] else None)


@defop("bce_with_logits", "binary cross-entropy of sigmoid(logits) against 0/1 targets")
def _bce(logits, target, *, reduction="mean"):
    _check_reduction(reduction)
    # log(1 + e^x) - x*y, written so that e^x never overflows
    losses = np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits)))
    return np.asarray(_reduce(losses, reduction), dtype=logits.dtype), None


@_bce.vjp
def _(g, out, args, need, saved, attrs):
    x, y = args
    reduction = attrs.get("reduction", "mean")
    per = _reduced_grad(g, reduction, np.broadcast_shapes(x.shape, np.shape(y)), x.dtype)
    gx = per * (_stable_sigmoid(x) - y) if need[0] else None
    gy = -per * x if need[1] else None
    return gx, gy


def op_names() -> list[str]:
    """The names of all registered ops, in registration order."""
    return list(REGISTRY)
