"""The :class:`Tensor`: a numpy array that remembers the op and the parents that made it.

Those two fields *are* the computational graph.  Parents are kept as an ordered
tuple (``x * x`` has two parent slots, both ``x``), so the graph can be drawn,
exported to networkx (:func:`graphrnn.graph_of`) and walked backwards
(:mod:`graphrnn.engine.autograd`).
"""

from __future__ import annotations

import contextlib
import itertools

import numpy as np

from ..errors import AnomalyError, InputError, ShapeError
from .ops import REGISTRY, Op


class _Mode:
    """Process-wide switches: recording the graph, and hunting NaNs/Infs."""

    grad_enabled = True
    anomaly = False


MODE = _Mode()


class _Switch(contextlib.ContextDecorator):
    def __init__(self, attr: str, value: bool):
        self.attr, self.value = attr, value
        self.saved: list[bool] = []  # a stack: one instance may be entered again (decorated recursion)

    def __enter__(self):
        self.saved.append(getattr(MODE, self.attr))
        setattr(MODE, self.attr, self.value)

    def __exit__(self, *exc):
        setattr(MODE, self.attr, self.saved.pop())


def no_grad():
    """Context manager (or decorator) in which no graph is recorded.

    >>> import graphrnn as gr
    >>> w = gr.Tensor([1.0, 2.0], requires_grad=True)
    >>> with gr.no_grad():
    ...     y = w * 3
    >>> y.requires_grad
    False
    """
    return _Switch("grad_enabled", False)


def enable_grad():
    """Context manager (or decorator) that turns graph recording back on."""
    return _Switch("grad_enabled", True)


def is_grad_enabled() -> bool:
    return MODE.grad_enabled


def detect_anomaly():
    """Context manager in which the first op whose forward output or gradient holds a
    NaN or an infinity raises :class:`~graphrnn.errors.AnomalyError`, naming the op and
    the tensors (by their user names) that went in.

    >>> import graphrnn as gr
    >>> x = gr.Tensor([0.0, 1.0], requires_grad=True, name="x")
    >>> with gr.detect_anomaly():
    ...     gr.log(x)
    Traceback (most recent call last):
    ...
    graphrnn.errors.AnomalyError: forward of 'log' produced -inf (1 of 2 entries non-finite) from inputs (x: shape (2,))
    """
    return _Switch("anomaly", True)


_FLOAT_DEFAULT = np.float64
_ADD, _SUB, _MUL, _DIV, _MATMUL = (REGISTRY[k] for k in ("add", "sub", "mul", "div", "matmul"))
_counter = itertools.count()


def _as_array(data, dtype=None) -> np.ndarray:
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray):
        arr = data if dtype is None else data.astype(dtype, copy=False)
    else:
        try:
            arr = np.asarray(data, dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise InputError(f"cannot make a tensor from {type(data).__name__}: {exc}") from None
        if dtype is None and arr.dtype.kind in "biu":
            arr = arr.astype(_FLOAT_DEFAULT)  # Python numbers and lists become float64
    if arr.dtype.kind not in "fiub":
        raise InputError(
            f"a tensor holds numbers; got an array of dtype {arr.dtype} "
            f"(convert it with np.asarray(..., dtype=float) first)"
        )
    return arr


class Tensor:
    """A numpy array with an autodiff graph behind it.

    Parameters
    ----------
    data : array_like
        The values.  Python numbers and lists become float64; numpy arrays keep
        their dtype (so float32 stays float32).
    requires_grad : bool
        Whether ``backward()`` should fill ``.grad`` for this tensor.
    name : str, optional
        A name shown in graphs, drawings and error messages.

    >>> import graphrnn as gr
    >>> x = gr.Tensor([[1.0], [2.0]], requires_grad=True, name="x")
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad.ravel().tolist()
    [2.0, 4.0]
    """

    __slots__ = ("data", "grad", "requires_grad", "name", "op", "parents", "attrs", "saved",
                 "retains_grad", "freed", "uid", "__weakref__")
    __array_ufunc__ = None  # make `ndarray + Tensor` call Tensor.__radd__

    def __init__(self, data, requires_grad: bool = False, name: str | None = None, dtype=None):
        self.data = _as_array(data, dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise InputError(
                f"only floating-point tensors can require gradients; {name or 'this tensor'} "
                f"has dtype {self.data.dtype}"
            )
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self.op: Op | None = None
        self.parents: tuple[Tensor, ...] = ()
        self.attrs: dict = {}
        self.saved = None
        self.retains_grad = False
        self.freed = False
        self.uid = next(_counter)

    # -- plain properties ---------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    is_leaf = property(lambda self: self.op is None)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        label = f", name={self.name!r}" if self.name else ""
        how = f", op={self.op.name}" if self.op else (", requires_grad=True" if self.requires_grad else "")
        body = np.array2string(self.data, precision=4, threshold=20, prefix="Tensor(")
        return f"Tensor({body}{how}{label})"

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        return self.data.item()

    def detach(self) -> Tensor:
        """The same values with no graph behind them (no gradient flows through)."""
        return Tensor(self.data, name=self.name)

    def retain_grad(self) -> Tensor:
        """Ask ``backward()`` to store this (non-leaf) tensor's gradient in ``.grad``."""
        self.retains_grad = True
        return self

    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (see :func:`graphrnn.backward`)."""
        from .autograd import backward

        backward(self, grad, retain_graph=retain_graph)

    # -- arithmetic ---------------------------------------------------------------------
    def __add__(self, other):
        return apply(_ADD, self, other)

    def __radd__(self, other):
        return apply(_ADD, other, self)

    def __sub__(self, other):
        return apply(_SUB, self, other)

    def __rsub__(self, other):
        return apply(_SUB, other, self)

    def __mul__(self, other):
        return apply(_MUL, self, other)

    def __rmul__(self, other):
        return apply(_MUL, other, self)

    def __truediv__(self, other):
        return apply(_DIV, self, other)

    def __rtruediv__(self, other):
        return apply(_DIV, other, self)

    def __pow__(self, other):
        return F.power(self, other)

    def __rpow__(self, other):
        return F.power(other, self)

    def __matmul__(self, other):
        return apply(_MATMUL, self, other)

    def __rmatmul__(self, other):
        return apply(_MATMUL, other, self)

    def __neg__(self):
        return apply(REGISTRY["neg"], self)

    def __getitem__(self, index):
        return F.getitem(self, index)

    @property
    def T(self) -> Tensor:
        return F.transpose(self)

    def transpose(self, *axes):
        return F.transpose(self, axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else (axes or None))

    def reshape(self, *shape):
        return F.reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    def sum(self, axis=None, keepdims=False):
        return F.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return F.mean(self, axis=axis, keepdims=keepdims)

    def exp(self):
        return F.exp(self)

    def log(self):
        return F.log(self)

    def tanh(self):
        return F.tanh(self)

    def sigmoid(self):
        return F.sigmoid(self)

    def relu(self):
        return F.relu(self)

    def softmax(self, axis=0):
        return F.softmax(self, axis=axis)

    def log_softmax(self, axis=0):
        return F.log_softmax(self, axis=axis)


def _describe(t: Tensor) -> str:
    return f"{t.name or ('<' + t.op.name + '>' if t.op else 'constant')}: shape {t.shape}"


def anomaly_check(op: Op, out: np.ndarray, parents, stage: str) -> None:
    """Raise :class:`AnomalyError` if ``out`` holds a NaN or an infinity."""
    if out is None or np.all(np.isfinite(out)):
        return
    bad = np.size(out) - int(np.count_nonzero(np.isfinite(out)))
    first = np.asarray(out)[~np.isfinite(out)].flat[0]
    inputs = ", ".join(_describe(p) for p in parents)
    already = [p.name or op.name for p in parents if not np.all(np.isfinite(p.data))]
    hint = f"; input {already[0]!r} already held non-finite values" if already else ""
    raise AnomalyError(
        f"{stage} of {op.name!r} produced {first} ({bad} of {np.size(out)} entries non-finite) "
        f"from inputs ({inputs}){hint}"
    )


def apply(op: Op, *inputs, **attrs) -> Tensor:
    """Run ``op`` forward on tensors (or array-likes) and record the node in the graph."""
    # This runs once per op, so it is written for speed: no generator expressions,
    # and the common one- and two-operand cases are spelled out.
    for x in inputs:
        if not isinstance(x, Tensor):
            parents = tuple(x if isinstance(x, Tensor) else _constant(x, inputs) for x in inputs)
            break
    else:
        parents = inputs
    try:
        n = len(parents)
        if n == 2:
            data, saved = op.forward(parents[0].data, parents[1].data, **attrs)
        elif n == 1:
            data, saved = op.forward(parents[0].data, **attrs)
        else:
            data, saved = op.forward(*[p.data for p in parents], **attrs)
    except ShapeError as exc:
        raise ShapeError(_name_operands(str(exc), parents)) from None
    except ValueError as exc:  # numpy's broadcasting message, with our operand names added
        shapes = " and ".join(_describe(p) for p in parents)
        raise ShapeError(f"{op.name}: operands do not fit ({shapes}): {exc}") from None
    out = _new_tensor(Tensor)
    out.data = data if isinstance(data, np.ndarray) else np.asarray(data)
    out.grad = None
    out.name = None
    out.retains_grad = False
    out.freed = False
    out.uid = next(_counter)
    if MODE.grad_enabled:
        requires = False
        if op.differentiable:
            for p in parents:
                if p.requires_grad:
                    requires = True
                    break
        out.requires_grad = requires
        out.op, out.parents, out.attrs = op, parents, attrs
        out.saved = saved if requires else None
    else:
        out.requires_grad = False
        out.op, out.parents, out.attrs, out.saved = None, (), {}, None
    if MODE.anomaly:
        anomaly_check(op, out.data, parents, "forward")
    return out


_new_tensor = object.__new__


def _name_operands(message: str, parents) -> str:
    named = [p.name for p in parents if p.name]
    return message + (f" (operands: {', '.join(named)})" if named else "")


def _constant(x, inputs) -> Tensor:
    """Wrap a non-tensor operand, matching the float dtype of the tensor operands
    (so ``float32_tensor * 2`` stays float32, as numpy does for Python scalars)."""
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        for other in inputs:
            if isinstance(other, Tensor) and other.data.dtype.kind == "f":
                return Tensor(np.asarray(x, dtype=other.data.dtype))
    return Tensor(x)


from . import functional as F  # noqa: E402  (the op functions need Tensor defined first)
