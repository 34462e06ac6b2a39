"""The symbolic derivative of every op of the notation, written once, in this one table.

Each rule takes the symbolic operands ``args``, the op's symbolic output ``out``
and the gradient ``g`` arriving at the output (∇_out L), and returns, for each
operand, the gradient it passes on: (∂out/∂arg)ᵀ g, in the book's notation, or
:data:`NONE` where the op has no gradient (argmax, sample, one_hot, a fed-back
value, a class label).

Nothing here is taken from the engine's numeric VJP rules (``graphrnn/engine/ops.py``):
the two are written independently, so that a mistake in either shows up as a
disagreement in ``graphrnn verify``.

Losses are those of the notation: ``cross_entropy(o, y)`` is −log softmax(o)[y]
summed over the batch, ``mse(o, z)`` the mean over a column's rows of (o − z)²
summed over the batch, ``bce_with_logits(s, z)`` the binary cross-entropy of σ(s)
summed over the batch.

>>> from graphrnn.derive.symbols import Var, Grad, T0
>>> from graphrnn.derive.printing import text
>>> h = Var("h", T0)
>>> (da,) = RULES["tanh"]([Var("a", T0)], h, Grad("h", T0), None)
>>> text(da)
'diag(1 − (h(t))²) ∇h(t) L'
"""

from __future__ import annotations

from .symbols import (
    ONE, Diag, Func, LogSoftmaxVJP, Num, OneHot, Positive, Prediction, SoftmaxVJP, div, matmul, mul, power, scale,
    sub, transpose,
)


class _NoGradient:
    """The marker of an operand through which no gradient flows."""

    def __repr__(self):
        return "NONE"


NONE = _NoGradient()


def _add(args, out, g, info):
    """∂(a + b)/∂a = I, ∂(a + b)/∂b = I (a bias's sum over the batch is made where it is a leaf)."""
    return g, g


def _sub(args, out, g, info):
    """∂(a − b)/∂a = I, ∂(a − b)/∂b = −I."""
    return g, scale(-1.0, g)


def _mul(args, out, g, info):
    """∂(a ⊙ b)/∂a = diag(b), ∂(a ⊙ b)/∂b = diag(a)."""
    a, b = args
    return _diag_times(b, g), _diag_times(a, g)


def _div(args, out, g, info):
    """∂(a / b)/∂a = diag(1 / b), ∂(a / b)/∂b = −diag(a / b²)."""
    a, b = args
    return _diag_times(div(ONE, b), g), scale(-1.0, _diag_times(div(a, power(b, 2)), g))


def _matmul(args, out, g, info):
    """For A b: ∂/∂b is Aᵀ g, ∂/∂A is g bᵀ (summed over the batch's columns by the product)."""
    a, b = args
    return matmul(g, transpose(b)), matmul(transpose(a), g)


def _neg(args, out, g, info):
    """∂(−a)/∂a = −I."""
    return (scale(-1.0, g),)


def _pos(args, out, g, info):
    """∂(+a)/∂a = I."""
    return (g,)


def _pow(args, out, g, info):
    """∂(a^p)/∂a = diag(p a^(p−1))."""
    (a,), p = args[:1], info.exponent
    return (_diag_times(scale(p, power(a, p - 1)), g),)


def _transpose(args, out, g, info):
    """∂(aᵀ) passes gᵀ back."""
    return (transpose(g),)


def _tanh(args, out, g, info):
    """tanh′ = 1 − tanh², written through the forward value (eq. 10.21)."""
    return (_diag_times(sub(ONE, power(out, 2)), g),)


def _sigmoid(args, out, g, info):
    """σ′ = σ (1 − σ), written through the forward value."""
    return (_diag_times(mul(out, sub(ONE, out)), g),)


def _relu(args, out, g, info):
    """relu′ = 1[a > 0]."""
    return (_diag_times(Positive(args[0]), g),)


def _exp(args, out, g, info):
    """exp′ = exp."""
    return (_diag_times(out, g),)


def _log(args, out, g, info):
    """log′ = 1 / a."""
    return (_diag_times(div(ONE, args[0]), g),)


def _softmax(args, out, g, info):
    """∂softmax(a)/∂a = diag(s) − s sᵀ for s = softmax(a) (symmetric), column by column."""
    return (SoftmaxVJP(out, g),)


def _log_softmax(args, out, g, info):
    """∂log_softmax(a)/∂a = I − softmax(a) 1ᵀ, so its transpose times g is g − softmax(a) (1ᵀ g)."""
    return (LogSoftmaxVJP(args[0], g),)


def _cross_entropy(args, out, g, info):
    """∇_o of −log softmax(o)[y] is ŷ − 1_y (eq. 10.18); a class label has no gradient."""
    o, y = args
    return mul(sub(Prediction(y, o), OneHot(y, info.classes(y))), g), NONE


def _mse(args, out, g, info):
    """∂/∂o of mean_i (o_i − z_i)² is (2/n)(o − z), n the rows of o; ∂/∂z is its negative."""
    o, z = args
    d = mul(scale(2.0 / info.rows(o), sub(o, z)), g)
    return d, scale(-1.0, d)


def _bce(args, out, g, info):
    """∂/∂s of the binary cross-entropy of σ(s) against z is σ(s) − z; ∂/∂z is −s."""
    s, z = args
    return mul(sub(Func("sigmoid", (s,)), z), g), scale(-1.0, mul(s, g))


def _none(args, out, g, info):
    """No gradient: a class label (argmax, sample), a one-hot column of labels, a fed-back value."""
    return tuple(NONE for _ in args)


#: op -> rule; the only place where derivatives are written
RULES = {
    "+": _add, "-": _sub, "*": _mul, "/": _div, "@": _matmul, "neg": _neg, "pos": _pos, "**": _pow,
    "T": _transpose,
    "tanh": _tanh, "sigmoid": _sigmoid, "relu": _relu, "exp": _exp, "log": _log,
    "softmax": _softmax, "log_softmax": _log_softmax,
    "cross_entropy": _cross_entropy, "mse": _mse, "bce_with_logits": _bce,
    "one_hot": _none, "argmax": _none, "sample": _none, "feed": _none,
}

#: why an op passes no gradient, as the derivation prints it
NO_GRADIENT_REASONS = {
    "argmax": "argmax is piecewise constant: no gradient",
    "sample": "a sampled class label: no gradient",
    "one_hot": "a class label: no gradient",
    "feed": "fed back without gradient",
}


def _diag_times(v, g):
    """diag(v) g, or k g for a number v."""
    if isinstance(v, Num):
        return scale(v.value, g)
    return matmul(Diag(v), g) if not isinstance(g, Num) else mul(v, g)
