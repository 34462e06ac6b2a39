"""Shape inference for a recurrence: every variable's and every parameter's shape.

Per-step vectors are columns ``(n, B)`` (B, the batch, is symbolic); class labels
are ``(B,)`` with a number of classes; losses are numbers ``()``; parameters are
matrices ``(rows, cols)`` whose sizes are unknowns that the equations pin down:
``W @ h[t-1]`` fixes W's columns to h's rows; ``b + ...`` makes b a column
``(n, 1)`` broadcast over the batch.  Sizes are unified with a union-find; a
clash is a :class:`~graphrnn.errors.SpecError` naming the equation and both shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecError
from .spec import Bin, Call, Name, Num, Ref, Transpose, Unary

BATCH = "B"
ELEMENTWISE_FIX = ("; + - * / work entry by entry on equal shapes, so map one side through a matrix "
                   "(e.g. `M @ x[t]`) or change a declared size")


class Conflict(Exception):
    pass


class Dims:
    """A union-find over size unknowns; a class may carry a value (an int or BATCH)."""

    def __init__(self):
        self.parent: list[int] = []
        self.value: list = []
        self.param_dim: list[bool] = []

    def new(self, value=None, param: bool = False) -> int:
        self.parent.append(len(self.parent))
        self.value.append(value)
        self.param_dim.append(param)
        return len(self.parent) - 1

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:  # path compression
            self.parent[i], i = root, self.parent[i]
        return root

    def get(self, i: int):
        return self.value[self.find(i)]

    def is_param(self, i: int) -> bool:
        return self.param_dim[self.find(i)]

    def unify(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        va, vb = self.value[ra], self.value[rb]
        if va is not None and vb is not None and va != vb:
            raise Conflict(a, b)
        if (va == BATCH and self.param_dim[rb]) or (vb == BATCH and self.param_dim[ra]):
            raise Conflict(a, b)
        self.parent[rb] = ra
        self.value[ra] = va if va is not None else vb
        self.param_dim[ra] = self.param_dim[ra] or self.param_dim[rb]


@dataclass
class Shape:
    """``dims`` of an array (ids into :class:`Dims`), or a class label with ``classes``."""

    dims: tuple
    classes: int | None = None  # a dim id, for labels

    @property
    def is_label(self) -> bool:
        return self.classes is not None


class ShapeInference:
    """Infer the shapes of a recurrence's variables and parameters (see module doc)."""

    def __init__(self, source=None):
        self.dims = Dims()
        self.batch = self.dims.new(BATCH)
        self.one = self.dims.new(1)
        self.vars: dict[str, Shape] = {}
        self.params: dict[str, Shape] = {}
        self.source = source

    # -- constructors -------------------------------------------------------------------
    def const(self, n: int) -> int:
        return self.dims.new(n)

    def column(self, rows) -> Shape:
        return Shape((self.const(rows) if isinstance(rows, int) else self.dims.new(), self.batch))

    def label(self, classes: int) -> Shape:
        return Shape((self.batch,), classes=self.const(classes))

    def param(self, name: str, declared=None) -> Shape:
        if name not in self.params:
            if declared:
                self.params[name] = Shape(tuple(self.dims.new(d, param=True) for d in declared))
            else:
                self.params[name] = Shape((self.dims.new(param=True), self.dims.new(param=True)))
        return self.params[name]

    # -- display ------------------------------------------------------------------------
    def show(self, shape: Shape) -> str:
        if shape.is_label:
            k = self.dims.get(shape.classes)
            return f"class labels (of {k if k is not None else '?'} classes)"
        vals = [self.dims.get(d) for d in shape.dims]
        return "(" + ", ".join("?" if v is None else str(v) for v in vals) + ("," if len(vals) == 1 else "") + ")"

    def _error(self, node, message: str, variable: str | None = None) -> SpecError:
        return SpecError(message, node.line, node.col, variable=variable, source=self.source)

    # -- the rules ----------------------------------------------------------------------
    def unify_shapes(self, node, a: Shape, b: Shape, what: str) -> None:
        if a.is_label != b.is_label or len(a.dims) != len(b.dims):
            raise self._error(node, f"`{node.text}`: {what}: {self.show(a)} and {self.show(b)} do not fit")
        try:
            for da, db in zip(a.dims, b.dims):
                self.dims.unify(da, db)
            if a.is_label:
                self.dims.unify(a.classes, b.classes)
        except Conflict:
            raise self._error(node, f"`{node.text}`: {what}: {self.show(a)} and {self.show(b)} do not fit") from None

    def _array(self, node, shape: Shape, role: str) -> Shape:
        if shape.is_label:
            raise self._error(node, f"`{node.text}`: {role} is a class label, not a vector; feed it as a "
                                    f"vector with one_hot(...)")
        return shape

    def broadcast(self, node, a: Shape, b: Shape) -> Shape:
        """Elementwise ``a (op) b``: numpy broadcasting, where a parameter's size facing
        the batch becomes 1 (a bias is a column shared by every sequence)."""
        self._array(node.left, a, f"`{node.left.text}`")
        self._array(node.right, b, f"`{node.right.text}`")
        if not a.dims:
            return b
        if not b.dims:
            return a
        if len(a.dims) != len(b.dims):
            raise self._error(node, f"`{node.text}`: the shapes {self.show(a)} of `{node.left.text}` and "
                                    f"{self.show(b)} of `{node.right.text}` do not fit{ELEMENTWISE_FIX}")
        out = []
        try:
            for da, db in zip(a.dims, b.dims):
                va, vb = self.dims.get(da), self.dims.get(db)
                if va == BATCH and self.dims.is_param(db) and vb is None:
                    self.dims.unify(db, self.one)
                    out.append(da)
                elif vb == BATCH and self.dims.is_param(da) and va is None:
                    self.dims.unify(da, self.one)
                    out.append(db)
                elif va == 1 and vb != 1:
                    out.append(db)
                elif vb == 1 and va != 1:
                    out.append(da)
                else:
                    self.dims.unify(da, db)
                    out.append(da)
        except Conflict:
            raise self._error(node, f"`{node.text}`: the shapes {self.show(a)} of `{node.left.text}` and "
                                    f"{self.show(b)} of `{node.right.text}` do not fit{ELEMENTWISE_FIX}") from None
        return Shape(tuple(out))

    def infer(self, e, lookup) -> Shape:
        """The shape of expression ``e``; ``lookup(ref_or_name)`` gives a variable's shape."""
        if isinstance(e, Num):
            return Shape(())
        if isinstance(e, Name | Ref):
            return lookup(e)
        if isinstance(e, Unary):
            return self._array(e, self.infer(e.operand, lookup), f"`{e.operand.text}`")
        if isinstance(e, Transpose):
            s = self._array(e, self.infer(e.operand, lookup), f"`{e.operand.text}`")
            return Shape(tuple(reversed(s.dims)))
        if isinstance(e, Bin):
            a, b = self.infer(e.left, lookup), self.infer(e.right, lookup)
            if e.op == "@":
                self._array(e.left, a, f"`{e.left.text}`")
                self._array(e.right, b, f"`{e.right.text}`")
                if len(a.dims) != 2 or len(b.dims) != 2:
                    raise self._error(e, f"`{e.text}`: @ multiplies a matrix by a column; got shapes "
                                         f"{self.show(a)} and {self.show(b)} (use * to scale by a number)")
                try:
                    self.dims.unify(a.dims[1], b.dims[0])
                except Conflict:
                    raise self._error(e, f"`{e.text}`: cannot multiply `{e.left.text}` of shape {self.show(a)} "
                                         f"by `{e.right.text}` of shape {self.show(b)}: the inner sizes differ; "
                                         f"a parameter has one shape wherever it is used, so give this use its "
                                         f"own name, or fix its `param` declaration or the sizes") from None
                return Shape((a.dims[0], b.dims[1]))
            if e.op == "**":
                return self._array(e, a, f"`{e.left.text}`")
            return self.broadcast(e, a, b)
        if isinstance(e, Call):
            args = [self.infer(a, lookup) for a in e.args]
            fn = e.fn
            if fn in ("tanh", "sigmoid", "relu", "exp", "log", "softmax", "log_softmax"):
                return self._array(e, args[0], f"the argument of {fn}")
            if fn == "one_hot":
                if not args[0].is_label:
                    raise self._error(e, f"`{e.text}`: one_hot takes class labels (a `target ...: class K` "
                                         f"or an argmax), not {self.show(args[0])}")
                return Shape((args[0].classes, self.batch))
            if fn in ("argmax", "sample"):
                s = self._array(e, args[0], f"the argument of {fn}")
                if len(s.dims) != 2:
                    raise self._error(e, f"`{e.text}`: {fn} takes columns of scores, not {self.show(s)}")
                self.dims.unify(s.dims[1], self.batch)
                return Shape((self.batch,), classes=s.dims[0])
            if fn == "cross_entropy":
                logits, target = args
                self._array(e, logits, "the first argument of cross_entropy (the scores)")
                if not target.is_label:
                    raise self._error(e, f"`{e.text}`: cross_entropy compares scores with class labels; "
                                         f"`{e.args[1].text}` is a vector (declare it `target NAME: class K`, "
                                         f"or use mse)")
                if len(logits.dims) != 2:
                    raise self._error(e, f"`{e.text}`: cross_entropy needs columns of scores, got {self.show(logits)}")
                try:
                    self.dims.unify(logits.dims[0], target.classes)
                    self.dims.unify(logits.dims[1], self.batch)
                except Conflict:
                    raise self._error(e, f"`{e.text}`: scores of shape {self.show(logits)} do not fit "
                                         f"{self.show(target)}") from None
                return Shape(())
            if fn in ("mse", "bce_with_logits"):
                self.unify_shapes(e, self._array(e, args[0], "the prediction"), self._array(e, args[1], "the target"),
                                  f"{fn} compares two arrays of the same shape")
                return Shape(())
        raise self._error(e, f"`{e.text}` cannot be given a shape")  # unreachable for parsed specs

    def resolve(self, shape: Shape) -> tuple:
        return tuple(self.dims.get(d) for d in shape.dims)
