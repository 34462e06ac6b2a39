"""Compare the engine's gradients with central finite differences, in float64.

Two modes, as in PyTorch's ``gradcheck`` and JAX's ``check_grads``:

* full (``fast=False``): the whole Jacobian of every input, entry by entry;
* fast (``fast=True``): one random projection per input, ``vᵀ J u``, which a wrong
  rule almost surely changes, at the cost of two evaluations per input.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..errors import GradcheckError
from .autograd import grad as _grad
from .tensor import Tensor


def _prepare(inputs, names):
    arrays, labels = [], []
    for i, x in enumerate(inputs):
        data = x.data if isinstance(x, Tensor) else x
        arrays.append(np.array(data, dtype=np.float64, copy=True))
        given = names[i] if names else (x.name if isinstance(x, Tensor) else None)
        labels.append(given or f"input {i}")
    return arrays, labels


def _evaluate(f, arrays, labels, track: bool):
    ts = [Tensor(a, requires_grad=track, name=n) for a, n in zip(arrays, labels)]
    out = f(*ts)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: f must return a Tensor, got {type(out).__name__}")
    return ts, out


def _value(f, arrays, labels) -> np.ndarray:
    return np.array(_evaluate(f, arrays, labels, track=False)[1].data, dtype=np.float64)


def _fail(label, where, analytic, numeric, tol):
    raise GradcheckError(
        f"gradcheck: the gradient for {label!r} is wrong at {where}: analytic {analytic:.10g}, "
        f"numerical {numeric:.10g} (difference {abs(analytic - numeric):.3g}, tolerance {tol:.3g})"
    )


def gradcheck(
    f: Callable[..., Tensor],
    inputs: Sequence,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    fast: bool = False,
    seed: int = 0,
    names: Sequence[str] | None = None,
) -> bool:
    """Check the gradients of ``f(*inputs)`` against central differences.

    ``f`` takes one tensor per input and returns a tensor of any shape.  Inputs
    (tensors or arrays) are copied to float64.  An entry passes when
    ``|analytic - numerical| <= atol + rtol * |numerical|``.  Returns ``True``;
    on failure raises :class:`~graphrnn.errors.GradcheckError` naming the input,
    the worst entry and both values.

    >>> import graphrnn as gr, numpy as np
    >>> gr.gradcheck(lambda a, b: gr.tanh(a @ b), [np.ones((2, 3)), np.ones((3, 1))])
    True
    """
    arrays, labels = _prepare(inputs, names)
    rng = np.random.default_rng(seed)
    ts, out = _evaluate(f, arrays, labels, track=True)
    if not out.requires_grad:
        raise GradcheckError("gradcheck: f's output does not depend on any of its inputs")
    out_shape = out.shape

    def numerical(i, direction):
        """d f / d (input i) along ``direction``, by a central difference."""
        plus = [a.copy() for a in arrays]
        minus = [a.copy() for a in arrays]
        plus[i] += eps * direction
        minus[i] -= eps * direction
        return (_value(f, plus, labels) - _value(f, minus, labels)) / (2 * eps)

    if fast:
        v = rng.standard_normal(out_shape)
        grads = _grad(out, ts, grad_output=v)
        for i, a in enumerate(arrays):
            u = rng.standard_normal(a.shape)
            analytic = 0.0 if grads[i] is None else float(np.sum(grads[i] * u))
            numeric = float(np.sum(v * numerical(i, u)))
            tol = atol + rtol * abs(numeric)
            if not abs(analytic - numeric) <= tol:
                _fail(labels[i], "a random projection vᵀJu", analytic, numeric, tol)
        return True

    # analytic Jacobian: one backward pass per output entry
    m = int(np.prod(out_shape))
    jac = [np.zeros((m,) + a.shape) for a in arrays]
    for j in range(m):
        seed_grad = np.zeros(m)
        seed_grad[j] = 1.0
        for i, gi in enumerate(_grad(out, ts, grad_output=seed_grad.reshape(out_shape), retain_graph=True)):
            if gi is not None:
                jac[i][j] = gi
    for i, a in enumerate(arrays):
        for k in np.ndindex(a.shape):
            e = np.zeros(a.shape)
            e[k] = 1.0
            column = numerical(i, e).reshape(m)
            analytic = jac[i][(slice(None),) + k]
            tol = atol + rtol * np.abs(column)
            excess = np.abs(analytic - column) - tol
            if excess.size == 0:  # an empty output has nothing to compare
                continue
            worst = int(np.argmax(excess))
            if not excess[worst] <= 0:
                at = tuple(int(j) for j in np.unravel_index(worst, out_shape)) if out_shape else ()
                where = f"d out{at} / d {labels[i]}{tuple(int(j) for j in k)}"
                _fail(labels[i], where, analytic[worst], column[worst], tol[worst])
    return True
