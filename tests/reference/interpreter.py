"""An independent interpreter of the notation, for the tests: the spec's text in, values out.

It shares no code with graphrnn (not even the parser): it reads the spec with Python's
``ast`` as docs/notation.md describes it, and evaluates ``value(v, s)`` - variable ``v`` at
step ``s`` - lazily, memoised.  A value asks for the values it reads, so forward,
backward-in-time (``g[t+1]``) and mixed recurrences need no schedule: whatever order the
references imply is the order of evaluation.  Unrolling bugs (a wrong delay, a wrong
boundary value, a wrong order) therefore show up as different numbers, not as the same
mistake made twice.

The array module is a parameter (:class:`NumpyOps`, :class:`TorchOps`), so the same
interpreter gives plain-numpy values and, on torch tensors, gradients by torch's autograd.

>>> import numpy as np
>>> spec = Spec("input x: 1\\nstate h: 1 = zero\\nh[t] = 0.5 * h[t-1] + x[t]\\n")
>>> run = spec.run({"x": np.ones((3, 1, 1))}, {}, T=3)
>>> [float(run.value("h", s)[0, 0]) for s in (0, 1, 2, 3)]
[0.0, 1.0, 1.5, 1.75]

What it covers: the declarations of the notation's table (``size``, ``input``, ``context``,
``target`` (class or vector), ``state``/``hidden`` with ``= zero``/``= learned``, ``init``,
``param``, ``loss``, ``feedback``), references ``x[t±k]`` and ``x[tau±k]``, equations defined at
every step or at the last only (``o[tau] = ...``), numbers, ``+ - * / @ **``, unary minus,
``.T`` and every function of the table.  What it leaves out: ``sample`` and scheduled
sampling (they need graphrnn's random stream), and the inference of sizes: a variable whose
value outside the steps is used must have its size declared (``state h: H``).
"""

from __future__ import annotations

import ast
import re
import sys
import unicodedata
from dataclasses import dataclass, field

import numpy as np

KEYWORDS = ("size", "input", "context", "target", "state", "hidden", "init", "param", "loss", "feedback", "title")
STEP = ("t",)
LAST = ("tau", "T", "τ")
ALIASES = {"onehot": "one_hot", "σ": "sigmoid"}
LOSS_FUNCTIONS = ("cross_entropy", "mse", "bce_with_logits")


class InterpreterError(Exception):
    """The spec uses something this reference does not interpret, or is inconsistent."""


# ------------------------------------------------------------------------------------ array modules


@dataclass
class Labels:
    """Class labels, one per sequence, with the number of classes they range over."""

    values: object  # an integer array of shape (B,)
    classes: int


class NumpyOps:
    """The notation's functions on numpy arrays (float64)."""

    def constant(self, a):
        return np.asarray(a)

    def labels(self, a):
        return np.asarray(a).astype(np.int64)

    def zeros(self, shape):
        return np.zeros(shape, dtype=np.float64)

    def zero_labels(self, batch):
        return np.zeros(batch, dtype=np.int64)

    def transpose(self, a):
        return a.T

    def tanh(self, a):
        return np.tanh(a)

    def sigmoid(self, a):
        e = np.exp(-np.abs(a))  # exp of a non-positive number: no overflow
        return np.where(a >= 0, 1.0 / (1.0 + e), e / (1.0 + e))

    def relu(self, a):
        return np.maximum(a, 0.0)

    def exp(self, a):
        return np.exp(a)

    def log(self, a):
        return np.log(a)

    def log_softmax(self, a):
        shifted = a - a.max(axis=0, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))

    def softmax(self, a):
        return np.exp(self.log_softmax(a))

    def pick(self, a, labels):
        """``a[labels[b], b]`` for every column b."""
        return a[labels, np.arange(a.shape[1])]

    def total(self, a):
        return a.sum()

    def bce_with_logits(self, s, z):
        return (np.maximum(s, 0.0) - s * z + np.log1p(np.exp(-np.abs(s)))).sum()

    def argmax(self, a):
        return a.argmax(axis=0)

    def one_hot(self, labels, classes):
        out = np.zeros((classes, labels.shape[0]))
        out[labels, np.arange(labels.shape[0])] = 1.0
        return out

    def detach(self, a):
        return a

    def stand_alone(self, a, batch):
        """The value of a variable, as an object of its own (see TorchOps), with a column per
        sequence: a per-step vector is ``(rows, B)`` (docs/notation.md) even when it does not
        depend on the sequence (``h[t] = tanh(W @ h[t-1])`` from a learned ``h0``)."""
        if isinstance(a, np.ndarray) and a.ndim == 2 and a.shape[1] != batch:
            a = np.broadcast_to(a, (a.shape[0], batch)).copy()
        return a


class TorchOps:
    """The same functions on torch tensors (float64): gradients come from torch's autograd.

    Every variable's value is a node of its own that keeps its gradient (``retain_grad``),
    so after ``loss.backward()`` ``value.grad`` is the total derivative dL/dv[s]."""

    def __init__(self):
        import torch

        self.torch = torch

    def constant(self, a):
        return self.torch.as_tensor(np.asarray(a, dtype=np.float64))

    def labels(self, a):
        return self.torch.as_tensor(np.asarray(a).astype(np.int64))

    def zeros(self, shape):
        return self.torch.zeros(shape, dtype=self.torch.float64)

    def zero_labels(self, batch):
        return self.torch.zeros(batch, dtype=self.torch.int64)

    def transpose(self, a):
        return a.transpose(0, 1)

    def tanh(self, a):
        return self.torch.tanh(a)

    def sigmoid(self, a):
        return self.torch.sigmoid(a)

    def relu(self, a):
        return self.torch.relu(a)

    def exp(self, a):
        return self.torch.exp(a)

    def log(self, a):
        return self.torch.log(a)

    def log_softmax(self, a):
        return self.torch.log_softmax(a, dim=0)

    def softmax(self, a):
        return self.torch.softmax(a, dim=0)

    def pick(self, a, labels):
        return a[labels, self.torch.arange(a.shape[1])]

    def total(self, a):
        return a.sum()

    def bce_with_logits(self, s, z):
        s, z = self.torch.broadcast_tensors(s, z)
        return self.torch.nn.functional.binary_cross_entropy_with_logits(s, z, reduction="sum")

    def argmax(self, a):
        return a.detach().argmax(dim=0)

    def one_hot(self, labels, classes):
        return self.torch.nn.functional.one_hot(labels, classes).T.to(self.torch.float64)

    def detach(self, a):
        return a.detach() if hasattr(a, "detach") else a

    def stand_alone(self, a, batch):
        if isinstance(a, self.torch.Tensor) and a.dim() == 2 and a.shape[1] != batch:
            a = a.expand(a.shape[0], batch)
        if getattr(a, "requires_grad", False):
            a = a.clone()  # a node of its own even when the equation is a bare reference (h[t] = g[t])
            a.retain_grad()
        return a


# ------------------------------------------------------------------------------------ the spec


@dataclass
class Equation:
    name: str
    anchor: str  # "t": every step; "tau": the last step only
    expr: ast.AST
    text: str


@dataclass
class Spec:
    """A spec read from its text.  ``sizes`` overrides the ``size`` lines."""

    text: str
    sizes: dict = field(default_factory=dict)

    def __post_init__(self):
        overrides, self.sizes = dict(self.sizes), {}
        self.inputs, self.contexts, self.targets, self.states = {}, {}, {}, {}
        self.inits, self.declared_params, self.losses = {}, {}, []
        self.feedbacks: dict[str, Equation] = {}
        self.equations: dict[str, Equation] = {}
        for line in re.split(r"\r\n|\r|\n", self.text.lstrip("\ufeff")):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            head = line.split(None, 1)[0]
            if head in KEYWORDS and line[len(head):len(head) + 1] not in ("[", "="):
                self._declaration(head, line[len(head):].strip())
            else:
                eq = _equation(line)
                if eq.name in self.equations:
                    raise InterpreterError(f"{eq.name} is defined twice")
                self.equations[eq.name] = eq
        self.sizes.update(overrides)
        if not self.losses and "L" in self.equations:
            self.losses = ["L"]

    def _declaration(self, keyword: str, rest: str) -> None:
        if keyword == "title":
            return
        if keyword == "size":
            for item in filter(None, (s.strip() for s in rest.split(","))):
                name, value = (s.strip() for s in item.split("="))
                self.sizes[_nfkc(name)] = int(value)
        elif keyword in ("input", "context", "state", "hidden", "param"):
            name, body = (s.strip() for s in rest.split(":", 1))
            name = _nfkc(name)
            if keyword == "param":
                dims = [d for d in re.split(r"\s*[x×,]\s*", body) if d]
                self.declared_params[name] = tuple(dims) if len(dims) == 2 else (dims[0], "1")
                return
            size, _, init = body.partition("=")
            {"input": self.inputs, "context": self.contexts}.get(keyword, self.states)[name] = size.strip()
            if init.strip():
                self.inits[name] = _init_word(init)
        elif keyword == "target":
            name, body = (s.strip() for s in rest.split(":", 1))
            parts = body.split()
            self.targets[_nfkc(name)] = ("class", parts[1]) if parts[0] == "class" else ("vector", body)
        elif keyword == "init":
            name, _, value = rest.partition("=")
            self.inits[_nfkc(name.strip())] = _init_word(value)
        elif keyword == "loss":
            self.losses += [_nfkc(s.strip()) for s in rest.split(",") if s.strip()]
        elif keyword == "feedback":
            eq = _equation(rest)
            self.feedbacks[eq.name] = eq

    # -------------------------------------------------------------------- derived facts

    def size(self, token) -> int:
        token = str(token).strip()
        return int(token) if token.isdigit() else self.sizes[_nfkc(token)]

    def variables(self) -> set[str]:
        return set(self.inputs) | set(self.contexts) | set(self.targets) | set(self.states) | set(self.equations)

    def parameters(self) -> list[str]:
        """The bare names of the equations (contexts aside) and the declared parameters."""
        names = list(self.declared_params)
        for eq in [*self.equations.values(), *self.feedbacks.values()]:
            for name in _bare_names(eq.expr):
                if name not in self.contexts and name not in names:
                    names.append(name)
        return names

    def learned(self) -> dict[str, str]:
        """Variable -> the parameter holding its learned initial value: ``h`` -> ``h0`` (with ``_``
        appended while that name is taken), as docs/notation.md names it."""
        taken = set(self.parameters()) | self.variables()
        out = {}
        for name, how in self.inits.items():
            if how == "learned" and name in self.equations:
                pname = f"{name}0"
                while pname in taken:
                    pname += "_"
                out[name] = pname
        return out

    def all_parameters(self) -> list[str]:
        return self.parameters() + list(self.learned().values())

    def run(self, data, params, T: int, mode: str = "teacher", ops=None) -> "Run":
        """Bind data and parameters for a ``T``-step unroll (nothing is computed before it is asked)."""
        return Run(self, data, params, T, mode, ops or NumpyOps())


def _nfkc(name: str) -> str:
    return unicodedata.normalize("NFKC", name)  # as Python normalises identifiers in the equations


def _init_word(value: str) -> str:
    value = value.strip()
    if value in ("zero", "zeros", "0"):
        return "zero"
    if value == "learned":
        return "learned"
    raise InterpreterError(f"unknown initial value {value!r}")


def _bare_names(node: ast.AST):
    """The names used bare (not indexed by a step, not called), left to right."""
    if isinstance(node, ast.Name):
        yield node.id
    elif isinstance(node, ast.Call):
        for arg in node.args:
            yield from _bare_names(arg)
    elif not isinstance(node, ast.Subscript):
        for child in ast.iter_child_nodes(node):
            yield from _bare_names(child)


def _step(node: ast.AST) -> tuple[str, int]:
    """``t``, ``t-2``, ``tau+1``, ... -> (anchor, offset)."""
    def anchor(n):
        if isinstance(n, ast.Name):
            return "t" if n.id in STEP else "tau" if n.id in LAST else None
        return None

    if anchor(node):
        return anchor(node), 0
    if isinstance(node, ast.BinOp) and anchor(node.left) and isinstance(node.right, ast.Constant):
        k = int(node.right.value)
        if isinstance(node.op, ast.Add):
            return anchor(node.left), k
        if isinstance(node.op, ast.Sub):
            return anchor(node.left), -k
    raise InterpreterError(f"cannot read the step {ast.unparse(node)!r}")


def _equation(text: str) -> Equation:
    tree = ast.parse(text)
    (assign,) = tree.body
    (target,) = assign.targets
    anchor, offset = _step(target.slice)
    if offset:
        raise InterpreterError(f"an equation defines {target.value.id}[t] or [tau], not {ast.unparse(target)}")
    return Equation(target.value.id, anchor, assign.value, text)


# ------------------------------------------------------------------------------------ evaluation


class Run:
    """One unroll: ``value(name, s)`` computes (once) and returns variable ``name`` at step ``s``.

    ``data`` maps inputs and targets to arrays stacked over steps 1, 2, ... on axis 0 (labels
    ``(steps, B)``, vectors ``(steps, rows, B)``) and contexts to ``(rows, B)``; ``params``
    maps every parameter to an array of the ops' kind.  In ``mode="free"`` the input uses of
    a variable with a ``feedback`` line read that line's value (without gradient) at steps
    1..T and the variable's initial value outside them.
    """

    def __init__(self, spec: Spec, data, params, T: int, mode: str, ops):
        if mode not in ("teacher", "free"):
            raise InterpreterError(f"mode {mode!r} is not interpreted (scheduled sampling needs graphrnn's RNG)")
        self.spec, self.T, self.mode, self.ops = spec, T, mode, ops
        self.params = dict(params)
        self.learned = spec.learned()
        missing = set(spec.all_parameters()) - set(self.params)
        if missing:
            raise InterpreterError(f"parameters not given: {sorted(missing)}")
        self.data = {}
        for name, array in data.items():
            if name in spec.targets and spec.targets[name][0] == "class":
                self.data[name] = ops.labels(array)
            else:
                self.data[name] = ops.constant(array)
        self.batch = next(np.shape(a)[-1] for a in data.values())
        self.memo: dict[tuple[str, int], object] = {}
        self.fed: dict[int, object] = {}
        self._busy: set = set()

    # -------------------------------------------------------------------- public

    def value(self, name: str, s: int):
        """Variable ``name`` at step ``s`` (computed, data, or the value outside the steps)."""
        key = (name, s)
        if key in self.memo:
            return self.memo[key]
        eq = self.spec.equations.get(name)
        if eq is not None and self.defined_at(name, s):
            if key in self._busy:
                raise InterpreterError(f"{name}[{s}] needs itself: an algebraic loop")
            self._busy.add(key)
            limit = sys.getrecursionlimit()
            sys.setrecursionlimit(max(limit, 20_000))  # a long chain of lazy references recurses deeply
            try:
                got = self.ops.stand_alone(self._eval(eq.expr, s), self.batch)
            finally:
                sys.setrecursionlimit(limit)
                self._busy.discard(key)
        elif eq is not None:
            got = self._outside(name)
        else:
            got = self._data(name, s)
        self.memo[key] = got
        return got

    def defined_at(self, name: str, s: int) -> bool:
        return s == self.T if self.spec.equations[name].anchor == "tau" else 1 <= s <= self.T

    def steps(self, name: str) -> range:
        return range(self.T, self.T + 1) if self.spec.equations[name].anchor == "tau" else range(1, self.T + 1)

    def computed(self) -> dict[str, object]:
        """Every computed variable at every step where its equation defines it, by ``"h[3]"``."""
        return {f"{name}[{s}]": self.value(name, s) for name in self.spec.equations for s in self.steps(name)}

    def loss(self):
        """The sum over the loss variables and over their steps (eq. 10.13)."""
        total = 0.0
        for name in self.spec.losses:
            for s in self.steps(name):
                total = total + self.value(name, s)
        return total

    # -------------------------------------------------------------------- values outside the equations

    def _outside(self, name: str):
        """The value of computed variable ``name`` before step 1 or after the last: its initial value."""
        how = self.spec.inits.get(name, "zero")
        if how == "learned":
            return self.params[self.learned[name]]
        if name not in self.spec.states:
            raise InterpreterError(f"{name} is read outside the steps; the interpreter needs `state {name}: SIZE`")
        return self.ops.zeros((self.spec.size(self.spec.states[name]), self.batch))

    def _data(self, name: str, s: int):
        spec = self.spec
        if name in spec.contexts:
            return self.data[name]
        if name not in self.data:
            raise InterpreterError(f"no data for {name}")
        series = self.data[name]
        label = name in spec.targets and spec.targets[name][0] == "class"
        if 1 <= s <= series.shape[0]:
            got = series[s - 1]
        elif name in spec.inits and not 1 <= s <= self.T:
            got = self._zero_of(name)
        else:
            raise InterpreterError(f"{name}[{s}] is outside the data (steps 1..{series.shape[0]})")
        return Labels(got, spec.size(spec.targets[name][1])) if label else got

    def _zero_of(self, name: str):
        spec = self.spec
        if name in spec.targets and spec.targets[name][0] == "class":
            return self.ops.zero_labels(self.batch)  # class 0: a start symbol
        rows = spec.inputs.get(name) or spec.states.get(name) or spec.targets[name][1]
        return self.ops.zeros((spec.size(rows), self.batch))

    def _fed(self, name: str, s: int):
        """Free-running mode's stand-in for ``name`` at step ``s``: the feedback line, without gradient."""
        if (name, s) not in self.fed:
            if 1 <= s <= self.T:
                got = self._eval(self.spec.feedbacks[name].expr, s)
                got = Labels(self.ops.detach(got.values), got.classes) if isinstance(got, Labels) else \
                    self.ops.detach(got)
            else:
                zero = self._zero_of(name)
                label = name in self.spec.targets and self.spec.targets[name][0] == "class"
                got = Labels(zero, self.spec.size(self.spec.targets[name][1])) if label else zero
            self.fed[(name, s)] = got
        return self.fed[(name, s)]

    # -------------------------------------------------------------------- expressions

    def _eval(self, node: ast.AST, t: int, target_slot: bool = False):
        """The value of expression ``node`` at step ``t``; ``target_slot``: inside a loss's target
        argument, where free-running mode still reads the truth."""
        ops, slot = self.ops, target_slot
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id in self.spec.contexts:
                return self.data[node.id]
            return self.params[node.id]
        if isinstance(node, ast.Subscript):
            name = node.value.id
            anchor, offset = _step(node.slice)
            s = (t if anchor == "t" else self.T) + offset
            if self.mode == "free" and name in self.spec.feedbacks and not target_slot:
                return self._fed(name, s)
            return self.value(name, s)
        if isinstance(node, ast.UnaryOp):
            a = self._eval(node.operand, t, slot)
            return -a if isinstance(node.op, ast.USub) else a
        if isinstance(node, ast.Attribute) and node.attr == "T":
            return ops.transpose(self._eval(node.value, t, slot))
        if isinstance(node, ast.BinOp):
            a, b = self._eval(node.left, t, slot), self._eval(node.right, t, slot)
            op = type(node.op)
            if op is ast.Add:
                return a + b
            if op is ast.Sub:
                return a - b
            if op is ast.Mult:
                return a * b
            if op is ast.Div:
                return a / b
            if op is ast.MatMult:
                return a @ b
            if op is ast.Pow:
                return a ** b
        if isinstance(node, ast.Call):
            return self._call(ALIASES.get(node.func.id, node.func.id), node.args, t, slot)
        raise InterpreterError(f"not part of the notation: {ast.unparse(node)}")

    def _call(self, fn: str, args, t: int, slot: bool):
        ops = self.ops
        if fn in LOSS_FUNCTIONS:
            a, b = self._eval(args[0], t, slot), self._eval(args[1], t, target_slot=True)
            if fn == "cross_entropy":  # eqs. 10.11-10.12, summed over the batch
                return -ops.total(ops.pick(ops.log_softmax(a), b.values))
            if fn == "mse":  # the mean over a column's entries, summed over the batch
                d = a - b
                return ops.total(d * d) / d.shape[0]
            return ops.bce_with_logits(a, b)
        x = self._eval(args[0], t, slot)
        if fn == "one_hot":
            return ops.one_hot(x.values, x.classes)
        if fn == "argmax":
            return Labels(ops.argmax(x), x.shape[0])
        if fn in ("tanh", "sigmoid", "relu", "exp", "log", "softmax", "log_softmax"):
            return getattr(ops, fn)(x)
        raise InterpreterError(f"{fn} is not interpreted (sample needs graphrnn's random stream)")
