"""Derive BPTT for a recurrence, as §10.2.2 derives it for fig. 10.3.

For every per-step variable u, ∇_{u^(t)} L is the sum over u's consumers v of
(∂v/∂u)ᵀ ∇_v L (eq. 10.20): each use of u in the equation of v contributes one
term, worked out by the rules of :mod:`.rules` from v's gradient down to the use.
A use of u[t+r] in v's equation at step t is seen from u's step as v at t − r,
so ``h[t-1]`` in h's own equation gives the term in ∇_{h^(t+1)} L of eq. 10.21.
A term exists only at the steps where its consumer does: the derivation splits
the steps into cases (t = τ, t < τ, ...) and writes each out.

For every parameter P, ∇_P L = Σ_t ∇_{P^(t)} L, the sum of its dummy copies'
terms (eqs. 10.22–10.28); a learned initial state gets the terms that reach
outside the steps, summed over the batch (a last-step equation reading h[τ−k]
reaches h0 only in a run of at most k steps: that term is written [τ ≤ k] ...).  Where an op has no gradient (argmax,
sample, one_hot of a label, a value fed back in free-running mode) the
derivation says so instead of writing a term.

>>> import graphrnn as gr
>>> d = gr.derive(gr.load("fig10_3"))
>>> print(d.equation_for("h", 2, T=5).text())
∇h(t) L = Wᵀ diag(1 − (h(t+1))²) ∇h(t+1) L + Vᵀ ∇o(t) L    for 1 ≤ t ≤ τ−1    (10.21†)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import GraphrnnError
from ..recurrence.spec import LOSSES, Bin, Call, Name, Num, Ref, Transpose, Unary
from . import symbols as S
from .rules import NO_GRADIENT_REASONS, NONE, RULES
from .symbols import T0, TAU, Grad, JacobianT, Node, Param, Step, Var


class DeriveError(GraphrnnError, ValueError):
    """A derivation that cannot be made or evaluated (names the variable and the fix)."""


ONE_STEP = Step("0", 1)


def _key(step: Step) -> tuple:
    """Order of steps for a long sequence (τ larger than every offset): numbers, then τ − k."""
    return (0 if step.anchor == "0" else 1, step.offset)


@dataclass
class Term:
    """One consumer's contribution to a gradient.

    ``expr`` is written in the step t of the variable (or, for a parameter, of the
    dummy copy); ``lo`` ≤ t ≤ ``hi`` is where the consumer exists.  ``consumer`` is
    the variable whose equation makes the use, ``use`` the use as the spec writes it
    (``"h[t-1]"``), ``offset`` its step offset; ``jacobian`` the term as eq. 10.20
    writes it, (∂consumer/∂u)ᵀ ∇consumer L.
    """

    expr: Node
    consumer: str
    use: str
    offset: int
    lo: Step
    hi: Step
    jacobian: Node | None = None

    def active(self, t: int, T: int) -> bool:
        return self.lo.value(t, T) <= t <= self.hi.value(t, T)


@dataclass
class Equation:
    """One derived equation: ``lhs = rhs`` for the steps ``lo..hi`` (``None`` for a parameter).

    ``kind`` is ``"loss"`` (∂L/∂L^(t) = 1, eq. 10.17), ``"variable"``, ``"parameter"``,
    ``"initial"`` (a learned initial state) or ``"none"`` (a remark: no gradient flows
    there, ``rhs`` is ``None``).  ``terms`` are the contributions summed in ``rhs``, each
    written in t; ``rhs`` has them at the case's step.  ``book`` is the equation's number
    in the book when the recurrence is fig. 10.3.
    """

    kind: str
    name: str
    lhs: Node | None
    rhs: Node | None
    terms: list[Term] = field(default_factory=list)
    lo: Step | None = None
    hi: Step | None = None
    number: int | None = None
    book: str | None = None
    note: str | None = None
    copy: Node | None = None  # a parameter's dummy-copy term ∇_{P^(t)} L, in t
    parts: list[Node] = field(default_factory=list)  # a learned initial state's: ``rhs``'s summand of each term

    @property
    def single_step(self) -> bool:
        return self.lo is not None and self.lo == self.hi

    def covers(self, t: int, T: int) -> bool:
        if self.lo is None:
            return True
        return self.lo.value(t, T) <= t <= self.hi.value(t, T)

    def text(self) -> str:
        from .printing import TextPrinter

        return TextPrinter().equation(self)

    def latex(self) -> str:
        from .printing import LatexPrinter

        return LatexPrinter().equation(self)

    def __str__(self) -> str:
        return self.text()


class Derivation:
    """The BPTT equations of a recurrence (see the module doc); build it with :func:`derive`.

    ``equations`` in the order BPTT uses them: the losses (eq. 10.17), the per-step
    variables from the loss back (each split into its cases), the parameters
    (eqs. 10.22–10.28) and learned initial states; remarks where no gradient flows.
    """

    def __init__(self, rec, mode: str, equations: list[Equation], notes: list[str],
                 terms: dict[str, list[Term]] | None = None):
        self.rec, self.mode, self.equations, self.notes = rec, mode, equations, notes
        #: every term of each variable's gradient, over all its cases (what :meth:`evaluate` sums)
        self.terms: dict[str, list[Term]] = terms or {}

    # ------------------------------------------------------------------ access
    def for_variable(self, name: str) -> list[Equation]:
        """The equations (and remarks) of variable or parameter ``name``."""
        out = [eq for eq in self.equations if eq.name == name]
        if not out and name not in self.rec.variables and name not in self.rec.all_param_shapes():
            raise DeriveError(f"{name!r} is neither a variable nor a parameter of {self.rec.name}")
        return out

    def equation_for(self, name: str, t: int | None = None, T: int | None = None) -> Equation:
        """The equation giving ∇ of ``name`` at step ``t`` of a ``T``-step run (of a parameter
        or a learned initial state: its only equation).

        >>> import graphrnn as gr
        >>> d = gr.derive(gr.load("fig10_3"))
        >>> d.equation_for("h", 5, T=5).book, d.equation_for("W").book
        ('10.19', '10.25–26')
        """
        eqs = [eq for eq in self.for_variable(name) if eq.kind != "none"]
        if not eqs:
            raise DeriveError(f"{name!r} has no gradient in {self.rec.name} ({self.mode} mode)")
        if t is None or eqs[0].lo is None:
            return eqs[0]
        if T is None:
            raise DeriveError("equation_for(name, t, T): give the number of steps T with the step t")
        for eq in eqs:
            if eq.covers(t, T):
                return eq
        raise DeriveError(f"no equation of {name!r} covers step {t} of a {T}-step run")

    def __iter__(self):
        return iter(self.equations)

    def __len__(self) -> int:
        return len(self.equations)

    # ------------------------------------------------------------------ output
    def text(self) -> str:
        """The derivation in Unicode text, one equation a line (as ``graphrnn derive`` prints it)."""
        from .printing import TextPrinter

        return TextPrinter().derivation(self)

    def latex(self) -> str:
        """An amsmath ``align`` environment, one numbered line per equation."""
        from .printing import LatexPrinter

        return LatexPrinter().derivation(self)

    def markdown(self) -> str:
        """Markdown with the equations as ``$$`` math (GitHub, Jupyter)."""
        from .printing import MarkdownPrinter

        return MarkdownPrinter().derivation(self)

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return f"<Derivation of {self.rec.name} ({self.mode} mode): {len(self.equations)} equations>"

    # ------------------------------------------------------------------ numbers
    def evaluate(self, run, downstream=None):
        """The gradients of ``run`` computed from these equations with numpy, from ``run.values``
        and the parameters only (no engine tensor, no engine VJP rule).

        Returns a :class:`~graphrnn.derive.numeric.Gradients`: a dict keyed as ``run.grads``
        is (``"h[3]"``, ``"W"``), with ``.copies[P][t]`` the dummy copies' terms and
        ``.terms(name, t)`` each equation's terms with their numbers.  With ``downstream``
        (e.g. ``run.grads``) each equation reads its consumers' gradients from there: one
        step of BPTT at a time (see :func:`~graphrnn.derive.numeric.evaluate`).
        """
        from .numeric import evaluate

        return evaluate(self, run, downstream)


# ------------------------------------------------------------------------------ building


class _Info:
    """What a rule needs to know beyond the symbols: an exponent, sizes, numbers of classes."""

    def __init__(self, builder, exponent=None):
        self.builder, self.exponent = builder, exponent

    def rows(self, node) -> int:
        return self.builder.rows(node)

    def classes(self, label) -> int:
        return self.builder.classes(label)


class _Builder:
    def __init__(self, rec, mode):
        self.rec, self.mode = rec, mode
        self.eqs = rec.mode_equations(mode)
        self.params = set(rec.param_shapes)
        self.contexts = set(rec.spec.contexts)
        self.var_terms: dict[str, list[Term]] = {}
        self.param_terms: dict[str, list[tuple[Node, str]]] = {}  # P -> [(expr, anchor of the use)]
        self.remarks: list[Equation] = []
        self._remarked: set = set()

    # ------------------------------------------------------------------ symbols of the forward pass
    def step_of(self, ref: Ref, anchor: str) -> Step:
        if ref.anchor == "tau" or anchor == "tau":  # in an equation of the last step, t is τ
            return Step("tau", ref.offset)
        return Step("t", ref.offset)

    def forward(self, e, anchor: str) -> Node:
        """The symbolic value of spec expression ``e`` in an equation anchored at ``anchor``."""
        if isinstance(e, Num):
            return S.Num(e.value)
        if isinstance(e, Name):
            return Param(e.name, "context" if e.name in self.contexts else "param")
        if isinstance(e, Ref):
            return Var(e.name, self.step_of(e, anchor))
        if isinstance(e, Unary):
            x = self.forward(e.operand, anchor)
            return S.neg(x) if e.op == "-" else x
        if isinstance(e, Transpose):
            return S.transpose(self.forward(e.operand, anchor))
        if isinstance(e, Bin):
            a = self.forward(e.left, anchor)
            if e.op == "**":
                return S.power(a, e.right.value)
            b = self.forward(e.right, anchor)
            return {"+": S.add, "-": S.sub, "*": S.mul, "/": S.div, "@": S.matmul}[e.op](a, b)
        if isinstance(e, Call):
            args = tuple(self.forward(a, anchor) for a in e.args)
            classes = None
            if e.fn == "one_hot":
                classes = self.classes(args[0])
            return S.Func(e.fn, args, classes)
        raise DeriveError(f"cannot read {e!r}")

    def rows(self, node) -> int:
        """The number of rows of a symbolic value (for mse's mean over a column)."""
        if isinstance(node, Var):
            return self.rec.variables[node.name].rows
        if isinstance(node, Param):
            shapes = self.rec.all_param_shapes()
            return shapes[node.name][0] if node.name in shapes else self.rec.variables[node.name].rows
        if isinstance(node, S.Transpose) and isinstance(node.arg, Param):
            return self.rec.all_param_shapes()[node.arg.name][1]
        if isinstance(node, S.MatMul):
            return self.rows(node.left)
        if isinstance(node, S.Func) and node.fn == "one_hot":
            return node.classes
        kids = [c for c in S.children(node) if not isinstance(c, S.Num)]
        for c in kids:
            try:
                return self.rows(c)
            except DeriveError:
                continue
        raise DeriveError(f"cannot tell the number of rows of {node!r}")

    def classes(self, label) -> int:
        if isinstance(label, Var):
            var = self.rec.variables[label.name]
            if var.classes is not None:
                return var.classes
        if isinstance(label, S.Func) and label.fn in ("argmax", "sample"):
            return self.rows(label.args[0])
        if isinstance(label, S.Func) and label.fn == "feed":
            return self.classes(label.args[0])
        raise DeriveError(f"cannot tell the number of classes of {label!r}")

    # ------------------------------------------------------------------ walking back through one equation
    def derive_equation(self, name: str, eq) -> None:
        anchor = eq.anchor
        step = TAU if anchor == "tau" else T0
        out = Var(name, step)
        g = Grad(name, step, loss=name in self.rec.losses)
        self.back(eq.expr, out, g, name, anchor)

    def back(self, e, out: Node, g: Node, consumer: str, anchor: str) -> None:
        if isinstance(e, Num):
            return
        if isinstance(e, Name):
            if e.name in self.params:
                self.param_terms.setdefault(e.name, []).append((g, anchor))
            return  # a context input is data
        if isinstance(e, Ref):
            self.use(e, g, consumer, anchor)
            return
        if isinstance(e, Unary):
            (ga,) = RULES["neg" if e.op == "-" else "pos"]([self.forward(e.operand, anchor)], out, g, None)
            self.back(e.operand, self.forward(e.operand, anchor), ga, consumer, anchor)
            return
        if isinstance(e, Transpose):
            (ga,) = RULES["T"]([self.forward(e.operand, anchor)], out, g, None)
            self.back(e.operand, self.forward(e.operand, anchor), ga, consumer, anchor)
            return
        if isinstance(e, Bin):
            operands = [e.left] if e.op == "**" else [e.left, e.right]
            info = _Info(self, e.right.value if e.op == "**" else None)
            args = [self.forward(o, anchor) for o in operands]
            grads = RULES[e.op](args, out, g, info)
            for operand, arg, ga in zip(operands, args, grads):
                self.back(operand, arg, ga, consumer, anchor)
            return
        if isinstance(e, Call):
            args = [self.forward(a, anchor) for a in e.args]
            grads = RULES[e.fn](args, out, g, _Info(self))
            for i, (operand, arg, ga) in enumerate(zip(e.args, args, grads)):
                if ga is NONE:
                    if not (e.fn in LOSSES and i == 1):  # a loss's target is not an input use
                        self.no_gradient(e, operand, consumer, anchor)
                    continue
                self.back(operand, arg, ga, consumer, anchor)
            return
        raise DeriveError(f"cannot derive {e!r}")

    def use(self, ref: Ref, g: Node, consumer: str, anchor: str) -> None:
        """Record the term of ``ref``'s variable contributed by this use in ``consumer``'s equation."""
        var = self.rec.variables[ref.name]
        if var.kind != "computed" or var.is_label:
            return  # data (an input, a target, a context), or free running's fed values (no gradient)
        r = ref.offset
        u_step = self.step_of(ref, anchor)
        consumer_step = TAU if anchor == "tau" else T0
        jac = S.MatMul(JacobianT(Var(consumer, consumer_step), Var(ref.name, u_step)), Grad(
            consumer, consumer_step, loss=consumer in self.rec.losses))
        if anchor == "t" and ref.anchor == "t":
            # v at step t reads u[t + r]: seen from u's step t, the consumer is at t − r
            term = Term(S.shift(g, -r), consumer, ref.text, r, Step("0", 1 + r), Step("tau", r),
                        S.shift(jac, -r))
        elif anchor == "tau":
            term = Term(g, consumer, ref.text, r, u_step, u_step, jac)
        else:  # the notation rejects it (a spec error): an equation of every step cannot read a computed u[τ]
            raise DeriveError(f"the equation of {consumer} reads {ref.text} at every step; define {consumer} at "
                              f"[tau] too")
        terms = self.var_terms.setdefault(ref.name, [])
        for other in terms:  # one term per consumer and step, as eq. 10.20 sums them
            if (other.consumer, other.offset, other.lo, other.hi) == (term.consumer, term.offset, term.lo, term.hi):
                other.expr = S.add(other.expr, term.expr)
                other.use = f"{other.use}, {term.use}"
                return
        terms.append(term)

    def no_gradient(self, call: Call, operand, consumer: str, anchor: str) -> None:
        """A remark: the values below ``operand`` get no gradient through ``call``."""
        from ..recurrence.spec import references

        from .printing import text

        reason = NO_GRADIENT_REASONS.get(call.fn, f"{call.fn} passes no gradient")
        call_text = text(self.forward(call, anchor))
        for ref in references(operand):
            shown = text(Var(ref.name, self.step_of(ref, anchor)))
            var = self.rec.variables[ref.name]
            if var.kind == "computed" and not var.is_label:
                what = f"{call_text} in the equation of {consumer}: {reason}"
            elif var.kind == "target":
                what = (f"{shown} is a target, fed to {consumer} as data (teacher forcing): no gradient flows "
                        f"into it, nor back through it to earlier steps")
            else:  # data, or a fed value (see fed_remark)
                continue
            if (ref.name, what) in self._remarked:
                continue
            self._remarked.add((ref.name, what))
            self.remarks.append(Equation("none", ref.name, None, None, note=what))

    def fed_remark(self, name: str, eq) -> None:
        """Free running's fed value: the model's own output, fed back without gradient (fig. 10.6)."""
        from .printing import text

        var = self.rec.variables[name]
        fb = self.rec.spec.feedbacks[var.feedback_of]
        value = text(self.forward(fb.expr, "t"))
        if self.mode == "scheduled":
            value += f" or the true {text(Var(var.feedback_of, T0))} (drawn at random for each sequence)"
        sources = sorted({r.name for r in self.references(fb.expr)
                          if self.rec.variables[r.name].kind == "computed"})
        into = ", ".join(text(Var(n, T0)) for n in sources) or "the model"
        what = (f"in {self.mode} mode {text(Var(var.feedback_of, T0))} is fed back as {value} (written "
                f"{text(Var(name, T0))} above), without gradient: none flows from the later steps into "
                f"{into} through it")
        self.remarks.append(Equation("none", name, None, None, note=what))

    @staticmethod
    def references(expr):
        from ..recurrence.spec import references

        return references(expr)

    # ------------------------------------------------------------------ assembling
    def build(self) -> Derivation:
        eqs = self.eqs
        for name, eq in eqs.items():
            if self.rec.variables[name].kind == "fed":
                self.fed_remark(name, eq)
                continue
            self.derive_equation(name, eq)
        # ∂L/∂L^(t) = 1 (eq. 10.17): a loss no other equation reads has that gradient and nothing else
        plain_losses = {L for L in self.rec.losses if L not in self.var_terms}

        def seed(n):
            if isinstance(n, Grad) and n.loss and n.name in plain_losses:
                return S.ONE
            return None

        for terms in self.var_terms.values():
            for term in terms:
                term.expr = S.substitute(term.expr, seed)
        self.param_terms = {P: [(S.substitute(e, seed), a) for e, a in uses] for P, uses in self.param_terms.items()}

        out: list[Equation] = []
        order = [n for n in reversed(list(eqs)) if self.rec.variables[n].kind == "computed"]
        for L in self.rec.losses:
            if L not in plain_losses:
                continue  # read by another equation too: its equation below has 1 (eq. 10.17) plus those terms
            anchor = self.rec.variables[L].anchor
            step = TAU if anchor == "tau" else T0
            lo, hi = (TAU, TAU) if anchor == "tau" else (ONE_STEP, TAU)
            out.append(Equation("loss", L, Grad(L, step, loss=True), S.ONE, [], lo, hi,
                                note="L = Σ_t L(t) (eq. 10.13)"))
        for name in order:
            var = self.rec.variables[name]
            if var.is_label or name in plain_losses:
                continue
            out.extend(self.variable_equations(name))
        for P in self.rec.param_shapes:
            uses = self.param_terms.get(P)
            if uses:
                out.append(self.parameter_equation(P, uses))
        for name, pname in self.rec.learned_inits().items():
            eq = self.initial_equation(name, pname)
            if eq is not None:
                out.append(eq)
        out.extend(self.remarks)
        notes = ["With a batch, vectors are matrices of columns (one per sequence); every formula holds column "
                 "by column, and a parameter's terms are summed over the sequences."]
        self.book_numbers(out, notes)
        number = 0
        for eq in out:
            if eq.kind != "none":
                number += 1
                eq.number = number
        return Derivation(self.rec, self.mode, out, notes, self.var_terms)

    def variable_equations(self, name: str) -> list[Equation]:
        var = self.rec.variables[name]
        lo_u, hi_u = (TAU, TAU) if var.anchor == "tau" else (ONE_STEP, TAU)
        terms = []
        for term in self.var_terms.get(name, []):
            lo = max(term.lo, lo_u, key=_key)
            hi = min(term.hi, hi_u, key=_key)
            if _key(lo) <= _key(hi):
                terms.append((term, lo, hi))
        cuts = {lo_u, hi_u.plus(1)}
        for _, lo, hi in terms:
            cuts |= {lo, hi.plus(1)}
        cuts = sorted(cuts, key=_key)
        segments: list[tuple[Step, Step, list[Term]]] = []
        for a, b in zip(cuts, cuts[1:]):
            if _key(a) < _key(lo_u) or _key(a) > _key(hi_u):
                continue
            active = [t for t, lo, hi in terms if _key(lo) <= _key(a) <= _key(hi)]
            end = b.plus(-1)
            if segments and [id(t) for t in segments[-1][2]] == [id(t) for t in active]:
                segments[-1] = (segments[-1][0], end, active)
            else:
                segments.append((a, end, active))
        out = []
        # the boundary cases first (t = τ; t = 1 for a state running backwards in time), then the
        # general case, as the book writes eq. 10.19 before 10.21
        segments = sorted(reversed(segments), key=lambda seg: seg[0] != seg[1])
        for lo, hi, active in segments:
            step = lo if lo == hi else T0
            rhs = S.add(*(S.at(t.expr, step) if lo == hi else t.expr for t in active),
                        *([S.ONE] if name in self.rec.losses else []))  # eq. 10.17 for a loss also read elsewhere
            note = None if active or name in self.rec.losses else "no equation reads it at these steps: no path to the loss"
            out.append(Equation("variable", name, Grad(name, step, loss=name in self.rec.losses), rhs, list(active),
                                lo, hi, note=note))
        return out

    def parameter_equation(self, P: str, uses) -> Equation:
        every = [e for e, anchor in uses if anchor == "t"]
        last = [e for e, anchor in uses if anchor == "tau"]
        parts = []
        copy = S.add(*every) if every else None
        if every:
            parts.append(S.StepSum(ONE_STEP, TAU, copy))
        parts.extend(last)
        terms = [Term(e, P, P, 0, ONE_STEP if a == "t" else TAU, TAU) for e, a in uses]
        return Equation("parameter", P, Grad(P, None), S.add(*parts), terms, copy=copy)

    def initial_equation(self, name: str, pname: str) -> Equation | None:
        """∇ of a learned initial state: the terms that read ``name`` outside 1..τ, summed over the batch."""
        parts, terms = [], []
        for term in self.var_terms.get(name, []):
            if term.lo.anchor == "0" and term.lo.offset < 1 and term.hi.anchor == "tau":  # reads t − k, k ≥ 1
                lo, hi = term.lo, Step("0", 0)
            elif term.hi.anchor == "tau" and term.hi.offset > 0 and term.lo.anchor == "0":  # reads t + k
                lo, hi = Step("tau", 1), term.hi
            elif term.lo == term.hi and (term.lo.anchor == "tau" and term.lo.offset > 0):
                lo, hi = term.lo, term.hi
            elif term.lo == term.hi and term.lo.anchor == "tau" and term.lo.offset < 0:
                # a last-step equation reading u[τ−k] reaches u's initial value only in a run of at most k
                # steps: the term is there under the condition [τ ≤ k]
                parts.append(S.only_outside(term.lo, S.StepSum(term.lo, term.lo, term.expr, batch=True)))
                terms.append(term)
                continue
            elif term.lo == term.hi and term.lo.anchor == "0" and term.lo.offset < 1:
                lo, hi = term.lo, term.hi
            else:
                continue
            parts.append(S.StepSum(lo, hi, term.expr, batch=True))
            terms.append(term)
        if not parts:
            return None
        return Equation("initial", pname, Grad(pname, None), S.add(*parts), terms,
                        note=f"{pname} is {name}'s value before the first step (or after the last), learned; its "
                             f"terms are summed over the batch", parts=parts)

    def book_numbers(self, out: list[Equation], notes: list[str]) -> None:
        """Fig. 10.3's equations get the book's numbers (eqs. 10.17–10.28)."""
        if self.mode != "teacher":
            return
        from ..verify.book import EQ_10_21_NOTE, PARAM_EQUATIONS, match_standard_rnn

        form = match_standard_rnn(self.rec)
        if form is None:
            return
        roles = {v: k for k, v in form.params().items()}
        for eq in out:
            if eq.kind == "loss":
                eq.book = "10.17"
            elif eq.kind == "variable" and eq.name == form.o:
                eq.book = "10.18"
            elif eq.kind == "variable" and eq.name == form.h:
                eq.book = "10.19" if eq.single_step else "10.21†"
            elif eq.kind == "parameter" and eq.name in roles:
                eq.book = PARAM_EQUATIONS[roles[eq.name]]
        notes.append(EQ_10_21_NOTE)


def derive(rec, mode: str = "teacher") -> Derivation:
    """Derive the BPTT equations of ``rec`` (a :class:`~graphrnn.Recurrence`, zoo name or spec path)
    for ``mode`` (``"teacher"``, ``"free"`` or ``"scheduled"``).

    >>> import graphrnn as gr
    >>> d = gr.derive("fig10_3")
    >>> print(d.equation_for("o", 1, T=3).text())
    ∇o(t) L = ŷ(t) − 1_{y(t)}    for 1 ≤ t ≤ τ    (10.18)
    """
    if isinstance(rec, str):
        from ..zoo import load

        rec = load(rec)
    if mode not in ("teacher", "free", "scheduled"):
        raise DeriveError(f"mode must be 'teacher', 'free' or 'scheduled', not {mode!r}")
    if not rec.losses:
        raise DeriveError(f"{rec.name} has no loss, so there is no gradient to derive; add an output and a loss, "
                          f"e.g. `o[t] = c + V @ h[t]`, `L[t] = cross_entropy(o[t], y[t])` and `loss L`")
    return _Builder(rec, mode).build()
