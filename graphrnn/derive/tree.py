"""Back-propagation through structure (§10.6, fig. 10.14), derived from a recursive network's spec.

A recursive network's gradients run down the tree as BPTT runs back in time.  For a
variable u kept at every tree node n (``h[leaf]``, ``h[node]``), ∇u(n) L is the sum of
the terms of u's consumers (eq. 10.20): those at the same node (a gate ``a[node]`` read
by ``h[node]``), those of n's parent p, which read u as ``u[left]`` when n is p's left
child and as ``u[right]`` when it is the right one, and those of the root equations
(``o = c + R @ h[root]``) when n is the root.  Each term is worked out by derive's own
rules (:mod:`graphrnn.derive.rules`) from the spec's equations, so fig. 10.14 gives

    ∇h(n) L = Uᵀ diag(1 − (h(p))²) ∇h(p) L    if n is the left child of p
    ∇h(n) L = Wᵀ diag(1 − (h(p))²) ∇h(p) L    if n is the right child of p

and a parameter's gradient is the sum of its dummy copies' terms (§10.2.2), one copy per
tree node that uses it: ∇U L = Σ_{internal n} diag(1 − (h(n))²) ∇h(n) L h(left(n))ᵀ.

Places are written relative to the node n of the equation: ``p`` its parent,
``left(n)`` and ``right(n)`` its children, ``left(p)``/``right(p)`` its sibling, ``root``
the tree's root; a value with no place (``o``, ``y``) is one per tree.

:meth:`TreeDerivation.evaluate` computes every gradient from these equations with numpy,
from a run's forward values, its data and its parameters (no engine VJP): an independent
check of :func:`graphrnn.runtime.tree.run_tree`.

>>> import graphrnn as gr
>>> d = derive_tree(gr.zoo.load_tree("fig10_14"))
>>> for eq in d.for_variable("h"):
...     print(eq.text())
∇h(n) L = Rᵀ ∇o L    if n is the root
∇h(n) L = Uᵀ diag(1 − (h(p))²) ∇h(p) L    if n is the left child of p
∇h(n) L = Wᵀ diag(1 − (h(p))²) ∇h(p) L    if n is the right child of p
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace

import numpy as np

from ..recurrence.spec import LOSSES, Bin, Call, Name, Num, Ref, Transpose, Unary
from . import symbols as S
from .derivation import DeriveError, _Info
from .numeric import _Evaluator, unbroadcast
from .printing import _PRODUCT, _SUM, LatexPrinter, TextPrinter, _latex_name, _latex_text
from .rules import NO_GRADIENT_REASONS, NONE, RULES

# ------------------------------------------------------------------------------------------ places


@dataclass(frozen=True)
class Place:
    """Where a value sits, relative to the node n an equation is written for (see the module doc);
    ``""``: one value per tree (``o``, ``y``, ``L``)."""

    label: str


N, P = Place("n"), Place("p")
LEFT, RIGHT = Place("left(n)"), Place("right(n)")
ROOT, TREE = Place("root"), Place("")

#: a child's view of its parent's terms: n's places seen from the child that the parent reads
_FROM_CHILD = {
    "left": {N: P, LEFT: N, RIGHT: Place("right(p)")},
    "right": {N: P, LEFT: Place("left(p)"), RIGHT: N},
}
#: the place a reference names, by its anchor
_ANCHOR = {"leaf": N, "node": N, "left": LEFT, "right": RIGHT, "root": ROOT}
#: a tree node's position, as the cases of an equation are written
POSITIONS = ("root", "left", "right")
_POSITION_TEXT = {"root": "n is the root", "left": "n is the left child of p", "right": "n is the right child of p"}
_KIND_TEXT = {"leaf": "a leaf", "node": "an internal node"}


@dataclass(frozen=True)
class NodeSum(S.Node):
    """Σ over the tree's leaves (``over="leaf"``) or internal nodes (``"node"``) of ``body``, written in n."""

    over: str
    body: S.Node


def relabel(node: S.Node, mapping: dict) -> S.Node:
    """``node`` with each place replaced as ``mapping`` says (sums over nodes keep their own n)."""
    if isinstance(node, NodeSum):
        return node
    if isinstance(node, S.Var | S.Grad):
        return node if node.step is None else replace(node, step=mapping.get(node.step, node.step))
    return S.rebuild(node, lambda c: relabel(c, mapping))


# ------------------------------------------------------------------------------------------ equations


@dataclass
class TreeTerm:
    """One consumer's contribution to ∇u(n) L, written in n.

    ``consumer`` is the variable whose equation reads u, ``place`` that equation's place
    (``"leaf"``, ``"node"``, ``"root"``), ``anchor`` how it reads u (``"node"``, ``"left"``, ...).
    """

    expr: S.Node
    consumer: str
    place: str
    anchor: str
    use: str


@dataclass
class TreeEquation:
    """``lhs = rhs`` where ``cases`` holds: kind ``"loss"``, ``"variable"``, ``"parameter"`` or ``"copy"``.

    ``cases`` is a list of (kind of n, position of n) pairs: ``("node", "left")`` is an
    internal node that is its parent's left child; the equation prints them as a condition.
    """

    kind: str
    name: str
    lhs: S.Node
    rhs: S.Node
    terms: list = field(default_factory=list)
    cases: list = field(default_factory=list)
    condition: str = ""
    number: int | None = None
    note: str | None = None
    shown: bool = True  # a parameter used only at the root has one copy, itself: its copy is not printed

    def text(self) -> str:
        return TreeTextPrinter().equation(self)

    def latex(self) -> str:
        return TreeLatexPrinter().equation(self)

    def __str__(self) -> str:
        return self.text()


def _condition(cases: list, kinds: list) -> str:
    """The condition under which an equation holds, in words."""
    positions = sorted({p for _, p in cases}, key=POSITIONS.index)
    ks = sorted({k for k, _ in cases}, key=("leaf", "node").index)
    every_kind = ks == kinds
    if len(positions) == len(POSITIONS):
        if every_kind and len(kinds) > 1:
            return "for every node n"
        return f"for every {'leaf' if ks == ['leaf'] else 'internal node'} n"
    text = " or ".join(_POSITION_TEXT[p] for p in positions)
    if not every_kind:
        text += f" (n {_KIND_TEXT[ks[0]]})"
    return "if " + text


# ------------------------------------------------------------------------------------------ the derivation


class TreeDerivation:
    """The derived back-propagation through structure of a recursive network (see the module doc).

    ``equations``: the losses, the per-tree variables (``o``) from the loss back, each per-node
    variable's cases, the parameters (sums over the tree's nodes) and their dummy copies.
    """

    def __init__(self, rec, equations: list, var_terms: dict, remarks: list | None = None):
        self.rec, self.equations, self.var_terms = rec, equations, var_terms
        #: where no gradient flows (a one_hot or argmax in an equation), in words
        self.remarks = remarks or []

    def for_variable(self, name: str) -> list:
        """The equations of variable or parameter ``name`` (a parameter's: its sum, then its copies)."""
        out = [eq for eq in self.equations if eq.name == name]
        if not out:
            known = sorted({eq.name for eq in self.equations})
            raise DeriveError(f"{name!r} has no derived equation in {self.rec.name} (it has: {', '.join(known)})")
        return out

    def equation_for(self, name: str, kind: str | None = None, position: str | None = None) -> TreeEquation:
        """The equation of ``name`` at a node of ``kind`` (``"leaf"``/``"node"``) in ``position``
        (``"root"``, ``"left"``, ``"right"``); for a parameter or a per-tree value: its equation."""
        eqs = [eq for eq in self.for_variable(name) if eq.kind != "copy"]
        if not eqs[0].cases:
            return eqs[0]
        for eq in eqs:
            if any((kind is None or k == kind) and (position is None or p == position) for k, p in eq.cases):
                return eq
        raise DeriveError(f"no equation of {name!r} covers a {kind} node in position {position}")

    # ------------------------------------------------------------------ output
    def text(self) -> str:
        """The derivation in Unicode text (what ``graphrnn derive fig10_14`` prints)."""
        return TreeTextPrinter().derivation(self)

    def latex(self) -> str:
        """An amsmath ``align`` environment, one numbered line per equation."""
        return TreeLatexPrinter().derivation(self)

    def markdown(self) -> str:
        """Markdown with each equation as ``$$`` math."""
        return tree_markdown(self)

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return f"<TreeDerivation of {self.rec.name}: {len(self.equations)} equations>"

    # ------------------------------------------------------------------ numbers
    def evaluate(self, run, data: dict | None = None, params: dict | None = None) -> TreeGradients:
        """Every gradient of tree run ``run`` from these equations with numpy.

        Reads the run's forward values (``run.values``), the ``data`` and ``params`` it was run
        with (``run.data``/``run.params`` where the run keeps them), and nothing of the engine's
        backward pass.  Returns a :class:`TreeGradients`: keyed as ``run.node_grads`` and
        ``run.grads`` are (``"h[1..2]"``, ``"o"``, ``"L"``, ``"W"``), with ``.copies[P][node]``
        as ``run.copy_grads``.
        """
        data = data if data is not None else getattr(run, "data", None)
        params = params if params is not None else getattr(run, "params", None)
        if data is None or params is None:
            raise DeriveError("evaluate(run, data, params): give the data and the parameters the run was made "
                              "with (a TreeRun made by RecursiveNet.run keeps both)")
        return _TreeNumbers(self, run, data, params).compute()


class TreeGradients(dict):
    """Gradients keyed as a :class:`~graphrnn.runtime.tree.TreeRun`'s (node values and parameters);
    ``copies[P][node]`` the dummy copies' terms (``"root"`` for the root equations')."""

    def __init__(self):
        super().__init__()
        self.copies: dict = {}


# ------------------------------------------------------------------------------------------ building


class _Builder:
    """Walks back through every equation of a tree spec with derive's rules (as derivation._Builder
    does through a recurrence's)."""

    def __init__(self, rec):
        self.rec = rec
        spec = rec.spec
        self.params = set(rec.param_shapes)
        self.root_names = [eq.name for eq in rec.order("root")]
        self.node_names = list(dict.fromkeys(eq.name for eq in spec.equations if eq.place != "root"))
        self.defined = {n: [p for p in ("leaf", "node") if (n, p) in rec.equations] for n in self.node_names}
        self.var_terms: dict[str, list[TreeTerm]] = {}
        self.param_terms: dict[str, dict[str, S.Node]] = {}  # P -> place -> its copy's term, in n
        self.no_gradient: list[str] = []

    # ------------------------------------------------------------------ symbols of the forward pass
    def forward(self, e) -> S.Node:
        if isinstance(e, Num):
            return S.Num(e.value)
        if isinstance(e, Name):
            return S.Param(e.name) if e.name in self.params else S.Var(e.name, TREE)
        if isinstance(e, Ref):
            return S.Var(e.name, _ANCHOR[e.anchor])
        if isinstance(e, Unary):
            x = self.forward(e.operand)
            return S.neg(x) if e.op == "-" else x
        if isinstance(e, Transpose):
            return S.transpose(self.forward(e.operand))
        if isinstance(e, Bin):
            a = self.forward(e.left)
            if e.op == "**":
                return S.power(a, e.right.value)
            b = self.forward(e.right)
            return {"+": S.add, "-": S.sub, "*": S.mul, "/": S.div, "@": S.matmul}[e.op](a, b)
        if isinstance(e, Call):
            args = tuple(self.forward(a) for a in e.args)
            return S.Func(e.fn, args, self.classes(args[0]) if e.fn == "one_hot" else None)
        raise DeriveError(f"cannot read {e!r}")

    def rows(self, node) -> int:
        if isinstance(node, S.Var):
            return self.rec.var_shapes[node.name][0]
        if isinstance(node, S.Param):
            return self.rec.param_shapes[node.name][0]
        if isinstance(node, S.Transpose) and isinstance(node.arg, S.Param):
            return self.rec.param_shapes[node.arg.name][1]
        if isinstance(node, S.MatMul):
            return self.rows(node.left)
        if isinstance(node, S.Func) and node.fn == "one_hot":
            return node.classes
        for c in S.children(node):
            if not isinstance(c, S.Num):
                try:
                    return self.rows(c)
                except DeriveError:
                    continue
        raise DeriveError(f"cannot tell the number of rows of {node!r}")

    def classes(self, label) -> int:
        if isinstance(label, S.Var) and label.name in self.rec.classes:
            return self.rec.classes[label.name]
        if isinstance(label, S.Func) and label.fn == "argmax":
            return self.rows(label.args[0])
        raise DeriveError(f"cannot tell the number of classes of {label!r}")

    # ------------------------------------------------------------------ walking back
    def derive_equation(self, eq) -> None:
        where = TREE if eq.place == "root" else N
        g = S.Grad(eq.name, where, loss=eq.name in self.rec.losses)
        self.back(eq.expr, S.Var(eq.name, where), g, eq)

    def back(self, e, out, g, eq) -> None:
        if isinstance(e, Num):
            return
        if isinstance(e, Name):
            if e.name in self.params:
                per = self.param_terms.setdefault(e.name, {})
                per[eq.place] = S.add(per[eq.place], g) if eq.place in per else g
            elif e.name in self.root_names:
                self.record(e.name, TreeTerm(g, eq.name, eq.place, "tree", e.name))
            return  # a target: data
        if isinstance(e, Ref):
            if e.name in self.node_names:
                self.record(e.name, TreeTerm(g, eq.name, eq.place, e.anchor, f"{e.name}[{e.anchor}]"))
            return  # an input: data
        if isinstance(e, Unary | Transpose):
            op = "T" if isinstance(e, Transpose) else ("neg" if e.op == "-" else "pos")
            (ga,) = RULES[op]([self.forward(e.operand)], out, g, None)
            self.back(e.operand, self.forward(e.operand), ga, eq)
            return
        if isinstance(e, Bin):
            operands = [e.left] if e.op == "**" else [e.left, e.right]
            args = [self.forward(o) for o in operands]
            grads = RULES[e.op](args, out, g, _Info(self, e.right.value if e.op == "**" else None))
            for operand, arg, ga in zip(operands, args, grads):
                self.back(operand, arg, ga, eq)
            return
        if isinstance(e, Call):
            if e.fn not in RULES:
                raise DeriveError(f"the equation of {eq.name}[{eq.place}] uses {e.fn}, which has no derivative "
                                  f"rule")
            args = [self.forward(a) for a in e.args]
            grads = RULES[e.fn](args, out, g, _Info(self))
            for i, (operand, arg, ga) in enumerate(zip(e.args, args, grads)):
                if ga is NONE:
                    if not (e.fn in LOSSES and i == 1):
                        reason = NO_GRADIENT_REASONS.get(e.fn, f"{e.fn} passes no gradient")
                        where = eq.name if eq.place == "root" else f"{eq.name}[{eq.place}]"
                        self.no_gradient.append(f"{e.fn}(...) in the equation of {where}: {reason}")
                    continue
                self.back(operand, arg, ga, eq)
            return
        raise DeriveError(f"cannot derive {e!r}")

    def record(self, name: str, term: TreeTerm) -> None:
        terms = self.var_terms.setdefault(name, [])
        for other in terms:  # one term per consumer and way of reading u (eq. 10.20)
            if (other.consumer, other.place, other.anchor) == (term.consumer, term.place, term.anchor):
                other.expr = S.add(other.expr, term.expr)
                return
        terms.append(term)

    # ------------------------------------------------------------------ assembling
    def build(self) -> TreeDerivation:
        for eq in self.rec.spec.equations:
            self.derive_equation(eq)
        plain = {L for L in self.rec.losses if L not in self.var_terms}

        def seed(n):  # ∂L/∂L = 1 for a loss no other equation reads (eq. 10.17)
            return S.ONE if isinstance(n, S.Grad) and n.loss and n.name in plain else None

        for terms in self.var_terms.values():
            for t in terms:
                t.expr = S.substitute(t.expr, seed)
        self.param_terms = {p: {pl: S.substitute(e, seed) for pl, e in per.items()}
                            for p, per in self.param_terms.items()}
        out: list[TreeEquation] = []
        for L in self.rec.losses:
            if L in plain:
                out.append(TreeEquation("loss", L, S.Grad(L, TREE, loss=True), S.ONE, note="the loss"))
        for name in reversed(self.root_names):
            if name in plain:
                continue
            terms = self.var_terms.get(name, [])
            rhs = S.add(*(t.expr for t in terms), *([S.ONE] if name in self.rec.losses else []))
            out.append(TreeEquation("variable", name, S.Grad(name, TREE, loss=name in self.rec.losses), rhs, terms,
                                    note=None if terms else "no equation reads it: no path to the loss"))
        for name in reversed(self.node_names):
            out.extend(self.node_equations(name))
        for p in self.rec.param_shapes:
            if p in self.param_terms:
                out.extend(self.parameter_equations(p, self.param_terms[p]))
        number = 0
        for eq in out:
            if eq.kind != "copy":
                number += 1
                eq.number = number
        return TreeDerivation(self.rec, out, self.var_terms, list(dict.fromkeys(self.no_gradient)))

    def case_terms(self, name: str, kind: str, position: str) -> list[tuple[TreeTerm, S.Node]]:
        """The terms of ∇name(n) L at a node of ``kind`` in ``position``, each written in n."""
        out = []
        for t in self.var_terms.get(name, []):
            if t.anchor in ("leaf", "node"):
                if t.place == kind:
                    out.append((t, t.expr))
            elif t.anchor == position == "root":
                out.append((t, t.expr))
            elif t.anchor == position:
                out.append((t, relabel(t.expr, _FROM_CHILD[position])))
        return out

    def node_equations(self, name: str) -> list[TreeEquation]:
        kinds = self.defined[name]
        cases = {(k, p): self.case_terms(name, k, p) for k in kinds for p in POSITIONS}
        groups: dict = {}
        for case, terms in cases.items():
            groups.setdefault(tuple(id(t) for t, _ in terms), []).append(case)
        out = []
        for ids, members in sorted(groups.items(), key=lambda kv: min(POSITIONS.index(p) for _, p in kv[1])):
            terms = cases[members[0]]
            rhs = S.add(*(e for _, e in terms))
            out.append(TreeEquation("variable", name, S.Grad(name, N), rhs, [t for t, _ in terms], members,
                                    _condition(members, kinds),
                                    note=None if terms else "no equation reads it there: no path to the loss"))
        return out

    def parameter_equations(self, p: str, per: dict) -> list[TreeEquation]:
        parts = []
        copies = []
        for place in ("leaf", "node", "root"):
            if place not in per:
                continue
            e = per[place]
            parts.append(e if place == "root" else NodeSum(place, e))
            where = {"leaf": "for each leaf n", "node": "for each internal node n", "root": "at the root"}[place]
            lhs = S.Grad(p, TREE if place == "root" else N)
            copies.append(TreeEquation("copy", p, lhs, e, cases=[place], condition=where,
                                       note=f"the dummy copy of {p} used {where.replace('for each', 'at each')}"))
        if list(per) == ["root"]:
            copies[0].shown = False
        return [TreeEquation("parameter", p, S.Grad(p, None), S.add(*parts))] + copies


def derive_tree(rec) -> TreeDerivation:
    """Derive back-propagation through structure for recursive network ``rec`` (a
    :class:`~graphrnn.recurrence.tree.TreeRecurrence` or a zoo name such as ``"fig10_14"``)."""
    if isinstance(rec, str):
        from ..zoo import load_tree

        rec = load_tree(rec)
    if not rec.losses:
        raise DeriveError(f"{rec.name} has no loss, so there is no gradient to derive; add a root output and a "
                          f"loss, e.g. `o = c + R @ h[root]`, `L = cross_entropy(o, y)` and `loss L`")
    return _Builder(rec).build()


# ------------------------------------------------------------------------------------------ printing


class _TreePlaces:
    """What the tree printers change in derive's: places instead of steps, sums over nodes."""

    def precedence(self, node) -> int:
        if isinstance(node, NodeSum):
            return _PRODUCT
        return super().precedence(node)


class TreeTextPrinter(_TreePlaces, TextPrinter):
    """derive's text printer, with places (h(n), h(p), h(left(n))) and sums over the tree's nodes."""

    def step(self, step) -> str:
        return step.label if isinstance(step, Place) else super().step(step)

    def _print_Var(self, n):
        return n.name if n.step == TREE else super()._print_Var(n)

    def _print_Grad(self, n):
        if n.step == TREE:
            return f"∂L/∂{n.name}" if n.loss else f"∇{n.name} L"
        return super()._print_Grad(n)

    def _print_Prediction(self, n):
        return self._print_Var(S.Var(unicodedata.normalize("NFC", n.target.name + "\u0302"), n.target.step))

    def _print_NodeSum(self, n):
        over = "leaves n" if n.over == "leaf" else "internal n"
        return f"Σ_{{{over}}} {self.paren(n.body, _SUM)}"

    def equation(self, eq) -> str:
        out = f"{self.doprint(eq.lhs)} = {self.doprint(eq.rhs)}"
        if eq.condition:
            out += f"    {eq.condition}"
        if eq.note and eq.kind == "variable":
            out += f"    ({eq.note})"
        return out

    def derivation(self, d) -> str:
        rec = d.rec
        lines = [f"{rec.name}: {rec.spec.title}" if rec.spec.title else rec.name, "", "forward:"]
        lines += [f"  {eq.text}" for eq in rec.spec.equations]
        lines += ["", "back-propagation through the tree (§10.6), derived from the loss down to the leaves:"]
        width = len(str(max(eq.number or 0 for eq in d.equations)))
        titled = False
        for eq in (e for e in d.equations if e.shown):
            if eq.kind == "parameter" and not titled:
                titled = True
                lines += ["", "parameters (each the sum of its dummy copies' terms, one per tree node that uses it, "
                          "§10.2.2):"]
            if eq.kind == "copy":
                lines.append(f"  {'':>{width + 2}}  {self.equation(eq)}")
            else:
                lines.append(f"  ({eq.number:>{width}})  {self.equation(eq)}")
        if d.remarks:
            lines += ["", "no gradient:"] + [f"  {r}" for r in d.remarks]
        where = self.where(d)
        lines += ["", "where p is n's parent, left(n) and right(n) its children, root the tree's root"
                  + ("; " + "; ".join(where) if where else "")]
        lines += ["", "With a batch, vectors are matrices of columns (one per tree); every formula holds column by "
                  "column, and a parameter's terms are summed over the trees."]
        return "\n".join(lines)

    def where(self, d) -> list[str]:
        seen = {}
        for eq in d.equations:
            for node in S.walk(eq.rhs):
                if isinstance(node, S.Prediction) and node.target.name not in seen:
                    y = self.doprint(node.target)
                    seen[node.target.name] = (f"{self.doprint(node)} = softmax({self.doprint(node.logits)}), and "
                                              f"1_{{{y}}} the one-hot column of class {y}")
        return list(seen.values())


class TreeLatexPrinter(_TreePlaces, LatexPrinter):
    """derive's LaTeX printer, with places and sums over the tree's nodes."""

    _PLACES = {"n": "n", "p": "p", "root": "\\mathrm{root}"}

    def step(self, step) -> str:
        if not isinstance(step, Place):
            return super().step(step)
        label = step.label
        if "(" in label:
            fn, arg = label.rstrip(")").split("(")
            return f"\\mathrm{{{fn}}}({arg})"
        return self._PLACES.get(label, label)

    def _var(self, name, step, extra=""):
        if step == TREE:
            return f"{_latex_name(name)}^{{{extra}}}" if extra else _latex_name(name)
        return super()._var(name, step, extra)

    def _print_Grad(self, n):
        if n.step == TREE:
            return (f"\\frac{{\\partial L}}{{\\partial {_latex_name(n.name) if n.name != 'L' else 'L'}}}" if n.loss
                    else f"\\nabla_{{{_latex_name(n.name)}}} L")
        return super()._print_Grad(n)

    def _print_Prediction(self, n):
        return f"\\hat{{{_latex_name(n.target.name)}}}"

    def _print_NodeSum(self, n):
        over = "\\text{leaves } n" if n.over == "leaf" else "\\text{internal } n"
        return f"\\sum_{{{over}}} {self.paren(n.body, _SUM)}"

    def condition_text(self, eq) -> str:
        if not eq.condition:
            return ""
        # the places are mathematics: \text{if $n$ is the left child of $p$}
        words = re.sub(r"\b(left|right)\((n|p)\)", r"$\\mathrm{\1}(\2)$", _latex_text(eq.condition))
        return "\\text{" + re.sub(r"(?<![(\w$])\b([np])\b(?![)\w$])", r"$\1$", words) + "}"

    def equation(self, eq, align: bool = False) -> str:
        eqsign = " &= " if align else " = "
        out = f"{self.doprint(eq.lhs)}{eqsign}{self.doprint(eq.rhs)}"
        cond = self.condition_text(eq)
        if cond:
            out += f" && {cond}" if align else f" \\qquad {cond}"
        return out

    def derivation(self, d) -> str:
        lines = [self.equation(eq, align=True) + ("" if eq.number is None else f" \\tag{{{eq.number}}}")
                 for eq in d.equations if eq.shown]
        return "\n".join(["\\begin{align}", " \\\\\n".join(lines), "\\end{align}"])


def tree_markdown(d: TreeDerivation) -> str:
    """Markdown: the forward equations as code, each derived equation as ``$$`` math."""
    tex, txt = TreeLatexPrinter(), TreeTextPrinter()
    rec = d.rec
    out = [f"**Back-propagation through the tree of {rec.name}** (§10.6), derived from its equations:", ""]
    out += ["```", *(eq.text for eq in rec.spec.equations), "```", ""]
    for eq in (e for e in d.equations if e.shown):
        tag = f" \\qquad ({eq.number})" if eq.number is not None else ""
        out += ["$$", tex.equation(eq) + tag, "$$", ""]
    if d.remarks:
        out += ["No gradient:", ""] + [f"- {r}" for r in d.remarks] + [""]
    where = txt.where(d)
    out += ["Where p is n's parent, left(n) and right(n) its children, root the tree's root"
            + ("; " + "; ".join(where) if where else "") + ".", ""]
    return "\n".join(out).rstrip() + "\n"


def render(arch, fmt: str = "text") -> str:
    """``graphrnn derive`` for a recursive network: the derivation of zoo name or ``.tree`` path ``arch``
    (or a loaded network) in ``fmt`` (``"text"``, ``"latex"`` or ``"markdown"``), ending in a newline."""
    if fmt not in ("text", "latex", "markdown"):
        raise DeriveError(f"format must be 'text', 'latex' or 'markdown', not {fmt!r}")
    d = derive_tree(arch)
    out = {"text": d.text, "latex": d.latex, "markdown": d.markdown}[fmt]()
    return out if out.endswith("\n") else out + "\n"


# ------------------------------------------------------------------------------------------ numbers


class _TreeNumbers(_Evaluator):
    """derive's numpy evaluator, at tree nodes instead of steps: ``t`` is the key of the node n
    (``"1..2"``, ``"3"``), or ``"root"`` for the per-tree equations."""

    def __init__(self, d: TreeDerivation, run, data: dict, params: dict):
        self.d, self.rec, self.tree = d, d.rec, run.tree
        self.values, self.data = run.values, data
        self.params_ = {p: np.asarray(v, dtype=np.float64) for p, v in params.items()}
        missing = [p for p in self.rec.param_shapes if p not in self.params_]
        if missing:
            raise DeriveError(f"no value for the parameter(s) {', '.join(missing)}")
        self.parent = self.tree.parent_side()
        self.grads: dict = {}
        self.memo: dict = {}
        self.downstream = None

    # ------------------------------------------------------------------ places
    def key(self, place: Place, t: str) -> str:
        """The tree node at ``place`` seen from node ``t``."""
        tr = self.tree
        if place == ROOT:
            return tr.root
        if place == N:
            return t
        if place in (LEFT, RIGHT):
            if t not in tr.children:
                raise DeriveError(f"{place.label} of leaf {t}: a bug in the derivation's cases")
            return tr.children[t][0 if place == LEFT else 1]
        p = self.parent[t][0]
        if place == P:
            return p
        return tr.children[p][0 if place.label.startswith("left") else 1]

    def _Var(self, n, t):
        if n.step == TREE:
            if n.name in self.values:
                return np.asarray(self.values[n.name], dtype=np.float64)
            if n.name in self.data:
                return np.asarray(self.data[n.name])
            raise DeriveError(f"the run has no value for {n.name}")
        k = self.key(n.step, t)
        if n.name in self.rec.spec.inputs:
            return np.asarray(self.data[n.name], dtype=np.float64)[self.tree.leaf_input[k] - 1]
        return np.asarray(self.values[f"{n.name}[{k}]"], dtype=np.float64)

    def _Param(self, n, t):
        return self.params_[n.name]

    def _Grad(self, n, t):
        key = n.name if n.step == TREE else f"{n.name}[{self.key(n.step, t)}]"
        got = self.grads.get(key)
        if got is None:
            raise DeriveError(f"∇{key} is needed before it was computed (an ordering bug)")
        return got

    def _NodeSum(self, n, t):
        keys = self.tree.leaves if n.over == "leaf" else self.tree.internal
        total = np.float64(0.0)
        for k in keys:
            total = total + self.eval(n.body, k)
        return total

    # ------------------------------------------------------------------ BPTS
    def compute(self) -> TreeGradients:
        d, tr = self.d, self.tree
        out = TreeGradients()
        for eq in d.equations:
            if eq.kind == "loss":
                self.grads[eq.name] = np.float64(1.0)
            elif eq.kind == "variable" and not eq.cases:
                self.grads[eq.name] = self.eval(eq.rhs, "root")
        pos = {k: side for k, (_, side) in self.parent.items()}
        pos[tr.root] = "root"
        order = {place: [eq.name for eq in reversed(self.rec.order(place))] for place in ("leaf", "node")}
        for k in list(reversed(tr.internal)) + list(reversed(tr.leaves)):
            kind = "node" if k in tr.children else "leaf"
            for name in order[kind]:
                eq = d.equation_for(name, kind, pos[k])
                value = self.eval(eq.rhs, k)
                rows = self.rec.var_shapes[name][0]
                batch = np.shape(self.values[f"{name}[{k}]"])[-1]
                self.grads[f"{name}[{k}]"] = np.broadcast_to(value, (rows, batch)).astype(np.float64)
        for key, value in self.grads.items():
            out[key] = value
        for eq in d.equations:
            if eq.kind == "parameter":
                out[eq.name] = unbroadcast(self.eval(eq.rhs, "root"), self.rec.param_shapes[eq.name])
            elif eq.kind == "copy":
                place = eq.cases[0]
                keys = {"leaf": tr.leaves, "node": tr.internal, "root": ["root"]}[place]
                per = out.copies.setdefault(eq.name, {})
                for k in keys:
                    per[k] = unbroadcast(self.eval(eq.rhs, k), self.rec.param_shapes[eq.name])
        return out


__all__ = ["NodeSum", "Place", "TreeDerivation", "TreeEquation", "TreeGradients", "TreeLatexPrinter",
           "TreeTextPrinter", "derive_tree", "render", "tree_markdown"]
