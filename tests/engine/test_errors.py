"""Bad input gets a clear graphrnn error that says what is wrong and with what."""

from __future__ import annotations

import numpy as np
import pytest

import graphrnn as gr


def t(shape, name=None, requires_grad=True):
    return gr.Tensor(np.ones(shape), requires_grad=requires_grad, name=name)


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("sa, sb", [((2, 3), (4, 5)), ((3,), (4,)), ((2, 3), (2,)), ((5,), (4, 2)),
                                    ((2, 3, 4), (5, 6))])
def test_matmul_mismatch_names_both_shapes(sa, sb):
    with pytest.raises(gr.ShapeError) as info:
        t(sa, "W") @ t(sb, "h")
    msg = str(info.value)
    assert str(sa) in msg and str(sb) in msg
    assert "matmul" in msg and "W" in msg and "h" in msg
    assert isinstance(info.value, ValueError) and isinstance(info.value, gr.GraphrnnError)


def test_matmul_mismatch_with_unnamed_and_constant_operands():
    with pytest.raises(gr.ShapeError, match=r"\(2, 3\).*\(2, 3\)"):
        t((2, 3)) @ np.ones((2, 3))
    with pytest.raises(gr.ShapeError, match=r"\(4,\).*\(3, 2\)"):
        np.ones(4) @ t((3, 2))  # __rmatmul__


def test_matmul_batch_mismatch_names_both_shapes():
    with pytest.raises(gr.ShapeError) as info:
        t((2, 3, 4), "A") @ t((3, 4, 5), "B")
    msg = str(info.value)
    assert "A: shape (2, 3, 4)" in msg and "B: shape (3, 4, 5)" in msg


def test_matmul_of_a_scalar():
    with pytest.raises(gr.ShapeError, match="at least one dimension"):
        t(()) @ t((3,))


@pytest.mark.parametrize("op, fn", [("add", lambda a, b: a + b), ("sub", lambda a, b: a - b),
                                    ("mul", lambda a, b: a * b), ("div", lambda a, b: a / b),
                                    ("mse", gr.mse)])
def test_broadcasting_mismatch_names_operands(op, fn):
    with pytest.raises(gr.ShapeError) as info:
        fn(t((3,), "hidden"), t((4, 2), "bias"))
    msg = str(info.value)
    assert msg.startswith(op + ":")
    assert "hidden: shape (3,)" in msg and "bias: shape (4, 2)" in msg


def test_broadcasting_mismatch_with_a_plain_array_says_constant():
    with pytest.raises(gr.ShapeError, match=r"x: shape \(2, 3\) and constant: shape \(4,\)"):
        t((2, 3), "x") + np.ones(4)


def test_broadcasting_mismatch_of_an_intermediate_names_its_op():
    h = gr.tanh(t((2, 3), "x"))
    with pytest.raises(gr.ShapeError, match=r"<tanh>: shape \(2, 3\)"):
        h * t((3, 2), "y")


def test_join_and_reshape_mismatches():
    with pytest.raises(gr.ShapeError, match="concat"):
        gr.concat([t((2, 3)), t((3, 2))], axis=0)
    with pytest.raises(gr.ShapeError, match="stack"):
        gr.stack([t((2, 3)), t((2, 4))])
    with pytest.raises(gr.ShapeError, match=r"reshape.*\(2, 3\).*6 entries.*\(4, 2\)"):
        t((2, 3)).reshape(4, 2)


# ----------------------------------------------------------------------------- non-numeric data


@pytest.mark.parametrize("data", [
    ["a", "b"],
    np.array(["1.0", "2.0"]),
    np.array([object(), object()], dtype=object),
    [object()],
    None,
    {"x": 1},
    "text",
    [[1.0, 2.0], [3.0]],  # ragged
    np.array([1 + 2j]),
])
def test_non_numeric_arrays_raise_input_error(data):
    with pytest.raises(gr.InputError) as info:
        gr.Tensor(data)
    assert isinstance(info.value, TypeError) and isinstance(info.value, gr.GraphrnnError)
    assert "tensor" in str(info.value)


def test_non_numeric_operand_raises_input_error():
    with pytest.raises(gr.InputError, match="dtype"):
        t((2,)) + np.array(["a", "b"])
    with pytest.raises(gr.InputError):
        gr.tanh(["x"])


def test_object_array_message_suggests_a_fix():
    with pytest.raises(gr.InputError, match=r"object.*np\.asarray\(\.\.\., dtype=float\)"):
        gr.Tensor(np.array([1.0, None]))


def test_numeric_inputs_are_accepted():
    assert gr.Tensor([1, 2]).dtype == np.float64  # Python ints become float64
    assert gr.Tensor(np.array([1, 2], dtype=np.int32)).dtype == np.int32  # arrays keep theirs
    assert gr.Tensor(np.ones(2, dtype=np.float32)).dtype == np.float32
    assert gr.Tensor(True).dtype == np.float64


# ----------------------------------------------------------------------------- requires_grad


@pytest.mark.parametrize("array", [np.array([1, 2]), np.array([1, 2], dtype=np.uint8), np.array([True, False])])
def test_requires_grad_on_an_integer_tensor(array):
    with pytest.raises(gr.InputError) as info:
        gr.Tensor(array, requires_grad=True, name="labels")
    msg = str(info.value)
    assert "floating-point" in msg and "labels" in msg and str(array.dtype) in msg


def test_integer_tensor_without_grad_is_fine():
    labels = gr.Tensor(np.array([0, 2]))
    assert not labels.requires_grad


# ----------------------------------------------------------------------------- cross_entropy targets


def test_cross_entropy_label_out_of_range():
    logits = t((3, 2), "o")
    with pytest.raises(gr.InputError, match=r"class label 3 is outside 0\.\.2"):
        gr.cross_entropy(logits, np.array([0, 3]))
    with pytest.raises(gr.InputError, match=r"class label -1 is outside 0\.\.2"):
        gr.cross_entropy(logits, np.array([-1, 0]))
    with pytest.raises(gr.InputError, match=r"outside 0\.\.1"):
        gr.cross_entropy(logits, np.array([0, 2, 1]), axis=1)


def test_cross_entropy_wrong_target_shape():
    with pytest.raises(gr.ShapeError) as info:
        gr.cross_entropy(t((3, 2), "o"), np.array([0, 1, 2]))
    msg = str(info.value)
    assert "(3, 2)" in msg and "(2,)" in msg and "(3,)" in msg and "axis 0" in msg
    with pytest.raises(gr.ShapeError, match=r"need targets of shape \(3,\)"):
        gr.cross_entropy(t((3, 2)), np.array([0, 1]), axis=1)
    with pytest.raises(gr.ShapeError):
        gr.cross_entropy(t((3, 2)), np.array([[0, 1]]))


def test_cross_entropy_non_integer_targets():
    with pytest.raises(gr.InputError, match="integer class labels"):
        gr.cross_entropy(t((3, 2)), np.array([0.5, 1.0]))
    # whole-number floats are accepted as labels
    loss = gr.cross_entropy(np.zeros((3, 2)), np.array([0.0, 2.0]), reduction="sum")
    assert loss.item() == pytest.approx(2 * np.log(3))


def test_bad_reduction_is_named():
    with pytest.raises(ValueError, match=r"reduction.*'avg'"):
        gr.mse(t((2,)), t((2,)), reduction="avg")
    with pytest.raises(ValueError, match=r"reduction.*'total'"):
        gr.cross_entropy(t((3, 2)), [0, 1], reduction="total")
