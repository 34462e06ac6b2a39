"""Every op in the registry against finite differences (float64, hypothesis-driven).

Each test is tagged with ``@covers(op, ...)`` and checks its ops with
:func:`graphrnn.gradcheck` in both modes: the full Jacobian (every entry) and the
fast random projection ``vᵀJu``.  ``test_every_registered_op_is_covered`` fails
when an op is registered without a test here.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import graphrnn as gr
from graphrnn.engine.autograd import topological_order
from graphrnn.engine.ops import Op

COVERED: set[str] = set()


def covers(*names):
    """Record that the decorated test checks the gradients of ops ``names``."""
    COVERED.update(names)
    return lambda fn: fn


SETTINGS = settings(
    max_examples=20,
    deadline=None,
    database=None,  # no .hypothesis directory in the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
FEW = settings(SETTINGS, max_examples=12)


def check(op_name, f, *inputs, seed=0):
    """Gradcheck ``f`` on ``inputs`` (full Jacobian and fast mode) after making sure
    the graph it builds really contains ``op_name``."""
    ts = [gr.Tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in inputs]
    out = f(*ts)
    ops = {n.op.name for n in topological_order(out) if n.op is not None}
    assert op_name in ops, f"{op_name!r} not in the graph built by the test ({sorted(ops)})"
    assert out.dtype == np.float64
    assert gr.gradcheck(f, list(inputs))
    assert gr.gradcheck(f, list(inputs), fast=True, seed=seed)


# ----------------------------------------------------------------------------- strategies


def floats(lo=-2.0, hi=2.0):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def away_from_zero(lo=0.2, hi=2.0):
    """Values with |x| in [lo, hi]: no kink of relu, no pole of 1/x within eps."""
    return st.one_of(floats(lo, hi), floats(-hi, -lo))


def arrays(shape, elements=None):
    return hnp.arrays(np.float64, shape, elements=elements if elements is not None else floats())


small_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
seeds = st.integers(0, 2**16)


# ----------------------------------------------------------------------------- arithmetic


@covers("add", "sub", "mul", "div")
@SETTINGS
@given(data=st.data(), op=st.sampled_from(["add", "sub", "mul", "div"]),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4),
       seed=seeds)
@example(data=None, op="add", shapes=hnp.BroadcastableShapes(((3, 1), (1, 4)), (3, 4)), seed=1)
@example(data=None, op="mul", shapes=hnp.BroadcastableShapes(((3, 4), (4,)), (3, 4)), seed=2)
@example(data=None, op="sub", shapes=hnp.BroadcastableShapes(((), (2, 3)), (2, 3)), seed=3)
@example(data=None, op="div", shapes=hnp.BroadcastableShapes(((2, 3), (2, 1)), (2, 3)), seed=4)
def test_binary_arithmetic_broadcasting(data, op, shapes, seed):
    sa, sb = shapes.input_shapes
    rng = np.random.default_rng(seed)
    if data is None:  # an @example: plain random values
        a = rng.uniform(-2, 2, sa)
        b = rng.uniform(0.5, 2, sb) * rng.choice([-1, 1], sb)
    else:
        a = data.draw(arrays(sa), label="a")
        b = data.draw(arrays(sb, away_from_zero() if op == "div" else None), label="b")
    fn = {"add": gr.add, "sub": gr.sub, "mul": gr.mul, "div": gr.div}[op]
    check(op, fn, a, b, seed=seed)
    out = fn(gr.Tensor(a), gr.Tensor(b))
    assert out.shape == shapes.result_shape


@covers("add", "sub", "mul", "div", "neg")
@FEW
@given(a=arrays(small_shapes, away_from_zero()), c=away_from_zero(0.5, 3.0))
def test_python_scalar_operands(a, c):
    """Scalars on either side (the r-methods), and unary minus."""
    check("add", lambda x: x + c, a)
    check("add", lambda x: c + x, a)
    check("sub", lambda x: x - c, a)
    check("sub", lambda x: c - x, a)
    check("mul", lambda x: c * x, a)
    check("div", lambda x: x / c, a)
    check("div", lambda x: c / x, a)
    check("neg", lambda x: -x, a)
    check("neg", gr.neg, a)


@covers("pow")
@SETTINGS
@given(a=arrays(small_shapes, floats(0.3, 2.0)),
       p=st.sampled_from([2, 2.0, 3, 0.5, -1, 1.5, -0.5, 1, 0]))
def test_pow_constant_exponent(a, p):
    check("pow", lambda x: x**p, a)
    out = gr.Tensor(a) ** p
    np.testing.assert_allclose(out.data, a**p)


@covers("powt")
@SETTINGS
@given(data=st.data(),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3))
def test_pow_tensor_exponent(data, shapes):
    sa, sb = shapes.input_shapes
    a = data.draw(arrays(sa, floats(0.3, 2.0)), label="base")
    b = data.draw(arrays(sb, floats(-2.0, 2.0)), label="exponent")
    check("powt", lambda x, y: x**y, a, b)
    check("powt", lambda x, y: gr.power(x, y), a, b)
    check("powt", lambda y: 2.0**y, b)  # constant base, differentiated exponent
    check("powt", lambda x: x ** gr.Tensor(b), a)  # tensor exponent that is a constant


# ----------------------------------------------------------------------------- linear algebra


@st.composite
def matmul_shapes(draw):
    m, k, n, batch = (draw(st.integers(1, 3)) for _ in range(4))
    kind = draw(st.sampled_from(["1x1", "1x2", "2x1", "2x2", "b2x2", "2xb2", "1xb2", "b2x1", "bxb", "1bxb"]))
    return {
        "1x1": ((k,), (k,)),
        "1x2": ((k,), (k, n)),
        "2x1": ((m, k), (k,)),
        "2x2": ((m, k), (k, n)),
        "b2x2": ((batch, m, k), (k, n)),
        "2xb2": ((m, k), (batch, k, n)),
        "1xb2": ((k,), (batch, k, n)),
        "b2x1": ((batch, m, k), (k,)),
        "bxb": ((batch, m, k), (batch, k, n)),
        "1bxb": ((1, m, k), (batch, k, n)),
    }[kind]


@covers("matmul")
@SETTINGS
@given(data=st.data(), shapes=matmul_shapes(), seed=seeds)
def test_matmul(data, shapes, seed):
    sa, sb = shapes
    a = data.draw(arrays(sa), label="a")
    b = data.draw(arrays(sb), label="b")
    check("matmul", lambda x, y: x @ y, a, b, seed=seed)
    check("matmul", lambda x: x @ b, a)  # constant right operand (need = (True, False))
    check("matmul", lambda y: a @ y, b)  # __rmatmul__ with an ndarray on the left
    np.testing.assert_allclose((gr.Tensor(a) @ gr.Tensor(b)).data, a @ b)


@st.composite
def permuted_axes(draw):
    ndim = draw(st.integers(0, 4))
    shape = tuple(draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim)))
    if draw(st.booleans()):
        return shape, None
    perm = draw(st.permutations(range(ndim)))
    negate = draw(st.lists(st.booleans(), min_size=ndim, max_size=ndim))
    return shape, tuple(ax - ndim if neg else ax for ax, neg in zip(perm, negate))


@covers("transpose")
@SETTINGS
@given(data=st.data(), shape_axes=permuted_axes())
@example(data=None, shape_axes=((2, 3, 4), (-1, 0, 1)))
@example(data=None, shape_axes=((2, 3), (-1, -2)))
def test_transpose(data, shape_axes):
    shape, axes = shape_axes
    a = np.random.default_rng(0).standard_normal(shape) if data is None else data.draw(arrays(shape))
    check("transpose", lambda x: gr.transpose(x, axes), a)
    np.testing.assert_array_equal(gr.transpose(gr.Tensor(a), axes).data, np.transpose(a, axes))
    if a.ndim == 2:
        check("transpose", lambda x: x.T, a)


# ----------------------------------------------------------------------------- reductions & shapes


@st.composite
def reduction_axes(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4))
    ndim = len(shape)
    kind = draw(st.sampled_from(["none", "int", "tuple", "list"]) if ndim else st.just("none"))
    if kind == "none":
        axis = None
    elif kind == "int":
        axis = draw(st.integers(-ndim, ndim - 1))
    else:
        axes = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
        negate = draw(st.lists(st.booleans(), min_size=len(axes), max_size=len(axes)))
        axis = [ax - ndim if neg else ax for ax, neg in zip(axes, negate)]
        axis = tuple(axis) if kind == "tuple" else axis
    return shape, axis


@covers("sum", "mean")
@SETTINGS
@given(data=st.data(), shape_axis=reduction_axes(), keepdims=st.booleans(),
       op=st.sampled_from(["sum", "mean"]))
@example(data=None, shape_axis=((3, 4), -1), keepdims=False, op="mean")
@example(data=None, shape_axis=((2, 3, 4), (0, -1)), keepdims=True, op="sum")
def test_sum_mean(data, shape_axis, keepdims, op):
    shape, axis = shape_axis
    a = np.random.default_rng(1).standard_normal(shape) if data is None else data.draw(arrays(shape))
    fn = gr.sum if op == "sum" else gr.mean
    check(op, lambda x: fn(x, axis=axis, keepdims=keepdims), a)
    ref = (np.sum if op == "sum" else np.mean)(a, axis=tuple(axis) if isinstance(axis, list) else axis,
                                               keepdims=keepdims)
    out = fn(gr.Tensor(a), axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(ref)
    np.testing.assert_allclose(out.data, ref)
    # the Tensor methods are the same op
    meth = gr.Tensor(a).sum if op == "sum" else gr.Tensor(a).mean
    np.testing.assert_allclose(meth(axis=axis, keepdims=keepdims).data, ref)


@covers("reshape")
@FEW
@given(a=arrays(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)),
       how=st.sampled_from(["flat", "reversed", "column", "row3d"]))
def test_reshape(a, how):
    shape = {"flat": (-1,), "reversed": a.shape[::-1], "column": (a.size, 1), "row3d": (1, 1, a.size)}[how]
    check("reshape", lambda x: gr.reshape(x, shape), a)
    check("reshape", lambda x: x.reshape(*shape), a)
    assert gr.reshape(gr.Tensor(a), shape).shape == np.reshape(a, shape).shape


@st.composite
def basic_indices(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))

    def item(n):
        if draw(st.booleans()):
            return draw(st.integers(-n, n - 1))
        step = draw(st.sampled_from([None, 1, 2, -1, -2]))
        start = draw(st.none() | st.integers(-n, n - 1))
        stop = draw(st.none() | st.integers(-n - 1, n))
        return slice(start, stop, step)

    if draw(st.booleans()):  # x[..., item] indexes the last axis
        return shape, (Ellipsis, item(shape[-1]))
    items = [item(n) for n in shape[: draw(st.integers(1, len(shape)))]]
    if draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), None)
    index = tuple(items) if len(items) > 1 or draw(st.booleans()) else items[0]
    return shape, index


@st.composite
def fancy_indices(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4))
    n0 = shape[0]
    idx = draw(st.lists(st.integers(-n0, n0 - 1), min_size=1, max_size=6))  # repeats likely
    kind = draw(st.sampled_from(["list", "array2d", "mixed", "pair", "mask"]))
    if kind == "list":
        return shape, idx
    if kind == "array2d":
        return shape, np.array(idx + idx).reshape(2, -1)
    if kind == "mixed" and len(shape) >= 2:
        n1 = shape[1]
        return shape, (slice(None), np.array([draw(st.integers(-n1, n1 - 1)) for _ in idx]))
    if kind == "pair" and len(shape) >= 2:
        n1 = shape[1]
        return shape, (np.array(idx), np.array([draw(st.integers(0, n1 - 1)) for _ in idx]))
    mask = np.array(draw(st.lists(st.booleans(), min_size=n0, max_size=n0)))
    return shape, mask


@covers("getitem")
@SETTINGS
@given(data=st.data(), shape_index=basic_indices())
@example(data=None, shape_index=((4, 3), (slice(None, None, -1), 1)))
@example(data=None, shape_index=((3, 4), (Ellipsis, slice(1, 3))))
def test_getitem_basic(data, shape_index):
    shape, index = shape_index
    a = np.random.default_rng(2).standard_normal(shape) if data is None else data.draw(arrays(shape))
    check("getitem", lambda x: x[index], a)
    np.testing.assert_array_equal(gr.Tensor(a)[index].data, a[index])


@covers("getitem")
@SETTINGS
@given(data=st.data(), shape_index=fancy_indices())
@example(data=None, shape_index=((3, 2), [0, 0, 2, 0]))
def test_getitem_fancy_with_repeats(data, shape_index):
    shape, index = shape_index
    a = np.random.default_rng(3).standard_normal(shape) if data is None else data.draw(arrays(shape))
    check("getitem", lambda x: x[index], a)
    np.testing.assert_array_equal(gr.Tensor(a)[index].data, a[index])


def test_getitem_repeated_index_accumulates():
    x = gr.Tensor(np.arange(4.0), requires_grad=True)
    x[[0, 0, 3, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 0.0, 0.0, 1.0])
    # and a tensor as index (its values are used, it is not differentiated)
    y = gr.Tensor(np.arange(4.0), requires_grad=True)
    (y[gr.Tensor(np.array([1, 1]))] * gr.Tensor([2.0, 5.0])).sum().backward()
    np.testing.assert_array_equal(y.grad, [0.0, 7.0, 0.0, 0.0])


def test_getitem_empty_slice():
    """An empty result has an all-zero gradient, and gradcheck accepts it."""
    a = np.arange(6.0).reshape(2, 3)
    assert gr.gradcheck(lambda x: x[:, 2:1], [a])
    x = gr.Tensor(a, requires_grad=True)
    (x[:, 2:1].sum() + x[0, 0]).backward()
    np.testing.assert_array_equal(x.grad, [[1, 0, 0], [0, 0, 0]])


@st.composite
def joinable(draw, new_axis: bool):
    ndim = draw(st.integers(1, 3))
    base = draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim))
    count = draw(st.integers(1, 3))
    if new_axis:
        axis = draw(st.integers(-(ndim + 1), ndim))
        return [tuple(base)] * count, axis
    axis = draw(st.integers(-ndim, ndim - 1))
    shapes = []
    for _ in range(count):
        s = list(base)
        s[axis] = draw(st.integers(1, 3))
        shapes.append(tuple(s))
    return shapes, axis


@covers("concat")
@SETTINGS
@given(data=st.data(), shapes_axis=joinable(new_axis=False))
def test_concat(data, shapes_axis):
    shapes, axis = shapes_axis
    arrs = [data.draw(arrays(s), label=f"x{i}") for i, s in enumerate(shapes)]
    check("concat", lambda *xs: gr.concat(list(xs), axis=axis), *arrs)
    np.testing.assert_array_equal(gr.concat(arrs, axis=axis).data, np.concatenate(arrs, axis=axis))


@covers("stack")
@SETTINGS
@given(data=st.data(), shapes_axis=joinable(new_axis=True))
def test_stack(data, shapes_axis):
    shapes, axis = shapes_axis
    arrs = [data.draw(arrays(s), label=f"x{i}") for i, s in enumerate(shapes)]
    check("stack", lambda *xs: gr.stack(list(xs), axis=axis), *arrs)
    np.testing.assert_array_equal(gr.stack(arrs, axis=axis).data, np.stack(arrs, axis=axis))


def test_concat_and_stack_with_constants():
    """Only the inputs that require a gradient get one; the rest are skipped."""
    c = np.ones((2, 2))
    check("concat", lambda x: gr.concat([c, x, c], axis=1) * np.arange(12.0).reshape(2, 6), np.zeros((2, 2)))
    check("stack", lambda x: gr.stack([x, c], axis=-1) * np.arange(8.0).reshape(2, 2, 2), np.zeros((2, 2)))


# ----------------------------------------------------------------------------- elementwise


@covers("identity", "exp", "tanh", "sigmoid")
@SETTINGS
@given(a=arrays(small_shapes), op=st.sampled_from(["identity", "exp", "tanh", "sigmoid"]))
def test_smooth_elementwise(a, op):
    fn = getattr(gr, op)
    check(op, fn, a)
    ref = {"identity": a, "exp": np.exp(a), "tanh": np.tanh(a), "sigmoid": 1 / (1 + np.exp(-a))}[op]
    np.testing.assert_allclose(fn(gr.Tensor(a)).data, ref, rtol=1e-12)


@covers("relu")
@SETTINGS
@given(a=arrays(small_shapes, away_from_zero(0.01, 2.0)))
def test_relu(a):
    check("relu", gr.relu, a)
    np.testing.assert_array_equal(gr.relu(gr.Tensor(a)).data, np.maximum(a, 0))


@covers("log")
@SETTINGS
@given(a=arrays(small_shapes, floats(0.1, 5.0)))
def test_log_positive(a):
    check("log", gr.log, a)
    check("log", lambda x: x.log(), a)


def test_identity_keeps_name_and_passes_gradient_through():
    x = gr.Tensor([1.0, 2.0], requires_grad=True)
    w = gr.identity(x, name="W(1)")
    assert w.name == "W(1)" and w.op.name == "identity"
    (w * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


# ----------------------------------------------------------------------------- softmax & losses


@st.composite
def class_logits(draw):
    """Logits with a class axis: 1-D (classes,), or 2-D/3-D with ``axis`` the class axis."""
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    axis = draw(st.sampled_from([a for a in (0, 1, -1) if -ndim <= a < ndim]))
    return shape, axis


@covers("softmax", "log_softmax")
@SETTINGS
@given(data=st.data(), shape_axis=class_logits(), op=st.sampled_from(["softmax", "log_softmax"]))
def test_softmax_log_softmax(data, shape_axis, op):
    shape, axis = shape_axis
    a = data.draw(arrays(shape, floats(-4, 4)))
    fn = getattr(gr, op)
    check(op, lambda x: fn(x, axis=axis), a)
    sm = np.exp(a - a.max(axis=axis, keepdims=True))
    sm = sm / sm.sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(fn(gr.Tensor(a), axis=axis).data, sm if op == "softmax" else np.log(sm),
                               rtol=1e-12, atol=1e-12)


@covers("cross_entropy")
@SETTINGS
@given(data=st.data(), shape_axis=class_logits(), reduction=st.sampled_from(["mean", "sum", "none"]))
@example(data=None, shape_axis=((3, 4), 0), reduction="sum")
@example(data=None, shape_axis=((4, 3), 1), reduction="mean")
def test_cross_entropy(data, shape_axis, reduction):
    shape, axis = shape_axis
    k = shape[axis]
    tshape = shape[: axis % len(shape)] + shape[axis % len(shape) + 1:]
    if data is None:
        rng = np.random.default_rng(4)
        z, t = rng.standard_normal(shape), rng.integers(0, k, tshape)
    else:
        z = data.draw(arrays(shape, floats(-4, 4)), label="logits")
        t = data.draw(hnp.arrays(np.int64, tshape, elements=st.integers(0, k - 1)), label="target")
    check("cross_entropy", lambda x: gr.cross_entropy(x, t, axis=axis, reduction=reduction), z)
    # the value: -log softmax at the target, reduced
    logp = z - z.max(axis=axis, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(axis=axis, keepdims=True))
    per = -np.squeeze(np.take_along_axis(logp, np.expand_dims(t, axis), axis=axis), axis=axis)
    ref = {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]
    np.testing.assert_allclose(gr.cross_entropy(z, t, axis=axis, reduction=reduction).data, ref,
                               rtol=1e-12, atol=1e-12)


@covers("mse")
@SETTINGS
@given(data=st.data(), reduction=st.sampled_from(["mean", "sum", "none"]),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3))
def test_mse(data, reduction, shapes):
    sa, sb = shapes.input_shapes
    a = data.draw(arrays(sa), label="a")
    b = data.draw(arrays(sb), label="b")
    check("mse", lambda x, y: gr.mse(x, y, reduction=reduction), a, b)
    check("mse", lambda x: gr.mse(x, b, reduction=reduction), a)
    d2 = (a - b) ** 2
    ref = {"mean": d2.mean(), "sum": d2.sum(), "none": d2}[reduction]
    np.testing.assert_allclose(gr.mse(a, b, reduction=reduction).data, ref, rtol=1e-12)


@covers("bce_with_logits")
@SETTINGS
@given(data=st.data(), reduction=st.sampled_from(["mean", "sum", "none"]),
       shape=hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=4))
def test_bce_with_logits(data, reduction, shape):
    x = data.draw(arrays(shape, floats(-4, 4)), label="logits")
    y = data.draw(arrays(shape, floats(0.0, 1.0)), label="target")
    check("bce_with_logits", lambda a, b: gr.bce_with_logits(a, b, reduction=reduction), x, y)
    check("bce_with_logits", lambda a: gr.bce_with_logits(a, y, reduction=reduction), x)
    p = 1 / (1 + np.exp(-x))
    per = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    ref = {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]
    np.testing.assert_allclose(gr.bce_with_logits(x, y, reduction=reduction).data, ref, rtol=1e-10)


# ----------------------------------------------------------------------------- composites


@covers("matmul", "add", "tanh", "cross_entropy")
@FEW
@given(seed=seeds, steps=st.integers(1, 3))
def test_rnn_composite(seed, steps):
    """A few steps of the book's RNN (eq. 10.8-10.11), every parameter checked at once."""
    rng = np.random.default_rng(seed)
    n, m, k, batch = 3, 2, 3, 2
    params = [rng.standard_normal(s) * 0.5 for s in [(n, n), (n, m), (k, n), (n, 1), (k, 1), (n, batch)]]
    xs = rng.standard_normal((steps, m, batch))
    ys = rng.integers(0, k, (steps, batch))

    def loss(W, U, V, b, c, h):
        total = 0.0
        for t in range(steps):
            h = gr.tanh(b + W @ h + U @ xs[t])
            total = total + gr.cross_entropy(c + V @ h, ys[t], reduction="sum")
        return total

    check("cross_entropy", loss, *params, seed=seed)


# ----------------------------------------------------------------------------- the checker itself


def _wrong_square():
    """a*a with the VJP of a (off by a factor 2): gradcheck must reject it."""
    return Op("wrong_square", lambda a: (a * a, None), lambda g, out, args, need, saved, attrs: (g * args[0],))


@pytest.mark.parametrize("fast", [False, True])
def test_gradcheck_catches_a_wrong_rule(fast):
    bad = _wrong_square()
    with pytest.raises(gr.GradcheckError, match="wrong"):
        gr.gradcheck(lambda x: gr.apply(bad, x), [np.array([0.5, -1.0, 2.0])], fast=fast)


def test_gradcheck_catches_a_wrong_entry_of_a_jacobian():
    """A rule wrong in one entry only: full mode names that entry."""
    def vjp(g, out, args, need, saved, attrs):
        ga = g.copy()
        ga[..., 1] *= 1.01
        return (ga,)

    bad = Op("wrong_one_entry", lambda a: (a.copy(), None), vjp)
    with pytest.raises(gr.GradcheckError, match=r"input 0.*\(1,\)"):
        gr.gradcheck(lambda x: gr.apply(bad, x), [np.zeros(3)])


@covers("one_hot")
def test_one_hot_is_a_constant_of_its_labels():
    labels = gr.Tensor(np.array([2, 0, 1, 2]))
    hot = gr.one_hot(labels, 3)
    np.testing.assert_array_equal(hot.data, np.eye(3)[:, [2, 0, 1, 2]])
    assert hot.op.name == "one_hot" and not hot.requires_grad
    w = gr.Tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    (g,) = gr.grad(gr.sum(w @ hot), [w])  # d/dw sum(W @ onehot) = sum over columns of the one-hot rows
    np.testing.assert_array_equal(g, np.ones((4, 4)) @ hot.data.T)
    check("matmul", lambda x: gr.sum((x @ gr.one_hot(np.array([1, 0]), 2)) ** 2), np.arange(6.0).reshape(3, 2))


# ----------------------------------------------------------------------------- coverage


def test_every_registered_op_is_covered():
    missing = sorted(set(gr.REGISTRY) - COVERED)
    assert not missing, f"ops registered without a gradient test in {__name__}: {missing}"
    stale = sorted(COVERED - set(gr.REGISTRY))
    assert not stale, f"tests claim ops that are not registered: {stale}"
    assert set(gr.op_names()) == set(gr.REGISTRY)
