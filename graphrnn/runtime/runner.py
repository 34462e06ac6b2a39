"""The runtime's one entry point: :func:`run` checks a call, plans it and picks a strategy.

The strategies (see docs/internals.md):

* ``"taped"`` (:mod:`.taped`): every step is engine nodes.  With dummy copies (the
  default) every use of a parameter at step t goes through its own node ``W^(t)``,
  the book's §10.2.2; it also serves overrides, ``retain_graph``, anomaly mode and
  gradient-path drawings, and whatever the compiled program cannot run;
* ``"compiled"`` (:mod:`.program`): ``copies=False``, a program fixed once per kind of
  run, with reused buffers and generated step code;
* ``"segments"`` (:mod:`.segments`): ``checkpoint=`` or ``truncate=``, the compiled
  program (or, failing that, the taped one) over consecutive segments of steps.

Every piece below travels as one :class:`RunPlan`.

>>> import graphrnn as gr
>>> rec = gr.load("fig10_3", sizes={"H": 3})
>>> plan = RunPlan.make(rec, rec.random_inputs(5, batch=2), copies=False)
>>> plan.T, plan.batch, plan.strategy
(5, 2, 'compiled')
>>> run(rec, rec.random_inputs(5, batch=2), copies=False).program is not None
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from .. import engine as E
from ..engine.tensor import Tensor
from ..errors import SpecError
from ..recurrence.recurrence import Recurrence
from ..recurrence.unroll import key
from . import cache, segments, taped
from ..errors import DataError
from .data import (
    batch_sizes, check_data, check_lengths, check_params, check_state, padded_inputs, state_delays, state_of,
    steps_in,
)
from .equations import batched_members
from .program import NotCompilable, Program, run_compiled
from .result import NO_LOSS, Run

#: run ``copies=False`` through a compiled program whenever it can (False: the taped engine; for comparisons)
PROGRAM = True
#: a compiled run whose buffers for every step would take more than this is *lean*: it keeps per step only
#: what the backward pass reads (the recurrent states and their gradients), see program.Program.lean.
#: Below it, the input projections and the ∇W products run over all steps at once (faster for short runs:
#: the benchmarks' S1-S3 stay below); above it, those buffers measured slower than the step they save
LEAN_BYTES = 1 << 25


@dataclass
class RunPlan:
    """One call of :func:`run`, checked: what it asks for and what every strategy reads.

    ``fast`` is true when no dummy copies are wanted: the equations then have their
    data-only terms split off (:func:`.equations.fast_equations`) and ``batched`` names
    the variables computed for many steps at once."""

    rec: Recurrence
    T: int
    mode: str
    dtype: np.dtype
    data: dict
    params: dict
    backward: bool = True
    p: float = 0.5
    seed: int = 0
    copies: bool = True
    overrides: dict = field(default_factory=dict)
    retain_graph: bool = False
    checkpoint: int | None = None
    truncate: tuple[int, int] | None = None
    fast: bool = False
    lean: bool = False
    eqs: dict = field(default_factory=dict, repr=False)
    blocks: list = field(default_factory=list, repr=False)
    batched: set = field(default_factory=set, repr=False)
    compiled: dict = field(default_factory=dict, repr=False)
    batch: int = 1
    #: the values before step 1 given by ``initial_state=``, as ``{(state, step <= 0): array}``
    initial: dict = field(default_factory=dict, repr=False)

    @classmethod
    def make(cls, rec, inputs, params=None, T=None, mode="teacher", initial_state=None, **options) -> "RunPlan":
        """Check the arguments of :func:`run` and plan the run (equations, blocks, compiled expressions)."""
        if mode not in ("teacher", "free", "scheduled"):
            raise ValueError(f"mode must be 'teacher', 'free' or 'scheduled', not {mode!r}")
        check_mode(rec, mode)
        p = options.get("p", 0.5)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"the scheduled-sampling probability p must lie in [0, 1], not {p}")
        dtype = np.dtype(options.pop("dtype", np.float64))
        options["backward"] = _backward(rec, options.get("backward"))
        data = check_data(rec, inputs, dtype)
        if T is None:
            T = steps_in(rec, data)
        params = check_params(rec, rec.init_params(dtype=dtype) if params is None else params, dtype)
        options["overrides"] = options.get("overrides") or {}
        options["checkpoint"] = segments.segment_length(options.get("checkpoint"), T)
        segments.check_request(options["checkpoint"], options.get("truncate"), options["overrides"],
                               options.get("backward", True))
        plan = cls(rec, T, mode, dtype, data, params, **options)
        plan.batch = next(iter(batch_sizes(rec, data).values()), 1)
        # segments and copies=False need no dummy copies; overrides need the taped run's nodes
        plan.fast = (not plan.copies or plan.segmented) and not plan.overrides
        plan.lean = plan.compilable and not plan.segmented and plan.full_bytes() > LEAN_BYTES
        plan.planned()
        plan.initial = check_state(rec, plan.eqs, initial_state, plan.batch, dtype)
        return plan

    def full_bytes(self) -> int:
        """About what the buffers of every step would take (values and gradients of the computed variables)."""
        rows = sum(v.rows or 1 for v in self.rec.variables.values() if v.kind == "computed")
        return 2 * rows * self.T * self.batch * self.dtype.itemsize

    def planned(self) -> "RunPlan":
        """Fill in the equations, blocks, batched variables and compiled expressions (cached on the recurrence)."""
        # a lean run does not split the data-only terms off (their buffers would hold every step)
        split = self.fast and not self.lean
        self.eqs = cache.equations(self.rec, self.mode, split)
        self.blocks = cache.blocks(self.rec, self.eqs, self.T, (self.mode, split))
        self.batched = batched_members(self.rec, self.eqs, self.blocks) if self.fast else set()
        self.compiled = cache.compiled(self.rec, self.eqs, (self.mode, split), taped.compile_expression)
        return self

    @property
    def segmented(self) -> bool:
        return bool(self.checkpoint) or bool(self.truncate)

    @property
    def strategy(self) -> str:
        """``"segments"``, ``"compiled"`` or ``"taped"``: what :func:`run` will do with this plan."""
        if self.segmented:
            return "segments"
        if self.compilable and self.program() is not None:
            return "compiled"
        return "taped"

    @property
    def compilable(self) -> bool:
        """Whether a compiled program may run this plan (it keeps no engine nodes to inspect)."""
        return (PROGRAM and self.fast and not self.overrides and not self.retain_graph
                and not E.tensor.MODE.anomaly)

    def program(self):
        """The compiled program of this plan (cached on the recurrence), or None when it cannot be compiled."""
        return cache.program(self, _build_program)

    def segment(self, length: int) -> "RunPlan":
        """The plan of a segment of ``length`` steps (its data the first ``length`` steps of this plan's,
        and as many beyond as this plan's data reaches beyond T: a read of ``x[t+1]``)."""
        part = {n: d if self.rec.variables[n].kind == "context" else d[:length + len(d) - self.T]
                for n, d in self.data.items()}
        return replace(self, T=length, data=part, checkpoint=None, truncate=None, lean=False).planned()

    def leaves(self) -> dict[str, Tensor]:
        """The parameters as engine leaves (with a gradient when the run goes backward)."""
        return {name: Tensor(arr, requires_grad=self.backward, name=name) for name, arr in self.params.items()}


def check_mode(rec: Recurrence, mode: str) -> None:
    """Free running and scheduled sampling feed the model's outputs back through the spec's ``feedback``
    lines: on a spec without one they would quietly run teacher forcing, so they are an error."""
    if mode != "teacher" and not rec.spec.feedbacks:
        targets = [n for n, v in rec.variables.items() if v.kind == "target"]
        example = f"`feedback {targets[0]}[t] = argmax(o[t])`" if targets else "`feedback y[t] = argmax(o[t])`"
        raise SpecError(f"mode={mode!r} feeds the model's own outputs back in place of a target, but {rec.name} "
                        f"has no `feedback` line saying what to feed; add one such as {example} (see "
                        f"fig10_6), or run mode='teacher'", variable=targets[0] if targets else None)


def _backward(rec: Recurrence, backward) -> bool:
    """Whether a run goes backward: by default when the spec has a loss (a spec without one, such as
    fig. 10.2's, runs forward only); ``backward=True`` on a spec without a loss is an error."""
    if backward is None:
        return bool(rec.losses)
    if backward and not rec.losses:
        raise SpecError(NO_LOSS.format(rec.name) + "; or run forward only: leave out backward=True "
                        "(a spec without a loss runs forward by default) or pass backward=False")
    return bool(backward)


def _build_program(plan):
    try:
        return Program(plan)
    except NotCompilable:
        return None


def run(rec: Recurrence, inputs, params=None, T=None, mode="teacher", *, p: float = 0.5, seed: int = 0,
        dtype=np.float64, backward: bool | None = None, copies: bool = True, overrides=None,
        retain_graph: bool = False, checkpoint: int | bool | None = None,
        truncate: tuple[int, int] | None = None, initial_state: dict | None = None, lengths=None) -> Run:
    """Unroll ``rec`` over ``T`` steps, evaluate it on ``inputs`` and back-propagate the loss.

    ``inputs`` maps each input/target to an array stacked over time on axis 0:
    ``(T, rows, B)`` for vectors, ``(T, B)`` for class labels, ``(rows, B)`` for a
    context.  ``params`` defaults to ``rec.init_params()``.  ``T`` defaults to the
    length of the data.  ``mode`` is ``"teacher"`` (teacher forcing: the true
    targets are fed back), ``"free"`` (the model's own outputs, without gradient)
    or ``"scheduled"`` (the model's output with probability ``p`` at each step and
    sequence, drawn with ``seed``).

    ``backward`` (default: when the spec has a loss) back-propagates the loss; ``backward=False``
    runs forward only (no gradients, no dummy copies: ``run.values`` holds every per-step value,
    ``run.loss`` the loss when there is one).  A spec without a loss (fig. 10.2's) runs forward by
    default; ``backward=True`` on it is a :class:`~graphrnn.errors.SpecError`.

    With ``copies`` (the default) every step is evaluated on its own and every use
    of a parameter at step t goes through a dummy copy W^(t) whose gradient is
    kept (``Run.copy_grads``).  ``copies=False`` is the fast path: no dummy copies,
    a compiled program (``run.program.describe()``) that computes every variable no
    cycle passes through (the outputs, the losses, the input projections) for many
    steps at once; values and gradients are the same.

    ``overrides`` maps node names (``"h[3]"``) to arrays that replace those nodes'
    values once computed, so everything downstream sees them (finite differences
    "inside the unrolled graph", §10.2.2); an overridden node is a constant.  A
    dummy copy (``"W^(3)"``) can be overridden too: only step 3 then uses that value.
    ``retain_graph`` keeps the engine graph after the backward pass, so that
    ``graphrnn.grad(run.tensors["L[5]"], ...)`` can walk it again.

    Memory (see :mod:`.segments`): ``checkpoint=True`` (or a segment length) keeps
    only about √T stored steps and recomputes each segment during the backward
    pass — the same gradients in a fraction of the memory; ``truncate=(k1, k2)``
    back-propagates, every k1 steps, the losses of those steps through at most k2
    steps (truncated BPTT).  Both give the loss, the per-step losses and the
    parameters' gradients, not every per-step value and gradient.

    A long sequence can run in pieces: ``run.final_state`` holds the states at the last
    steps (``{"h": (rows, B)}``; ``(k, rows, B)`` for a state read k steps back), and
    ``initial_state=`` starts the next run from them instead of the declared initial
    values (a given state replaces a learned one for that run; a state read at a later
    step, ``g[t+1]``, cannot be given).  The values are those of one run over the whole
    sequence; the gradients treat the carried state as a constant (truncated BPTT at
    the boundary).

    >>> import graphrnn as gr
    >>> rec = gr.load("fig10_3", sizes={"H": 3})
    >>> data = rec.random_inputs(6, batch=2)
    >>> first = run(rec, {n: a[:4] for n, a in data.items()}, copies=False)
    >>> rest = run(rec, {n: a[4:] for n, a in data.items()}, copies=False, initial_state=first.final_state)
    >>> bool(abs(rest.values["h[2]"] - run(rec, data, copies=False).values["h[6]"]).max() < 1e-12)
    True
    >>> a, b = run(rec, data), run(rec, data, copies=False, checkpoint=2)
    >>> bool(abs(a.grads["W"] - b.grads["W"]).max() < 1e-12)
    True

    Sequences of different lengths share a batch with ``lengths=`` (one whole number per
    sequence, or a ``(T, B)`` mask of ones then zeros; see docs/lengths.md): each sequence's data
    fills its first steps and is padded at the end.  The loss, every gradient and every value at
    a sequence's real steps are those of the sequence run alone; a padded step adds nothing to
    the loss or the gradients; ``tau`` is each sequence's own last step.  At a padded step a state
    (a variable read at an earlier step) holds its value of the sequence's last step, so
    ``run.final_state`` is each sequence's own; other values there are computed from the padding
    and mean nothing.  The recurrence runs rewritten with masks
    (:func:`graphrnn.recurrence.padded.padded`), on every strategy.

    >>> full = run(rec, data)
    >>> cut = run(rec, {n: a[:, ..., :1] for n, a in data.items()}, T=4)
    >>> both = run(rec, data, lengths=[4, 6])
    >>> bool(abs(both.values["h[4]"][:, 0] - cut.values["h[4]"][:, 0]).max() < 1e-12)
    True
    >>> bool(abs(both.values["h[6]"][:, 0] - cut.values["h[4]"][:, 0]).max() < 1e-12)  # held
    True
    """
    if lengths is not None:
        return _run_lengths(rec, inputs, lengths, dict(
            params=params, T=T, mode=mode, p=p, seed=seed, dtype=dtype, backward=backward, copies=copies,
            overrides=overrides, retain_graph=retain_graph, checkpoint=checkpoint, truncate=truncate,
            initial_state=initial_state))
    plan = RunPlan.make(rec, inputs, params, T, mode, p=p, seed=seed, dtype=dtype, backward=backward,
                        copies=copies, overrides=overrides, retain_graph=retain_graph, checkpoint=checkpoint,
                        truncate=truncate, initial_state=initial_state)
    strategy = plan.strategy
    if strategy == "segments":
        return segments.run_segments(plan)
    got = run_compiled(plan.program(), plan) if strategy == "compiled" else taped.run_taped(plan)
    values = got.values  # not the Run itself: a function holding its Run would keep it (and its buffers) alive
    got._final_state = lambda: state_of(lambda vs: _value(plan, values, *vs), state_delays(plan.rec, plan.eqs),
                                        plan.T)
    return got


def _run_lengths(rec: Recurrence, inputs, lengths, options: dict) -> Run:
    """A run of sequences of different lengths: the recurrence rewritten with masks, run as usual."""
    from ..recurrence.padded import padded

    check_mode(rec, options["mode"])
    pad = padded(rec)
    if options["mode"] != "teacher" and pad.not_free:
        raise SpecError(f"lengths= with mode={options['mode']!r}: {pad.not_free}, which a padded batch cannot "
                        f"give each sequence as it would alone; run the sequences of each length separately, "
                        f"or mode='teacher'")
    dtype = np.dtype(options["dtype"])
    data = check_data(rec, inputs, dtype)
    batch = next(iter(batch_sizes(rec, data).values()), 1)
    T = options.pop("T")
    available = steps_in(rec, data, strict=T is None) if any(
        rec.variables[n].kind != "context" for n in data) else None
    lengths = check_lengths(lengths, batch, available if T is None else max(T, available or T))
    if T is None:
        T = int(lengths.max())
    elif int(lengths.max()) > T:
        raise DataError(f"the longest sequence has {int(lengths.max())} steps, more than T={T}; pass T of at "
                        f"least {int(lengths.max())} or leave T out")
    if pad.tied:  # a learned initial value read after a sequence's end: one more name for it
        given = check_params(rec, rec.init_params(dtype=dtype) if options["params"] is None else options["params"],
                             dtype)
        options["params"] = {**given, **{p: given[q] for p, q in pad.tied.items()}}
    got = run(pad.rec, padded_inputs(rec, pad, data, lengths, T, dtype), T=T, **options)
    got.rec = rec
    got.lengths = lengths
    if pad.tied:
        got.values = _Tied(got.values, pad.tied, add=False)
        got.grads = _Tied(got.grads, pad.tied, add=True)
        for p, q in pad.tied.items():
            extra = got.copy_grads.pop(p, {})
            mine = got.copy_grads.setdefault(q, {})
            for t, g in extra.items():
                mine[t] = mine[t] + g if t in mine else g
    values = got.values
    plan_initial = check_state(pad.rec, pad.rec.equations, options["initial_state"], batch, dtype)
    delays = state_delays(rec, rec.equations)
    at_T = got.__dict__.get("_final_state")  # the rewritten run's states at step T (held: each sequence's last)

    def own(name, s):
        """``name`` at each sequence's own step ``s`` counted back from its end (``s <= 0``)."""
        columns = []
        for b, n in enumerate(lengths):
            step = int(n) + s
            if (name, step) in plan_initial:
                whole = plan_initial[(name, step)]
            elif step >= 1 and key(name, step) not in values:  # a segmented run keeps no per-step values
                if s != 0 or name not in pad.held:
                    raise DataError(f"final_state[{name!r}] of a padded batch needs {name} at each sequence's last "
                                    f"{delays[name]} steps, which a checkpointed or truncated run does not keep; "
                                    f"run without checkpoint=/truncate= to carry the state on")
                final = at_T() if callable(at_T) else at_T
                whole = final[name] if delays[name] == 1 else final[name][-1]
            else:
                whole = _value_of(pad.rec, options, values, name, step, batch, dtype)
            whole = np.asarray(whole)
            columns.append(np.broadcast_to(whole, (whole.shape[0], batch))[:, b])
        return np.stack(columns, axis=1)

    got._final_state = lambda: {name: own(name, 0) if k == 1 else np.stack([own(name, i - k + 1) for i in range(k)])
                                for name, k in delays.items()}
    return got


class _Tied(Mapping):
    """A run's values or gradients without the parameters a padded run added for a learned initial value
    (:attr:`graphrnn.recurrence.padded.Padded.tied`); with ``add``, their gradients added to that value's."""

    def __init__(self, base, tied: dict, add: bool):
        self._base, self._tied, self._add = base, tied, add
        self._into = {q: [p for p, q2 in tied.items() if q2 == q] for q in tied.values()}

    def __getitem__(self, name):
        if name in self._tied:
            raise KeyError(name)
        got = self._base[name]
        if self._add and name in self._into:
            got = got + sum(self._base[p] for p in self._into[name])
        return got

    def __iter__(self):
        return (name for name in self._base if name not in self._tied)

    def __len__(self) -> int:
        return len(self._base) - sum(1 for p in self._tied if p in self._base)

    def __repr__(self):
        return f"<NodeMap of {len(self)} nodes>"


def _value_of(rec, options, values, name, s, batch, dtype):
    """``name``'s value at step ``s`` of a run's ``values``; before step 1, its initial value."""
    got = values.get(key(name, s))
    if got is not None:
        return got
    if s >= 1:
        raise AssertionError(f"{key(name, s)} is missing from a run's values")
    learned = rec.learned_inits().get(name)
    if learned is not None:
        params = options["params"] if options["params"] is not None else rec.init_params(dtype=dtype)
        return np.repeat(np.asarray(params[learned], dtype=dtype).reshape(-1, 1), batch, axis=1)
    return np.zeros((rec.variables[name].rows, batch), dtype=dtype)


def _value(plan, values, name, s):
    """``name``'s value at step ``s`` of a run; before step 1 (a short run of a state read several
    steps back), the value it started from."""
    got = values.get(key(name, s))
    if got is not None:
        return got
    if (name, s) in plan.initial:
        return plan.initial[(name, s)]
    learned = plan.rec.learned_inits().get(name)
    if learned is not None:
        return np.repeat(plan.params[learned], plan.batch, axis=1)
    return np.zeros((plan.rec.variables[name].rows, plan.batch), dtype=plan.dtype)
