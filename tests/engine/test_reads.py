"""Each op's declaration of what its VJP reads is truthful.

An evaluator may release the values a VJP does not read (graphrnn's fast path
does), so a wrong declaration would give silently wrong gradients.  Here every
op's VJP is run twice: on the real values, and with every value it claims not to
read replaced by NaNs of the same shape; the gradients must be identical.
"""

import numpy as np
import pytest

from graphrnn.engine.ops import REGISTRY

RNG = np.random.default_rng(0)

# op name -> (arguments, attributes); positive values so that log and pow are defined
CASES = {
    "add": ([(3, 4), (4,)], {}), "sub": ([(3, 4), (3, 1)], {}), "mul": ([(3, 4), (3, 4)], {}),
    "div": ([(3, 4), (3, 4)], {}), "neg": ([(3, 4)], {}), "pow": ([(3, 4)], {"p": 3.0}),
    "powt": ([(3, 4), (3, 4)], {}), "matmul": ([(3, 4), (4, 2)], {}), "transpose": ([(3, 4)], {}),
    "sum": ([(3, 4)], {"axis": 0}), "mean": ([(3, 4)], {"axis": 1, "keepdims": True}),
    "reshape": ([(3, 4)], {"shape": (2, 6)}), "getitem": ([(3, 4)], {"index": (slice(1, 3), 2)}),
    "concat": ([(3, 4), (2, 4)], {"axis": 0}), "stack": ([(3, 4), (3, 4)], {"axis": 1}),
    "identity": ([(3, 4)], {}), "exp": ([(3, 4)], {}), "log": ([(3, 4)], {}), "tanh": ([(3, 4)], {}),
    "sigmoid": ([(3, 4)], {}), "relu": ([(3, 4)], {}), "softmax": ([(3, 4)], {"axis": 0}),
    "log_softmax": ([(3, 4)], {"axis": 0}), "mse": ([(3, 4), (3, 4)], {"reduction": "sum"}),
    "bce_with_logits": ([(3, 4), (3, 4)], {"reduction": "mean"}),
    "one_hot": ([(5,)], {"classes": 3}),
}


def _arrays(name, shapes):
    arrays = [RNG.uniform(0.5, 2.0, size=s) for s in shapes]
    if name == "relu":
        arrays[0] -= 1.25  # both signs
    if name == "bce_with_logits":
        arrays[1] = RNG.integers(0, 2, size=shapes[1]).astype(float)
    return arrays


def _dense(g):
    return None if g is None else np.asarray(g)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_vjp_reads_only_what_it_declares(name):
    op = REGISTRY[name]
    if name == "cross_entropy":
        args = [RNG.standard_normal((4, 3)), np.array([0, 3, 1])]
        attrs = {"axis": 0, "reduction": "sum"}
    else:
        shapes, attrs = CASES[name]
        args = _arrays(name, shapes)
    out, saved = op.forward(*args, **attrs)
    g = RNG.standard_normal(np.shape(out))
    need = tuple(True for _ in args)
    expected = [_dense(x) for x in op.vjp(g, out, tuple(args), need, saved, attrs)]
    poisoned_args = tuple(a if op.reads_arg(i) else np.full(np.shape(a), np.nan) for i, a in enumerate(args))
    poisoned_out = out if op.reads_out else np.full(np.shape(out), np.nan)
    got = [_dense(x) for x in op.vjp(g, poisoned_out, poisoned_args, need, saved, attrs)]
    for e, r in zip(expected, got):
        if e is None:
            assert r is None
        else:
            np.testing.assert_array_equal(r, e)


def test_every_op_has_a_case():
    assert set(REGISTRY) - {"cross_entropy"} == set(CASES)
