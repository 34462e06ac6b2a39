"""A tape: one equation traced once into the registry ops it applies, in order.

The compiled program (:mod:`.program`) replays tapes with numpy instead of building
engine nodes at every step.  A tape lists
``(op, operands, attrs)``; an operand is ``(kind, index)``: the output of an earlier op
(``OP``), a constant (``CONST``) or one of the tape's inputs (``"in"``), whose source
(a parameter, a context, a variable at an offset) the tracer recorded.

>>> import graphrnn as gr
>>> import numpy as np
>>> W, h = gr.Tensor(np.ones((2, 2))), gr.Tensor(np.ones((2, 1)))
>>> tape = Tape(gr.tanh(W @ h), {id(W): ("param", "W"), id(h): ("ref", "h", -1)})
>>> [op.name for op, _, _ in tape.ops], tape.inputs
(['matmul', 'tanh'], [('param', 'W'), ('ref', 'h', -1)])
"""

from __future__ import annotations

import numpy as np

from .. import engine as E
from ..engine.tensor import Tensor

# where an operand of a tape op comes from
OP, CONST, IN = 0, 3, "in"


class Tape:
    """One equation as a list of ops: ``(op, operands, attrs)``, each operand ``(kind, index)``."""

    def __init__(self, root: Tensor, sources: dict):
        self.inputs: list[tuple] = []  # sources of the PARENT-or-OWN operands, resolved per plan
        self.consts: list[np.ndarray] = []
        self.ops: list[tuple] = []
        index: dict[int, tuple] = {}
        order = E.topological_order(root, only_grad=False)
        for node in order:
            if id(node) in sources:
                index[id(node)] = (IN, len(self.inputs))
                self.inputs.append(sources[id(node)])
            elif node.op is None:
                index[id(node)] = (CONST, len(self.consts))
                self.consts.append(node.data)
            else:
                operands = tuple(index[id(p)] for p in node.parents)
                index[id(node)] = (OP, len(self.ops))
                self.ops.append((node.op, operands, node.attrs))
        self.root = index[id(root)]


def operand(o, outs, inputs, consts):
    """The value of operand ``o`` of a replayed tape."""
    kind, i = o
    if kind == OP:
        return outs[i]
    if kind == CONST:
        return consts[i]
    return inputs[i]
