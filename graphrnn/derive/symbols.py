"""The symbolic form of derived BPTT equations: one expression tree, simplified as it is built.

The nodes are what the book writes in §10.2.2: per-step values ``h^(t+1)``,
parameters ``W``, gradients ``∇_{h^(t)} L``, transposes, ``diag(·)``, matrix
products, elementwise products, ``ŷ − 1_y`` (eq. 10.18) and sums over steps.
Vectors are columns; a batch is a matrix of columns, and every formula reads
column by column (the book's formulas are those of one sequence).

Constructors (:func:`add`, :func:`matmul`, :func:`mul`, :func:`scale`, ...)
simplify as they build: ``1 · x = x``, ``(xᵀ)ᵀ = x``, ``0 + x = x``, constants
multiplied together, a sum of one term is that term.  Printers live in
:mod:`.printing`, numbers in :mod:`.numeric`; this module only builds trees.

>>> h = Var("h", Step("t", 1))
>>> e = matmul(transpose(Param("W")), matmul(diag(add(Num(1.0), scale(-1.0, power(h, 2)))), Grad("h", Step("t", 1))))
>>> from graphrnn.derive.printing import text
>>> text(e)
'Wᵀ diag(1 − (h(t+1))²) ∇h(t+1) L'
>>> text(shift(e, -1))
'Wᵀ diag(1 − (h(t))²) ∇h(t) L'
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


# --------------------------------------------------------------------------- steps


@dataclass(frozen=True)
class Step:
    """A step of the unrolled graph: ``t + offset`` (anchor ``"t"``), ``τ + offset`` (``"tau"``)
    or the plain number ``offset`` (anchor ``"0"``)."""

    anchor: str
    offset: int = 0

    def plus(self, k: int) -> "Step":
        return Step(self.anchor, self.offset + k)

    def at(self, t: "Step") -> "Step":
        """This step with the symbol t replaced by ``t``."""
        return Step(t.anchor, t.offset + self.offset) if self.anchor == "t" else self

    def value(self, t: int, T: int) -> int:
        """The concrete step for t = ``t`` and τ = ``T``."""
        return {"t": t, "tau": T, "0": 0}[self.anchor] + self.offset


T0 = Step("t")
TAU = Step("tau")


# --------------------------------------------------------------------------- nodes


class Node:
    """Base class of the expression tree (frozen dataclasses below)."""

    __slots__ = ()


@dataclass(frozen=True)
class Num(Node):
    value: float


@dataclass(frozen=True)
class Var(Node):
    """The value of per-step variable ``name`` at ``step`` (computed, data or fed)."""

    name: str
    step: Step


@dataclass(frozen=True)
class Param(Node):
    """A parameter (``W``), or a context input (``kind="context"``, fig. 10.9's x)."""

    name: str
    kind: str = "param"


@dataclass(frozen=True)
class Grad(Node):
    """∇_{name^(step)} L; for a loss variable, ∂L/∂L^(step) (eq. 10.17); ``step=None``: the
    gradient of a parameter (∇_W L)."""

    name: str
    step: Step | None
    loss: bool = False


@dataclass(frozen=True)
class JacobianT(Node):
    """(∂of/∂wrt)ᵀ: how eq. 10.20 writes one consumer's contribution, before it is worked out
    (printed only, never evaluated)."""

    of: Node
    wrt: Node


@dataclass(frozen=True)
class Func(Node):
    """A function of the notation applied to ``args``: tanh, sigmoid, relu, exp, log, softmax,
    log_softmax, argmax, sample, one_hot (``classes`` for one_hot), the losses, feed."""

    fn: str
    args: tuple
    classes: int | None = None


@dataclass(frozen=True)
class Prediction(Node):
    """ŷ = softmax(logits), named after the label ``target`` it predicts (eq. 10.18)."""

    target: Var
    logits: Node


@dataclass(frozen=True)
class OneHot(Node):
    """1_{y}: the one-hot column of class label ``label`` (eq. 10.18)."""

    label: Node
    classes: int


@dataclass(frozen=True)
class Positive(Node):
    """1[x > 0], elementwise: relu's derivative."""

    arg: Node


@dataclass(frozen=True)
class Transpose(Node):
    arg: Node


@dataclass(frozen=True)
class Diag(Node):
    """diag(x): the diagonal Jacobian of an elementwise map, acting column by column."""

    arg: Node


@dataclass(frozen=True)
class MatMul(Node):
    """``left right``; evaluated in the order built (diag(·) acts per column before a batch sum)."""

    left: Node
    right: Node


@dataclass(frozen=True)
class Mul(Node):
    """``left ⊙ right``, elementwise."""

    left: Node
    right: Node


@dataclass(frozen=True)
class Div(Node):
    """``left / right``, elementwise."""

    left: Node
    right: Node


@dataclass(frozen=True)
class Power(Node):
    arg: Node
    p: float


@dataclass(frozen=True)
class Scale(Node):
    """``k · arg`` for a number k."""

    k: float
    arg: Node


@dataclass(frozen=True)
class Add(Node):
    terms: tuple


@dataclass(frozen=True)
class SoftmaxVJP(Node):
    """(diag(s) − s sᵀ) g, column by column: softmax's Jacobian (symmetric) times g."""

    s: Node
    g: Node


@dataclass(frozen=True)
class LogSoftmaxVJP(Node):
    """g − softmax(x) (1ᵀ g), column by column: log_softmax's transposed Jacobian times g."""

    x: Node
    g: Node


@dataclass(frozen=True)
class StepSum(Node):
    """Σ_{t=lo}^{hi} body (body written in t); ``batch`` also sums over the sequences."""

    lo: Step
    hi: Step
    body: Node
    batch: bool = False


@dataclass(frozen=True)
class Only(Node):
    """``body`` only where ``step`` falls outside the steps 1..τ, else 0 (an Iverson bracket).

    ``before=True``: present when ``step`` ≤ 0, so ``Only(Step("tau", -2), b)`` is [τ ≤ 2] b,
    a term that exists only in runs of at most 2 steps (a last-step equation reading h[τ−2]
    then reads the initial value h(τ−2) = h0); ``before=False``: present when ``step`` ≥ τ + 1.
    Build it with :func:`only_outside`, which drops a condition that always or never holds.
    """

    step: Step
    body: Node
    before: bool = True

    def holds(self, t: int, T: int) -> bool:
        """Whether the term is present at t = ``t`` in a run of τ = ``T`` steps."""
        s = self.step.value(t, T)
        return s <= 0 if self.before else s >= T + 1


# --------------------------------------------------------------------------- traversal


def _node_fields(node):
    for f in fields(node):
        value = getattr(node, f.name)
        if isinstance(value, Node) or (isinstance(value, tuple) and value and isinstance(value[0], Node)):
            yield f.name, value


def children(node: Node) -> list[Node]:
    out = []
    for _, value in _node_fields(node):
        out.extend(value if isinstance(value, tuple) else (value,))
    return out


def walk(node: Node):
    """Every node of ``node``, parents before children."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(children(n)))


def rebuild(node: Node, fn) -> Node:
    """``node`` with every child ``c`` replaced by ``fn(c)`` (one level), re-simplified."""
    changes = {}
    for name, value in _node_fields(node):
        changes[name] = tuple(fn(v) for v in value) if isinstance(value, tuple) else fn(value)
    if not changes:
        return node
    return resimplify(replace(node, **changes))


def resimplify(node: Node) -> Node:
    """Apply the constructors' simplifications to a node whose children changed."""
    if isinstance(node, Add):
        return add(*node.terms)
    if isinstance(node, MatMul):
        return matmul(node.left, node.right)
    if isinstance(node, Mul):
        return mul(node.left, node.right)
    if isinstance(node, Scale):
        return scale(node.k, node.arg)
    if isinstance(node, Transpose):
        return transpose(node.arg)
    return node


def map_steps(node: Node, fn) -> Node:
    """``node`` with every step s (of values and gradients) replaced by ``fn(s)``; sums over steps
    bind their own t and are left as they are inside."""
    if isinstance(node, Var | Grad):
        return node if node.step is None else replace(node, step=fn(node.step))
    if isinstance(node, StepSum):
        return node
    if isinstance(node, Only):
        return only_outside(fn(node.step), map_steps(node.body, fn), node.before)
    return rebuild(node, lambda c: map_steps(c, fn))


def shift(node: Node, k: int) -> Node:
    """``node`` with t replaced by t + k (a consumer at step t reading u[t+r] is, seen from u's step,
    at t − r)."""
    return map_steps(node, lambda s: s.plus(k) if s.anchor == "t" else s)


def at(node: Node, t: Step) -> Node:
    """``node`` with t replaced by the step ``t`` (τ, τ − 1, 1, ...)."""
    return map_steps(node, lambda s: s.at(t))


def substitute(node: Node, fn) -> Node:
    """``node`` with each sub-node n replaced by ``fn(n)`` when that is not ``None`` (top-down)."""
    got = fn(node)
    if got is not None:
        return got
    return rebuild(node, lambda c: substitute(c, fn))


def gradients_in(node: Node) -> list[Grad]:
    """The gradients ``∇v^(s) L`` an expression reads."""
    return [n for n in walk(node) if isinstance(n, Grad)]


# --------------------------------------------------------------------------- constructors


ZERO = Num(0.0)
ONE = Num(1.0)


def is_num(node, value=None) -> bool:
    return isinstance(node, Num) and (value is None or node.value == value)


def add(*terms: Node) -> Node:
    """A sum; nested sums flatten, zeros drop, numbers combine."""
    flat: list[Node] = []
    constant = 0.0
    for t in terms:
        for u in (t.terms if isinstance(t, Add) else (t,)):
            if isinstance(u, Num):
                constant += u.value
            else:
                flat.append(u)
    flat = _common_gradient(_like_terms(flat))
    if constant != 0.0:
        flat.insert(0, Num(constant))  # the book writes 1 − h², the number first
    if not flat:
        return ZERO
    return flat[0] if len(flat) == 1 else Add(tuple(flat))


def _like_terms(terms: list) -> list:
    """x + x = 2 x: equal terms (up to a number factor) are added up, in the place of the first."""
    coefficients: dict = {}
    order = []
    for t in terms:
        k, inner = _split_scale(t)
        if inner not in coefficients:
            order.append(inner)
            coefficients[inner] = 0.0
        coefficients[inner] += k
    if len(order) == len(terms):
        return terms
    return [scale(coefficients[inner], inner) for inner in order if coefficients[inner] != 0.0]


def _diag_factor(t: Node):
    """``k diag(x) g`` -> (k x, g); else None."""
    k, inner = (t.k, t.arg) if isinstance(t, Scale) else (1.0, t)
    if isinstance(inner, MatMul) and isinstance(inner.left, Diag):
        return scale(k, inner.left.arg), inner.right
    return None


def _common_gradient(terms: list) -> list:
    """diag(a) g + diag(b) g = diag(a + b) g: the terms of one consumer that act on the same
    gradient are gathered (a GRU's update gate: diag(h(t−1) − n(t)) ∇h(t) L)."""
    groups: dict = {}
    for i, t in enumerate(terms):
        got = _diag_factor(t)
        if got is not None:
            groups.setdefault(got[1], []).append((i, got[0]))
    merged, skip = {}, set()
    for g, members in groups.items():
        if len(members) > 1:
            merged[members[0][0]] = MatMul(Diag(add(*(x for _, x in members))), g)
            skip |= {i for i, _ in members[1:]}
    return [merged.get(i, t) for i, t in enumerate(terms) if i not in skip]


def neg(x: Node) -> Node:
    return scale(-1.0, x)


def sub(a: Node, b: Node) -> Node:
    return add(a, neg(b))


def scale(k: float, x: Node) -> Node:
    if k == 1.0:
        return x
    if k == 0.0 or is_num(x, 0.0):
        return ZERO
    if isinstance(x, Num):
        return Num(k * x.value)
    if isinstance(x, Scale):
        return scale(k * x.k, x.arg)
    if isinstance(x, Add) and k == -1.0 and all(isinstance(t, Scale) for t in x.terms):
        return add(*(scale(-1.0, t) for t in x.terms))
    return Scale(k, x)


def _split_scale(x: Node) -> tuple[float, Node]:
    if isinstance(x, Scale):
        return x.k, x.arg
    return 1.0, x


def mul(a: Node, b: Node) -> Node:
    """Elementwise product; a number factor becomes a scale."""
    if isinstance(a, Num):
        return scale(a.value, b)
    if isinstance(b, Num):
        return scale(b.value, a)
    ka, a = _split_scale(a)
    kb, b = _split_scale(b)
    return scale(ka * kb, Mul(a, b))


def matmul(a: Node, b: Node) -> Node:
    """A matrix product; a number factor (a scalar gradient such as ∂L/∂L^(t) = 1) becomes a scale."""
    if isinstance(a, Num):
        return scale(a.value, b)
    if isinstance(b, Num):  # diag(v) k = k v: a diagonal Jacobian times a number (a scalar gradient)
        return scale(b.value, a.arg if isinstance(a, Diag) else a)
    ka, a = _split_scale(a)
    kb, b = _split_scale(b)
    return scale(ka * kb, MatMul(a, b))


def transpose(x: Node) -> Node:
    if isinstance(x, Transpose):
        return x.arg
    if isinstance(x, Num):
        return x
    if isinstance(x, Scale):
        return scale(x.k, transpose(x.arg))
    return Transpose(x)


def diag(x: Node) -> Node:
    return Diag(x)


def power(x: Node, p: float) -> Node:
    if p == 1:
        return x
    return Power(x, float(p))


def only_outside(step: Step, body: Node, before: bool = True) -> Node:
    """``body`` present only where ``step`` falls before step 1 (``before``) or after τ (see :class:`Only`);
    a condition that always holds gives ``body``, one that never holds 0.

    >>> from graphrnn.derive.printing import text
    >>> text(only_outside(Step("tau", -2), Var("h", Step("tau", -2))))
    '[τ ≤ 2] h(τ−2)'
    >>> only_outside(Step("tau", 1), Var("h", Step("tau", 1)), before=False)  # h(τ+1) is always after τ
    Var(name='h', step=Step(anchor='tau', offset=1))
    >>> only_outside(Step("tau", 0), Var("h", TAU))  # τ ≥ 1: never before the first step
    Num(value=0.0)
    """
    if is_num(body, 0.0):
        return ZERO
    if step.anchor == "0":
        return body if (step.offset <= 0) == before else ZERO
    if step.anchor == "tau":
        if before and step.offset >= 0:  # τ + k ≤ 0 never holds (τ ≥ 1)
            return ZERO
        if not before:  # τ + k ≥ τ + 1 holds exactly when k ≥ 1
            return body if step.offset >= 1 else ZERO
    return Only(step, body, before)


def div(a: Node, b: Node) -> Node:
    if isinstance(b, Num):
        return scale(1.0 / b.value, a)
    return Div(a, b)
