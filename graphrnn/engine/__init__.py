"""A from-scratch reverse-mode autodiff engine over numpy, with graphs you can inspect."""

from .autograd import backward, backward_steps, grad, topological_order
from .functional import (
    add, argmax, bce_with_logits, concat, cross_entropy, div, exp, getitem, identity, log,
    log_softmax, matmul, mean, mse, mul, neg, one_hot, power, relu, reshape, sigmoid, softmax,
    stack, sub, sum, tanh, transpose,
)
from .gradcheck import gradcheck
from .graph import graph_of, node_kind
from .ops import REGISTRY, Op, op_names, unbroadcast
from .tensor import Tensor, apply, detect_anomaly, enable_grad, is_grad_enabled, no_grad

__all__ = [name for name in dir() if not name.startswith("_")]
