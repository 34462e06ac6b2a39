"""The intermediate form the exporters print: a recurrence lowered to loops over time.

:func:`lower` reads only the notation layer (the parsed equations, the variables and their shapes, the
parameters, the blocks of mutually recurrent variables) and returns a :class:`Program`:

* the parameters, with the spec's names and shapes (learned initial states ``h0`` included);
* the data (inputs, targets, contexts) and how many steps past ``t`` each is read, which fixes T as graphrnn
  fixes it from the data's length;
* :class:`Loop`\\ s: consecutive blocks of the evaluation order that can share one pass over time, forwards
  (``t = 1..T``, a block that reads ``h[t-k]``) or backwards (``t = T..1``, one that reads ``g[t+k]``, a
  bidirectional RNN's fig. 10.11).  Each :class:`Def` keeps its equation as the notation's expression tree
  and knows how many earlier (or later) values of itself the loop must carry (its largest delay k);
* ``last``: the equations anchored at ``tau`` (fig. 10.5), evaluated once, at step T;
* the losses, summed over the steps (eq. 10.13).

Both printers (:mod:`.torch_target`, :mod:`.jax_target`) print this one form; neither looks at the spec
again.  Whatever cannot be exported raises :class:`ExportError` naming the construct.

>>> import graphrnn as gr
>>> program = lower(gr.load("fig10_11"))
>>> [(loop.direction, [d.name for d in loop.defs]) for loop in program.loops]
[(1, ['h']), (-1, ['g', 'o', 'L'])]
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import SpecError
from ..recurrence.recurrence import MODES, Recurrence
from ..recurrence.spec import Bin, Call, Name, Num, Ref, Transpose, Unary, references, walk
from ..recurrence.unroll import plan_blocks


class ExportError(SpecError):
    """A recurrence (or a construct in it) that cannot be written as standalone PyTorch or JAX code."""


@dataclass
class Def:
    """One equation inside a loop: ``name[t] = expr`` (``text`` is the spec's line, for the comment).

    ``depth`` is how many of this variable's own earlier values (later ones, in a backward loop) the loop
    carries from step to step: 1 for ``h[t-1]``, 2 when some equation reads ``h[t-2]``; 0 when none."""

    name: str
    expr: object
    text: str
    line: int
    depth: int = 0


@dataclass
class Loop:
    """Equations evaluated together, step after step: ``direction`` 1 is t = 1..T, -1 is t = T..1."""

    direction: int
    defs: list[Def]

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.defs]

    def outside_reads(self) -> list[tuple[str, int]]:
        """The (variable, offset) pairs this loop reads from data or from earlier loops, in first-use order."""
        inside = set(self.names)
        seen: dict[tuple[str, int], None] = {}
        for d in self.defs:
            for ref in references(d.expr):
                if ref.name not in inside:
                    seen.setdefault((ref.name, ref.offset), None)
        return list(seen)


@dataclass
class Data:
    """An input, target or context: ``rows`` for a vector (None for class labels, which have ``classes``),
    ``init`` whether steps outside the data read as zero (``init y = zero``), ``ahead`` how many steps past
    ``t`` the equations read it (T = its length - ahead, as in graphrnn)."""

    name: str
    kind: str
    rows: int | None
    classes: int | None
    init: bool
    ahead: int


@dataclass
class Var:
    """A computed variable: ``rows`` (None for a class label or a number per step), ``classes`` (labels),
    ``anchor`` ("t" or "tau") and its value outside the steps: ``init`` "zero" or "learned" (``param``)."""

    name: str
    rows: int | None
    classes: int | None
    anchor: str
    init: str
    param: str | None = None

    @property
    def scalar(self) -> bool:
        return self.rows is None and self.classes is None


@dataclass
class Program:
    """A recurrence lowered for printing (see the module docstring)."""

    name: str
    title: str
    text: str
    mode: str
    params: dict[str, tuple[int, int]]
    data: list[Data]
    variables: dict[str, Var]
    loops: list[Loop]
    last: list[Def]
    losses: list[tuple[str, str]]  # (name, anchor)
    feedbacks: dict[str, str] = field(default_factory=dict)  # fed variable -> the target it replaces

    @property
    def names(self) -> set[str]:
        """Every name the spec puts in the exported code (parameters, data, variables)."""
        return set(self.params) | {d.name for d in self.data} | set(self.variables)

    def uses(self, fn: str) -> bool:
        """Whether any equation calls the notation's function ``fn``."""
        defs = [d for loop in self.loops for d in loop.defs] + self.last
        return any(isinstance(n, Call) and n.fn == fn for d in defs for n in walk(d.expr))


def _refuse(message: str, eq=None, variable: str | None = None, rec: Recurrence | None = None) -> ExportError:
    return ExportError(message, getattr(eq, "line", None), variable=variable,
                       source=getattr(rec, "source", None))


def _rows_of(e, rec: Recurrence):
    """The number of rows of a (vector-valued) expression, found from the notation's shapes."""
    if isinstance(e, Ref):
        return rec.variables[e.name].rows
    if isinstance(e, Name):
        if e.name in rec.param_shapes:
            return rec.param_shapes[e.name][0]
        return rec.variables[e.name].rows
    if isinstance(e, Transpose):
        inner = e.operand
        if isinstance(inner, Name) and inner.name in rec.param_shapes:
            return rec.param_shapes[inner.name][1]
        return None
    if isinstance(e, Unary):
        return _rows_of(e.operand, rec)
    if isinstance(e, Bin):
        if e.op == "@" or e.op == "**":
            return _rows_of(e.left, rec)
        rows = [_rows_of(e.left, rec), _rows_of(e.right, rec)]
        rows = [r for r in rows if r not in (None, 1)]
        return rows[0] if rows else 1
    if isinstance(e, Call) and e.args:
        return _rows_of(e.args[0], rec)
    return None


def _where(eq, rec: Recurrence) -> str:
    """How an error names the equation: "the equation of h", or "the feedback line of y"."""
    var = rec.variables.get(eq.name)
    if var is not None and var.kind == "fed":
        return f"the feedback line of {var.feedback_of}"
    return f"the equation of {eq.name}"


def _prepare(expr, rec: Recurrence, eq):
    """The equation's tree ready to print: ``one_hot(y)`` gets its number of classes as a second argument
    (``one_hot(y, 4)``); ``+x`` is ``x``; what cannot be exported is refused here."""
    if isinstance(expr, Unary) and expr.op == "+":
        return _prepare(expr.operand, rec, eq)
    if isinstance(expr, Unary):
        return Unary(expr.line, expr.col, expr.text, expr.op, _prepare(expr.operand, rec, eq))
    if isinstance(expr, Transpose):
        return Transpose(expr.line, expr.col, expr.text, _prepare(expr.operand, rec, eq))
    if isinstance(expr, Bin):
        return Bin(expr.line, expr.col, expr.text, expr.op, _prepare(expr.left, rec, eq),
                   _prepare(expr.right, rec, eq))
    if isinstance(expr, Call):
        if expr.fn == "sample":
            raise _refuse(f"`{expr.text}` in {_where(eq, rec)}: sample() draws from graphrnn's own random "
                          f"number generator, which PyTorch and JAX cannot reproduce, so the exported loss would "
                          f"not equal graphrnn's; export with argmax(...) instead, or run it in graphrnn",
                          eq, eq.name, rec)
        args = tuple(_prepare(a, rec, eq) for a in expr.args)
        if expr.fn == "one_hot":
            arg = expr.args[0]
            if isinstance(arg, Ref):
                classes = rec.variables[arg.name].classes
            else:  # one_hot(argmax(o)): as many classes as o has rows
                inner = arg.args[0] if isinstance(arg, Call) and arg.args else arg
                classes = _rows_of(inner, rec)
            if not classes:
                raise _refuse(f"`{expr.text}` in {_where(eq, rec)}: cannot tell how many classes "
                              f"one_hot has; write one_hot of a class-label variable", eq, eq.name, rec)
            args = (args[0], Num(expr.line, expr.col, str(classes), float(classes)))
        return Call(expr.line, expr.col, expr.text, expr.fn, args)
    return expr


def _delays(eqs: dict, members: set[str], sources: set[str] | None = None) -> dict[tuple[str, str], set[int]]:
    """Offsets of the references from ``members``' equations to ``sources`` (default: the members)."""
    sources = members if sources is None else sources
    out: dict[tuple[str, str], set[int]] = {}
    for name in members:
        for ref in references(eqs[name].expr):
            if ref.name in sources:
                out.setdefault((name, ref.name), set()).add(ref.offset)
    return out


def _direction(offsets: set[int]):
    """1 (reads only the past or the same step), -1 (only the future or the same step), 0 (the same step
    only), None (both the past and the future: a mixed-order block)."""
    if all(k == 0 for k in offsets):
        return 0
    if all(k <= 0 for k in offsets):
        return 1
    if all(k >= 0 for k in offsets):
        return -1
    return None


def lower(rec: Recurrence, mode: str = "teacher") -> Program:
    """Lower ``rec`` (in ``mode``: ``"teacher"`` as written, or ``"free"``, where the ``feedback`` lines feed
    the model's own output) to the :class:`Program` the exporters print."""
    if not isinstance(rec, Recurrence):
        raise ExportError(f"export takes a graphrnn Recurrence (gr.load(...) or gr.Recurrence(text)), "
                          f"not {type(rec).__name__}")
    if mode not in MODES:
        raise ExportError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "scheduled":
        raise ExportError("scheduled sampling draws, at each step, from graphrnn's own random number generator, "
                          "which PyTorch and JAX cannot reproduce; export mode 'teacher' or 'free'")
    if mode == "free" and not rec.spec.feedbacks:
        raise ExportError(f"{rec.name} has no `feedback` line, so free-running mode is the spec as written; "
                          f"export mode 'teacher'")
    eqs = rec.mode_equations(mode)
    for name, eq in eqs.items():
        if not any(isinstance(n, (Ref, Name)) for n in walk(eq.expr)):
            raise _refuse(f"{name}[{eq.anchor}] = {eq.expr.text} is a constant, which has no shape per sequence "
                          f"to export; multiply it into a variable instead", eq, name, rec)
    learned = rec.learned_inits()
    variables = {}
    for name in eqs:
        var = rec.variables[name]
        variables[name] = Var(name, var.rows, var.classes, eqs[name].anchor,
                              var.init or "zero", learned.get(name))
    data = []
    for name, var in rec.variables.items():
        if var.kind in ("input", "target", "context"):
            ahead = 0 if var.kind == "context" else rec.steps_needed(name, 1)[1] - 1
            data.append(Data(name, var.kind, var.rows, var.classes, var.init is not None, ahead))
    prepared = {name: Def(name, _prepare(eq.expr, rec, eq), eq.text, eq.line) for name, eq in eqs.items()}
    if mode == "free":
        for fed in eqs:
            if rec.variables[fed].kind == "fed":
                source = rec.variables[fed].feedback_of
                prepared[fed].text = f"{source}[t] = {rec.spec.feedbacks[source].expr.text}  (fed back)"

    loops: list[Loop] = []
    last: list[Def] = []
    current: list[str] = []
    direction = 0
    for block in plan_blocks(eqs, 1):
        members = list(block.members)
        if eqs[members[0]].anchor == "tau":  # nothing at every step reads them: they can all come last
            last += [prepared[m] for m in members]
            continue
        inner = {k for ks in _delays(eqs, set(members)).values() for k in ks}
        own = _direction(inner)
        if own is None:
            past = sorted({f"{a}[t{k:+d}]" for (b, a), ks in _delays(eqs, set(members)).items() for k in ks if k < 0})
            future = sorted({f"{a}[t{k:+d}]" for (b, a), ks in _delays(eqs, set(members)).items()
                             for k in ks if k > 0})
            first = min((eqs[m] for m in members), key=lambda e: e.line)
            raise _refuse(f"the variables {', '.join(members)} read each other both from the past "
                          f"({', '.join(past)}) and from the future ({', '.join(future)}): such a mixed-order block "
                          f"has no single direction in time, so it cannot be one loop or scan; split the recurrence "
                          f"into a forward and a backward part (as fig. 10.11's h and g)", first, members[0], rec)
        across = {k for ks in _delays(eqs, set(members), set(current)).values() for k in ks}
        joined = _direction(inner | across | ({-direction} if direction else set()))
        if current and joined is not None:
            current += members
            direction = joined
        else:
            if current:
                loops.append(_loop(current, direction, prepared, eqs))
            current, direction = members, own
    if current:
        loops.append(_loop(current, direction, prepared, eqs))
    losses = [(name, eqs[name].anchor) for name in rec.losses]
    feedbacks = {n: rec.variables[n].feedback_of for n in eqs if rec.variables[n].kind == "fed"}
    return Program(rec.name, rec.title or "", rec.text, mode, dict(rec.all_param_shapes()), data, variables,
                   loops, last, losses, feedbacks)


def _loop(names: list[str], direction: int, prepared: dict[str, Def], eqs: dict) -> Loop:
    """A loop over ``names`` (in evaluation order), each carrying as many of its values as it is read back."""
    inside = set(names)
    defs = [prepared[n] for n in names]
    for d in defs:
        d.depth = max([abs(k) for (_, src), ks in _delays(eqs, inside).items() if src == d.name for k in ks] + [0])
    return Loop(direction or 1, defs)
