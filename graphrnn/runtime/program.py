"""The fast path compiled: a run as a fixed program of numpy calls over reused buffers.

A run without dummy copies (``copies=False``) does the same work every time for a given
recurrence, number of steps and batch, so it is planned once and kept (on the
:class:`~graphrnn.Recurrence`, keyed by mode, T, batch and dtype):

* each equation is traced once into a *tape* of registry ops (:mod:`.tape`);
* the blocks of the unrolled graph become *stages*, in evaluation order: a
  variable no cycle passes through runs its tape over many steps at once (the
  steps side by side as columns, chunk by chunk); a recurrent block runs step
  by step, as Python generated from its tapes (:mod:`.stepcode`);
* a fed variable of free or scheduled mode (``feed(argmax(o[t]))``) is a step of its
  recurrent stage computed by the engine's own functions with the run's generator
  (:class:`_Host`): the taped run's draws, in its order; no gradient passes it;
* every variable has one buffer holding all its steps side by side (a column
  block per step, with the initial values before step 1 and after T), and one
  for its gradient; tapes read their operands as views of these buffers;
* the backward pass walks the stages in reverse with the registry's VJP rules;
  the gradient of a parameter used as ``W @ v`` inside a recurrence is one
  matrix product over the stacked steps, not one outer product per step; a
  context's gradient is gathered like a parameter's (``Run.context_grads``);
* the variables after the last recurrent block (outputs and losses) run forward
  and backward chunk by chunk while the chunk is still in the cache, so their
  intermediate values are never stored for all steps;
* a result is written over a temporary no VJP reads, or straight into its
  variable's buffer, and the first gradient a variable receives is written, not
  added (so no buffer needs zeros first).

The buffers are kept from run to run (a *workspace*): a run of a few megabytes
that allocated fresh memory every time would spend much of its time in page
faults.  A workspace is reused only when nothing outside holds a view of it —
a :class:`Run` that is still alive, or an array taken from ``run.values`` —
otherwise the next run gets a new one; values handed out never change.  Two threads
running one recurrence get two workspaces.  ``rec.release_buffers()`` drops them.

The program is an execution plan only: the unrolled graph the drawings and the
step-by-step check use is the same, and the values and gradients are those of
the engine (the same registry ops in the same order, sums associated per chunk).
It is the one fast path: what it cannot run (see each ``raise NotCompilable``:
``argmax`` or ``sample`` inside an equation that carries a gradient, a loss or a
class label computed inside a recurrence, a per-step number read inside one, an
equation at t reading a value at tau, a block with missing steps, data read outside
the steps given) runs on the taped engine step by step, as do runs with overrides,
``retain_graph`` or anomaly detection.
"""

from __future__ import annotations

import bisect
import sys
import threading
import weakref

import numpy as np

from .. import engine as E
from ..engine.ops import REGISTRY, SliceGrad, unbroadcast
from ..engine.tensor import Tensor
from ..errors import DataError, SpecError
from ..recurrence.spec import LOSSES, Call, references, walk
from ..recurrence.unroll import key
from .result import NO_LOSS, NodeMap, Run, StepLosses
from .stepcode import INTO, StepCode, placeholder_of
from .tape import CONST, IN, OP, Tape, operand as _operand

_MATMUL = REGISTRY["matmul"]
#: functions whose value is not a registry op of their operands (a draw, a choice, a fed-back value)
UNTRACEABLE = {"argmax", "sample", "feed"}
PARAM, VAR, CONTEXT = "param", "var", "context"

#: a stage computed for many steps at once runs over chunks of about this many columns (steps × batch):
#: wide enough for matrix products to run at full speed, narrow enough for their temporaries to stay
#: in the allocator's reused memory (wider chunks measured slower, from fresh pages)
CHUNK_COLUMNS = 1024
#: and the widest array of a chunk stays below this size
CHUNK_BYTES = 1 << 22
#: up to this many steps, a recurrent step reads its columns from lists of views (see Program.listed)
LISTED_STEPS = 4096
#: a recurrent stage of one variable runs its steps in one generated loop (not one call per step)
LOOPS = True
#: with one sequence (B = 1), a recurrent stage works on step-major copies of its buffers (Workspace.shadow)
SHADOW = True


class NotCompilable(Exception):
    """The recurrence (or this run of it) needs the taped engine (step by step, see run_taped)."""


# ------------------------------------------------------------------------------ tracing


class _Tracer:
    """A stand-in run context for tracing one equation: placeholders for what it reads."""

    lean = False

    def __init__(self, program, stacked: bool):
        self.program, self.stacked_mode = program, stacked
        self.dtype, self.batch, self.T = program.dtype, program.B, program.T
        self.sources: dict[int, tuple] = {}
        self.keep: list = []  # the placeholders stay alive while their ids are keys

    def _leaf(self, source, array):
        t = Tensor(array)
        self.sources[id(t)] = self.sources[id(t.data)] = source  # a label array may come back as a constant
        self.keep.append(t)
        return t

    def param(self, name, t):
        return self._leaf((PARAM, name), np.zeros(self.program.param_shapes[name], dtype=self.dtype))

    def context(self, name):
        return self._leaf((CONTEXT, name), np.zeros(self.program.context_shapes[name], dtype=self.dtype))

    def ref(self, name, s, needed_by):
        shape, dtype = self.program.placeholder(name)
        return self._leaf((VAR, name, s), np.zeros(shape, dtype=dtype))


def _trace(program, compiled, name, stacked: bool, at_tau: bool = False) -> Tape:
    tracer = _Tracer(program, stacked)
    if at_tau:
        tracer.T = 0  # a reference to tau + k is then traced as the offset k
    with E.enable_grad(), np.errstate(all="ignore"):
        root = compiled[name](tracer, 0)  # traced at t = 0: a reference's step is its offset
    if not isinstance(root, Tensor):
        raise NotCompilable(f"{name} is a constant")
    sources = tracer.sources
    for node in E.topological_order(root, only_grad=False):
        if node.op is None and id(node) not in sources and id(node.data) in sources:
            sources[id(node)] = sources[id(node.data)]  # the labels of a loss, wrapped as a constant
    tape = Tape(root, sources)
    tape.root_shape, tape.root_dtype = tuple(root.shape), np.dtype(root.dtype)
    nodes = E.topological_order(root, only_grad=False)
    ops = [node for node in nodes if node.op is not None and id(node) not in sources]
    tape.op_ndims = [[p.ndim for p in node.parents] for node in ops]  # per op, its operands' ndims
    tape.out_shapes = [node.shape for node in ops]  # at the traced width (one step)
    tape.out_dtypes = [node.dtype for node in ops]
    inputs = [node for node in nodes if id(node) in sources]  # in the tape's order (see tape.Tape)
    tape.in_shapes, tape.in_dtypes = [node.shape for node in inputs], [node.dtype for node in inputs]
    return tape


# ------------------------------------------------------------------------------ the plan


class _Layout:
    """Where a variable's steps live: steps ``lo..hi`` side by side, ``B`` columns each."""

    __slots__ = ("name", "shape", "dtype", "lo", "hi", "kind", "window", "direct")

    def __init__(self, name, shape, dtype, lo, hi, kind):
        self.name, self.shape, self.dtype, self.lo, self.hi, self.kind = name, shape, dtype, lo, hi, kind
        #: a lean program keeps only one chunk of this variable's steps (see Program.lean)
        self.window = False
        #: and reads this data variable straight from the caller's array (steps on axis 0), no copy
        self.direct = False


class _Stage:
    """Variables computed together: ``all`` steps at once (one member), or ``steps`` one by one."""

    def __init__(self, kind, members, steps, tapes, inputs):
        self.kind, self.members, self.steps, self.tapes, self.inputs = kind, members, steps, tapes, inputs
        self.tables: dict = {}
        self.code: dict = {}  # name -> its generated step (stepcode.py), for a recurrent stage
        self.hosts: dict = {}  # name -> its _Host, for a fed variable of a recurrent stage
        self.assign: dict = {}  # name -> the inputs whose gradient is written, not added (the first to arrive)
        self.keep: dict = {}  # name -> which op outputs the backward pass reads
        self.reuse: dict = {}  # name -> which ops may write over a temporary operand
        self.chain: dict = {}  # name -> which ops may write straight into the variable's buffer
        self.fused = False  # run forward and backward chunk by chunk (the tail after the last recurrence)


class _Host:
    """A fed variable (free running, scheduled sampling: ``feed(argmax(o[t]))``), computed step by step
    by its equation's engine functions on views of the run's buffers, with the run's generator, so that
    a ``sample`` or a scheduled coin draws exactly what the taped run draws, in the same order.  The fed
    value carries no gradient, so the backward pass skips it."""

    def __init__(self, name, compiled, eq):
        self.name, self.compiled = name, compiled
        #: what it reads, as a tracer names it: (VAR, variable, offset from t)
        self.reads = [(VAR, r.name, r.offset) for r in references(eq.expr)]

    def step(self, ws, params):
        """The function computing step t into the variable's buffer."""
        view = _HostView(ws, params)
        compiled, out = self.compiled, ws.steps
        name = self.name

        def step(t):
            with E.no_grad():
                got = compiled(view, t)
            out(name, t, t)[...] = got.data if isinstance(got, Tensor) else got

        return step


class _HostView:
    """What a host's equation reads, answered from a workspace (a run context of :mod:`.taped`)."""

    stacked_mode = False
    lean = False

    def __init__(self, ws, params):
        program = ws.program
        self.ws, self.params = ws, params
        self.T, self.dtype, self.batch = program.T, program.dtype, program.B
        self.rng, self.p = ws.rng, ws.p

    def param(self, name, t):
        return Tensor(self.params[name])

    def context(self, name):
        return Tensor(self.ws.context(name, 1))

    def ref(self, name, s, needed_by):
        ws = self.ws
        if ws.program.layouts[name].direct:
            return Tensor(ws.values[name][s - 1])
        return Tensor(ws.steps(name, s, s))


class Program:
    """A compiled run of ``rec`` over ``T`` steps and a batch of ``B`` (see the module's doc)."""

    def __init__(self, plan):
        """Compile ``plan`` (a :class:`~.runner.RunPlan` without dummy copies); raises
        :class:`NotCompilable` when the recurrence needs the taped strategy."""
        rec, eqs, blocks, batched, compiled = plan.rec, plan.eqs, plan.blocks, plan.batched, plan.compiled
        T, B, data, params = plan.T, plan.batch, plan.data, plan.params
        self.rec, self.T, self.B, self.dtype, self.mode = rec, T, B, np.dtype(plan.dtype), plan.mode
        #: keep per step only what the backward pass reads (a long run; see _open_windows)
        self.lean = bool(getattr(plan, "lean", False))
        self.param_shapes = {n: a.shape for n, a in params.items()}
        self.context_shapes = {n: a.shape for n, a in data.items() if rec.variables[n].kind == "context"}
        #: the contexts that get a gradient (``Run.context_grads``): the float ones
        self.context_grads = {n for n in self.context_shapes if data[n].dtype.kind == "f"}
        self.data_lengths = {n: len(a) for n, a in data.items() if rec.variables[n].kind != "context"}
        self.learned = rec.learned_inits()
        self.losses = [n for n in rec.losses]
        self.layouts: dict[str, _Layout] = {}
        self._check(rec, eqs, blocks, batched)
        self.stages: list[_Stage] = []
        self.at_tau = {name for name, eq in eqs.items() if eq.anchor == "tau"}
        #: the fed variables (free and scheduled modes): computed step by step by their equation on the
        #: engine's own functions (see _Host), with the run's generator; no gradient passes through them
        self.fed = {n for n in eqs if rec.variables.get(n) is not None and rec.variables[n].kind == "fed"}
        for block in blocks:
            hosts = self.fed.intersection(block.members)
            if hosts and len(block.steps) != T * len(block.members):
                raise NotCompilable("a block with missing steps")
            if (block.members[0] in batched or block.members[0] in self.at_tau) and not hosts:
                name = block.members[0]
                # an equation of the last step only (o[tau]) is a stage of one step, T, its references
                # traced as offsets from T (see _Tracer)
                tape = _trace(self, compiled, name, stacked=True, at_tau=name in self.at_tau)
                self._add_layout(name, tape)
                self.stages.append(_Stage("all", [name], None, {name: tape}, {}))
            else:
                for m in block.members:
                    var = rec.variables[m]
                    if m in hosts:
                        shape, dtype = ((B,), np.dtype(np.int64)) if var.is_label else ((var.rows, B), self.dtype)
                        self.layouts[m] = _Layout(m, shape, dtype, 1, T, "fed")
                    else:
                        self.layouts[m] = _Layout(m, (var.rows, B), self.dtype, 1, T, "computed")
                tapes = {m: _trace(self, compiled, m, stacked=False) for m in block.members if m not in hosts}
                for m, tape in tapes.items():
                    got = tape.root_shape
                    if got != (rec.variables[m].rows, B):
                        raise NotCompilable(f"{m} has shape {got}")
                stage = _Stage("steps", list(block.members), block.steps, tapes, {})
                stage.hosts = {m: _Host(m, compiled[m], eqs[m]) for m in hosts}
                self.stages.append(stage)
        for stage in self.stages:
            for m, tape in stage.tapes.items():
                stage.inputs[m] = [self._resolve(src) for src in tape.inputs]
            for m, host in stage.hosts.items():
                stage.inputs[m] = [self._resolve(src) for src in host.reads]
        self._extend_layouts()
        for stage in self.stages:
            for m in stage.tapes:
                stage.keep[m] = _kept_outputs(stage.tapes[m])
                stage.reuse[m] = reusable_operands(stage.tapes[m], stage.keep[m])
                stage.chain[m] = dest_chain(stage.tapes[m], stage.reuse[m])
                stage.tables[m] = self._backward_table(stage, m)
        self._plan_assignments()
        self._mark_tail()
        self.tail = [s for s in self.stages if s.fused]
        self.tail_chunks = self._chunks(*self.tail) if self.tail else []
        if self.lean:
            self._open_windows()
        #: the recurrent steps read per-step views listed once per workspace (a short run only: the lists
        #: cost about 100 bytes a step and variable)
        self.listed = not self.lean and T <= LISTED_STEPS
        for stage in self.stages:
            for m in stage.tapes:
                if stage.kind == "steps":
                    stage.code[m] = self._step_code(stage, m)
        self._pool: list[_Workspace] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ compile-time checks
    def _check(self, rec, eqs, blocks, batched):
        fed = {n for n, v in rec.variables.items() if v.kind == "fed"}
        tau = {name for name, eq in eqs.items() if eq.anchor == "tau"}
        for name, eq in eqs.items():
            if name in fed:
                if eq.anchor != "t" or any(r.anchor != "t" for r in references(eq.expr)):
                    raise NotCompilable(f"{name} is fed at the last step")
                continue  # computed on the engine's functions, step by step (_Host)
            for node in walk(eq.expr):
                if isinstance(node, Call) and node.fn in UNTRACEABLE:
                    raise NotCompilable(f"{name} calls {node.fn}")
                if eq.anchor == "t" and getattr(node, "anchor", "t") == "tau":
                    raise NotCompilable(f"{name} reads a value at tau")
            for ref in references(eq.expr):
                if ref.name in tau and ref.offset != 0:
                    raise NotCompilable(f"{name} reads {ref.text}, a value of the last step at another step")
        for block in blocks:
            if block.members[0] in batched or block.members[0] in tau:
                continue
            for m in block.members:
                var = rec.variables.get(m)
                if m in fed:
                    continue
                if var is None or var.is_label or var.shape == () or not var.rows:
                    raise NotCompilable(f"{m} cannot be stepped")
                if any(isinstance(n, Call) and n.fn in LOSSES for n in walk(eqs[m].expr)):
                    raise NotCompilable(f"{m} is a loss inside a recurrence")
            if len(block.steps) != self.T * len(block.members):
                raise NotCompilable("a block with missing steps")

    def placeholder(self, name):
        """Shape and dtype of one step of ``name``, for tracing."""
        lay = self.layouts.get(name)
        if lay is not None:
            return lay.shape, lay.dtype
        var = self.rec.variables.get(name)
        if var is None:
            raise NotCompilable(f"{name} is read before it is computed")
        if var.is_label:
            return (self.B,), np.dtype(np.int64)
        if var.rows:
            return (var.rows, self.B), self.dtype
        raise NotCompilable(f"no shape for {name}")

    def _add_layout(self, name, tape):
        shape = tape.root_shape
        B = self.B
        if shape not in ((B,), (shape[0], B)) or len(shape) not in (1, 2):
            raise NotCompilable(f"{name} has shape {shape}")
        dtype = tape.root_dtype
        if dtype.kind != "f":
            raise NotCompilable(f"{name} is not a float")
        first = self.T if name in self.at_tau else 1
        self.layouts[name] = _Layout(name, shape, dtype, first, self.T, "computed")

    def _span(self, name) -> tuple[int, int]:
        """The steps a computed variable has: 1..T, or T alone for one of the last step (o[tau])."""
        return (self.T, self.T) if name in self.at_tau else (1, self.T)

    def _stage_chunks(self, stage):
        return [(self.T, self.T)] if stage.members[0] in self.at_tau else self._chunks(stage)

    def _resolve(self, source):
        kind = source[0]
        if kind == PARAM:
            return (PARAM, source[1])
        if kind == CONTEXT:
            return (CONTEXT, source[1])
        _, name, offset = source
        if name not in self.layouts:
            var = self.rec.variables.get(name)
            if var is None or var.kind not in ("input", "target"):
                raise NotCompilable(f"{name} has no buffer")
            shape, dtype = self.placeholder(name)
            self.layouts[name] = _Layout(name, shape, dtype, 1, self.T, "data")
        return (VAR, name, offset)

    def _extend_layouts(self):
        """Widen each buffer to every step any tape reads (the initial values around 1..T)."""
        T = self.T
        for stage in self.stages:
            first = T if stage.members[0] in self.at_tau else 1
            for specs in stage.inputs.values():
                for spec in specs:
                    if spec[0] != VAR:
                        continue
                    lay = self.layouts[spec[1]]
                    lay.lo, lay.hi = min(lay.lo, first + spec[2]), max(lay.hi, T + spec[2])
        for lay in self.layouts.values():
            var = self.rec.variables.get(lay.name)
            if lay.kind == "data":
                n = self.data_lengths.get(lay.name, 0)
                for s in (lay.lo, lay.hi):
                    if not 1 <= s <= n and (var.init is None or 1 <= s <= T):
                        raise NotCompilable(f"{lay.name}[{s}] is outside the data")  # the engine says so
            elif (lay.lo < 1 or lay.hi > T) and var is None:
                raise NotCompilable(f"{lay.name} is read outside 1..T")

    def _mark_tail(self):
        """The stages after the last recurrence that read each other only at the same step run fused."""
        tail = []
        for stage in reversed(self.stages):
            if stage.kind != "all" or stage.members[0] in self.at_tau:
                break
            tail.append(stage)
        names = {s.members[0] for s in tail}
        for stage in tail:
            for spec in stage.inputs[stage.members[0]]:
                if spec[0] == VAR and spec[1] in names and spec[2] != 0:
                    return
        for stage in tail:
            stage.fused = True

    def _open_windows(self):
        """A lean program keeps one chunk of the fused tail's variables (the outputs and losses) and
        of the data only the tail reads: no VJP of an earlier stage reads them, so they are computed,
        differentiated and dropped chunk by chunk, and recomputed when a Run's values are read."""
        tail = {s.members[0] for s in self.tail}
        readers: dict[str, list] = {}
        for stage in self.stages:
            for m in stage.members:
                for spec in stage.inputs[m]:
                    if spec[0] == VAR:
                        readers.setdefault(spec[1], []).append(m)
        stepped = {m for s in self.stages if s.kind == "steps" for m in s.members}
        for name, lay in self.layouts.items():
            if name in tail or (lay.kind == "data" and readers.get(name) and set(readers[name]) <= tail):
                lay.window = True
            elif (lay.kind == "data" and readers.get(name) and set(readers[name]) <= stepped
                  and 1 <= lay.lo and lay.hi <= self.data_lengths[name]):
                lay.direct = True  # read one step at a time by the recurrence: (rows, B) = series[t - 1]

    # ------------------------------------------------------------------ backward bookkeeping
    def _wants(self, spec) -> bool:
        if spec[0] == PARAM:
            return True
        if spec[0] == VAR:
            return self.layouts[spec[1]].kind == "computed"
        return spec[0] == CONTEXT and spec[1] in self.context_grads

    def zero_grads(self) -> dict:
        """Zeros for the gradients a backward pass adds to: the parameters' and the contexts'."""
        shapes = {**self.param_shapes, **{n: self.context_shapes[n] for n in self.context_grads}}
        return {n: np.zeros(s, dtype=self.dtype) for n, s in shapes.items()}

    def _backward_table(self, stage, name):
        """For each op of ``name``'s tape, in reverse: what the backward pass does with it."""
        tape, specs = stage.tapes[name], stage.inputs[name]
        table = []
        for i in range(len(tape.ops) - 1, -1, -1):
            op, operands, attrs = tape.ops[i]
            wants = tuple(True if k == OP else k == IN and self._wants(specs[j]) for k, j in operands)
            defer = None
            if (stage.kind == "steps" and not self.lean and op is _MATMUL and wants[0] and operands[0][0] == IN
                    and specs[operands[0][1]][0] == PARAM and tape.op_ndims[i] == [2, 2]):
                defer = specs[operands[0][1]][1]  # ∇W of W @ v: one product over all steps
                wants = (False,) + wants[1:]
            table.append((i, op, operands, attrs, wants, defer, any(wants)))
        return table

    def _plan_assignments(self):
        """Which gradients may be written into a variable's gradient buffer instead of added to it.

        The backward pass runs the stages in reverse.  The first stage to send a gradient to a
        variable, when it sends exactly one, to the same step (``v[t]``), writes it: that covers
        every step 1..T once, so the buffer needs no zeros first (only its columns outside 1..T do).
        The losses' gradients are set to 1 before anything else, so every other gradient adds."""
        self.assigned = set()
        touched = set(self.losses)
        for stage in reversed(self.stages):
            sends: dict[str, list] = {}
            for m in stage.tapes:
                tape, specs = stage.tapes[m], stage.inputs[m]
                uses = [tape.root[1]] if tape.root[0] == IN else []
                for _, _, operands, _, wants, _, _ in stage.tables[m]:
                    uses += [j for (k, j), w in zip(operands, wants) if k == IN and w]
                for j in uses:
                    spec = specs[j]
                    if spec[0] == VAR and self.layouts[spec[1]].kind == "computed":
                        sends.setdefault(spec[1], []).append((m, j, spec[2]))
                stage.assign.setdefault(m, set())
            for var, got in sends.items():
                if var not in touched and len(got) == 1 and got[0][2] == 0 and stage.members[0] not in self.at_tau:
                    m, j, _ = got[0]
                    stage.assign[m].add(j)
                    self.assigned.add(var)
            touched.update(sends)

    def _step_code(self, stage, name):
        tape, specs = stage.tapes[name], stage.inputs[name]
        views = {}
        for i, op, operands, attrs, wants, defer, anything in stage.tables[name]:
            if defer is None:
                continue
            k, j = operands[1]
            if k == IN and specs[j][0] == VAR and len(self.layouts[specs[j][1]].shape) == 2:
                views[i] = (specs[j][1], specs[j][2])  # the right factor is already stored, step by step
        return StepCode(stage, name, self.layouts, self.B, views, self._stored_gradients(stage, name), self.listed)

    def _stored_gradients(self, stage, name) -> dict[int, str]:
        """For each ``W @ v`` whose ∇W is deferred, the variable whose gradient buffer already holds its
        gradient step by step, if any: in ``W @ h[t-1] + h:in[t]`` the sum passes one gradient to both
        terms, and it is written into h:in's buffer (see _plan_assignments), so it need not be gathered."""
        tape, specs = stage.tapes[name], stage.inputs[name]
        readers: dict[int, list] = {}
        for c, (op, operands, _) in enumerate(tape.ops):
            for k, j in operands:
                if k == OP:
                    readers.setdefault(j, []).append(c)
        out = {}
        for i, _, _, _, _, defer, _ in stage.tables[name]:
            if defer is None or len(readers.get(i, ())) != 1:
                continue
            c = readers[i][0]
            op, operands, _ = tape.ops[c]
            if op.name != "add" or len(operands) != 2 or (OP, i) not in operands:
                continue  # add's VJP hands its gradient to both operands unchanged
            k, j = operands[1] if operands[0] == (OP, i) else operands[0]
            if (k == IN and j in stage.assign[name] and specs[j][0] == VAR and specs[j][2] == 0
                    and self.layouts[specs[j][1]].shape == tape.out_shapes[i] == tape.root_shape):
                out[i] = specs[j][1]
        return out

    # ------------------------------------------------------------------ workspaces
    def workspace(self, backward: bool) -> _Workspace:
        """A free workspace from the pool, or a new one.  A workspace somebody still holds
        (a live Run, or a view of one of its arrays) leaves the pool: its arrays are theirs."""
        with self._lock:  # two threads running the same recurrence get two workspaces
            pool, found = [], None
            for ws in self._pool:
                if ws.free():
                    pool.append(ws)
                    if found is None and (ws.backward or not backward):
                        found = ws
            if found is None:
                found = _Workspace(self, backward)
                pool.append(found)
            self._pool = pool[-2:] if found in pool[-2:] else [found]
            found.busy = True  # until the caller lends it to a Run or releases it
            return found

    # ------------------------------------------------------------------ running
    def run(self, params: dict, data: dict, backward: bool, *, carry=None, seed=None, loss_from: int = 1,
            only=None, shift: int = 0, draws=None, skip_tau: bool = False):
        """Forward (and backward) pass: ``(workspace, total loss, parameter gradients or None)``;
        the caller lends the workspace to a Run or releases it (``ws.lend``, ``ws.release``).

        For a segment of a longer sequence (segments.py): ``carry`` gives the values before step 1
        (``{(variable, step <= 0): array}``) instead of the initial values, and then the gradient
        that reaches them is left in the workspace (see :meth:`boundary_grads`) instead of going to
        a learned initial value; ``seed`` adds gradients from later segments to some values
        (``{(variable, step): array}``); only the losses from step ``loss_from`` on are
        differentiated; a forward pass may compute ``only`` some variables (and what they read);
        the program's step s reads step ``s + shift`` of the data (a segment of a longer sequence,
        which may read data beside it, ``x[t+1]`` or ``x[t-1]``).  ``draws`` is ``(generator, p)``
        for the fed values of free and scheduled modes (``sample``, scheduled sampling's coins)."""
        ws = self.workspace(backward)
        ws.load(params, data, shift)
        ws.rng, ws.p = draws or (np.random.default_rng(0), 0.5)
        for (name, s), value in (carry or {}).items():
            ws.steps(name, s, s)[...] = value
        #: a segment that does not end the sequence: its last step is not tau (the equations at tau do not run)
        ws.skip = self.at_tau if skip_tau else set()
        records = {} if backward else None
        grads = self.zero_grads() if backward else None
        if self.lean:
            return self._run_lean(ws, params, records, grads, carry)
        for stage in self.stages:
            if only is not None and not only.intersection(stage.members) or stage.members[0] in ws.skip:
                continue
            if stage.kind == "steps":
                self._forward_steps(stage, ws, params, records)
            elif stage.fused and backward:
                continue  # with the backward pass
            else:
                self._forward_all(stage, ws, params, records)
        if backward:
            ws.clear_grads(loss_from)
            for name in self.losses:
                first = max(loss_from, self._span(name)[0])
                if name in ws.grads and first <= self.T and name not in ws.skip:
                    ws.grad_steps(name, first, self.T)[...] = 1.0  # ∂(sum of the losses)/∂L[t]
            tail = [s for s in self.stages if s.fused]
            if tail:
                self._fused_tail(tail, ws, params, grads)
            for stage in reversed(self.stages):
                if stage.fused or stage.members[0] in ws.skip:
                    continue
                for (name, s), g in (seed or {}).items():
                    if name in stage.members:  # after every gradient written (not added) to it
                        ws.grad_steps(name, s, s)[...] += g
                if stage.kind == "steps":
                    self._backward_steps(stage, ws, params, records, grads)
                else:
                    self._backward_all(stage, ws, records, grads)
            self._learned_grads(ws, grads, carry)
        total = sum(float(np.sum(ws.steps(n, *self._span(n)))) for n in self.losses
                    if n in self.layouts and n not in ws.skip)
        return ws, total, grads

    def _learned_grads(self, ws, grads, carry) -> None:
        """Add to each learned initial value the gradient that reached the steps before 1, but for the
        steps the run was started from carried values of (there the learned one was not used)."""
        carried: dict[str, set] = {}
        for name, s in carry or ():
            carried.setdefault(name, set()).add(s)
        for var, pname in self.learned.items():
            lay = self.layouts.get(var)
            if lay is None or pname not in grads or (var in carried and set(range(lay.lo, 1)) <= carried[var]):
                continue  # every value before step 1 was carried in: the learned one was not used
            grads[pname] += ws.init_grad(lay, carried.get(var, ()))

    def _run_lean(self, ws, params, records, grads, carry=None):
        """:meth:`run` of a lean program (a whole sequence: no seed or loss_from; ``carry`` as in :meth:`run`)."""
        for stage in self.stages:
            if stage.kind == "steps":
                self._forward_steps(stage, ws, params, records)
            elif not stage.fused:
                self._forward_all(stage, ws, params, records)
        if grads is not None:
            ws.clear_grads()
            for name in self.losses:  # the losses not in a window (those are seeded chunk by chunk)
                if name in ws.grads and not self.layouts[name].window:
                    ws.grad_steps(name, *self._span(name))[...] = 1.0
        ws.losses = np.zeros(self.T)
        for span in self.tail_chunks:
            self._tail_chunk(ws, params, span, grads)
        if grads is not None:
            for stage in reversed(self.stages):
                if stage.fused:
                    continue
                if stage.kind == "steps":
                    self._backward_steps(stage, ws, params, records, grads)
                else:
                    self._backward_all(stage, ws, records, grads)
            self._learned_grads(ws, grads, carry)
        total = sum(float(np.sum(ws.steps(n, *self._span(n)))) for n in self.losses
                    if n in self.layouts and not self.layouts[n].window)
        return ws, total + float(np.sum(ws.window_losses)), grads

    def _tail_chunk(self, ws, params, span, grads=None, lazy=False):
        """Steps ``a..b`` of the fused tail in its windows: forward, and backward when ``grads`` is given.

        ``lazy``: recomputing for a Run's values after the run; then nothing outside the tail
        receives a gradient (``grads`` is a scratch) and the step losses stay as they are."""
        a, b = span
        ws.window(a, b)
        kept = []
        for stage in self.tail:
            name = stage.members[0]
            tape, specs = stage.tapes[name], stage.inputs[name]
            inputs = self._inputs(specs, ws, params, a, b)
            outs, saveds = _replay(tape, inputs, ws.steps(name, a, b), stage.reuse[name], stage.chain[name])
            kept.append((stage, name, (inputs, outs, saveds)))
        if not lazy:
            for n in self.losses:
                if n in self.layouts and self.layouts[n].window:
                    per_step = ws.steps(n, a, b).reshape(b - a + 1, -1).sum(axis=1)
                    ws.losses[a - 1:b] += per_step
                    ws.window_losses.append(float(np.sum(ws.steps(n, a, b))))
        ws.window_state = (a, grads is not None)
        if grads is None:
            return
        for n in ws.grads:
            lay = self.layouts[n]
            if lay.window:
                g = ws.grad_steps(n, a, b)
                if n in self.losses:
                    g[...] = 1.0  # ∂(sum of the losses)/∂L[t]
                elif n not in self.assigned:
                    g.fill(0)
        ws.frozen = lazy
        try:
            for stage, name, replayed in reversed(kept):
                self._tape_backward(stage, name, ws.grad_steps(name, a, b), replayed, ws, grads, a, b)
        finally:
            ws.frozen = False

    def window_columns(self, ws, params, name, t, grad: bool):
        """Step ``t`` of a windowed variable of a lean program (its chunk recomputed when needed; a copy)."""
        i = bisect.bisect_right([a for a, _ in self.tail_chunks], t) - 1
        span = self.tail_chunks[i]
        if ws.window_state != (span[0], grad):
            scratch = self.zero_grads() if grad else None
            self._tail_chunk(ws, params, span, scratch, lazy=True)
        return (ws.grad_steps if grad else ws.steps)(name, t, t).copy()

    def step_losses(self, ws) -> np.ndarray:
        """The loss of each step 1..T (summed over the batch and the loss variables)."""
        if self.lean:
            out = ws.losses.copy()
            for n in self.losses:
                if n in self.layouts and not self.layouts[n].window:
                    self._add_step_losses(out, ws, n)
            return out
        out = np.zeros(self.T)
        for n in self.losses:
            if n in self.layouts and n not in ws.skip:
                self._add_step_losses(out, ws, n)
        return out

    def _add_step_losses(self, out, ws, n):
        a, b = self._span(n)
        out[a - 1:b] += ws.steps(n, a, b).reshape(b - a + 1, -1).sum(axis=1)

    def boundary_grads(self, ws, delays: dict) -> dict:
        """The gradients that reached the values before step 1 (``{(variable, step): array}``)."""
        return {(u, s): ws.grad_steps(u, s, s).copy() for u, d in delays.items() if u in ws.grads
                for s in range(1 - d, 1)}

    def _chunks(self, *stages):
        widest = 1
        for stage in stages:
            lay = self.layouts[stage.members[0]]
            rows = [self.layouts[s[1]].shape[0] for s in stage.inputs[stage.members[0]]
                    if s[0] == VAR and len(self.layouts[s[1]].shape) == 2]
            widest = max([widest, lay.shape[0] if len(lay.shape) == 2 else 1] + rows)
        k = max(1, min(-(-CHUNK_COLUMNS // self.B), CHUNK_BYTES // (widest * self.B * self.dtype.itemsize)))
        return [(a, min(a + k - 1, self.T)) for a in range(1, self.T + 1, k)]

    def _inputs(self, specs, ws, params, a, b):
        out = []
        for spec in specs:
            kind = spec[0]
            if kind == VAR:
                out.append(ws.steps(spec[1], a + spec[2], b + spec[2]))
            elif kind == PARAM:
                out.append(params[spec[1]])
            else:
                out.append(ws.context(spec[1], b - a + 1))
        return out

    def _forward_all(self, stage, ws, params, records):
        name = stage.members[0]
        tape, specs, keep = stage.tapes[name], stage.inputs[name], stage.keep[name]
        saved = [] if records is not None and not stage.fused else None
        for a, b in self._stage_chunks(stage):
            inputs = self._inputs(specs, ws, params, a, b)
            outs, saveds = _replay(tape, inputs, ws.steps(name, a, b), stage.reuse[name], stage.chain[name])
            if saved is not None:
                saved.append((a, b, inputs, _prune(outs, keep), saveds))
        if saved is not None:
            records[id(stage)] = saved

    def _shadow_names(self, stage):
        """The buffers a recurrent stage reads or writes, when it may work on step-major copies."""
        if stage.hosts:
            return None  # a fed value's equation reads the buffers themselves
        names = set(stage.members)
        for m in stage.tapes:
            names.update(spec[1] for spec in stage.inputs[m] if spec[0] == VAR)
        return names

    def _forward_steps(self, stage, ws, params, records):
        record = records is not None
        names = self._shadow_names(stage) if ws.shadow is not None else None
        columns = ws.columns
        if names is not None:
            ws.shadowed(names, 0, back=False)
            columns = ws.shadow_columns
        step = {m: stage.code[m].make_forward(ws.values, params, ws.context, record, columns)
                for m in stage.tapes}
        step.update({m: host.step(ws, params) for m, host in stage.hosts.items()})
        times = getattr(stage.steps, "times", None)
        if LOOPS and len(stage.members) == 1 and times is not None and stage.tapes:
            got = []
            step[stage.members[0]].loop(times, got)  # the whole loop in the generated code
        elif len(stage.members) == 1:
            (f,) = step.values()
            got = [f(t) for _, t in stage.steps]
        else:
            got = [step[name](t) for name, t in stage.steps]
        if names is not None:
            ws.shadowed(stage.members, 0, back=True)
        if record:
            records[id(stage)] = got

    def _send(self, spec, g, ws, grads, a, b, write=False):
        kind = spec[0]
        if ws.frozen and kind == VAR and not self.layouts[spec[1]].window:
            return  # a lazy recomputation leaves the run's gradients alone
        if kind == PARAM:
            acc = grads[spec[1]]
            acc += g if g.shape == acc.shape else unbroadcast(g, acc.shape)
        elif kind == CONTEXT:  # read as its columns repeated for steps a..b (Workspace.context)
            acc = grads[spec[1]]
            acc += g.reshape(acc.shape[0], -1, acc.shape[1]).sum(axis=1) if g.shape != acc.shape else g
        elif kind == VAR:
            dest = ws.grad_steps(spec[1], a + spec[2], b + spec[2])
            if write:
                dest[...] = g
            else:
                dest += g

    def _tape_backward(self, stage, name, g_root, replayed, ws, grads, a, b):
        """The backward pass of one tape over steps ``a..b`` (a stage computed for many steps at once);
        ``replayed`` is what its forward pass kept: ``(inputs, outputs, saved)``."""
        inputs, outs, saveds = replayed
        tape, specs, write = stage.tapes[name], stage.inputs[name], stage.assign[name]
        consts = tape.consts
        local: list = [None] * len(tape.ops)
        kind, i = tape.root
        if kind == OP:
            local[i] = g_root
        elif kind == IN:
            if self._wants(specs[i]):
                self._send(specs[i], g_root, ws, grads, a, b, i in write)
        for i, op, operands, attrs, wants, _, anything in stage.tables[name]:
            gi = local[i]
            if gi is None:
                continue
            args = tuple([outs[j] if k == OP else consts[j] if k == CONST else inputs[j] for k, j in operands])
            if op is _MATMUL and anything and args[0].ndim == 2 and args[1].ndim == 2:
                # a gradient written (not added) into a variable's buffer: the product goes straight there
                for pos in (0, 1):
                    k, j = operands[pos]
                    if wants[pos] and k == IN and j in write and specs[j][0] == VAR:
                        spec = specs[j]
                        if ws.frozen and not self.layouts[spec[1]].window:
                            wants = wants[:pos] + (False,) + wants[pos + 1:]
                            anything = any(wants)
                            continue
                        dest = ws.grad_steps(spec[1], a + spec[2], b + spec[2])
                        if pos == 1:
                            np.matmul(args[0].swapaxes(-1, -2), gi, out=dest)  # the matmul VJP's gb
                        else:
                            np.matmul(gi, args[1].swapaxes(-1, -2), out=dest)  # its ga
                        wants = wants[:pos] + (False,) + wants[pos + 1:]
                        anything = any(wants)
            if not anything:
                continue
            pgrads = op.vjp(gi, outs[i], args, wants, saveds[i], attrs)
            for (k, j), pg, w, arg in zip(operands, pgrads, wants, args):
                if not w or pg is None:
                    continue
                if type(pg) is SliceGrad:
                    pg = np.asarray(pg)
                if pg.shape != arg.shape:
                    pg = unbroadcast(pg, arg.shape)
                if k == OP:
                    local[j] = pg if local[j] is None else local[j] + pg
                else:
                    self._send(specs[j], pg, ws, grads, a, b, j in write)

    def _backward_all(self, stage, ws, records, grads):
        name = stage.members[0]
        for a, b, inputs, outs, saveds in reversed(records.pop(id(stage))):
            g = ws.grad_steps(name, a, b)
            self._tape_backward(stage, name, g, (inputs, outs, saveds), ws, grads, a, b)

    def _backward_steps(self, stage, ws, params, records, grads):
        names = self._shadow_names(stage) if ws.shadow is not None else None
        columns = ws.columns
        if names is not None:
            ws.shadowed(names, 0, back=False)
            ws.shadowed(names, 1, back=False)
            columns = ws.shadow_columns
        step, products = {m: _no_gradient for m in stage.hosts}, []
        for m in stage.tapes:
            code = stage.code[m]
            gathered = {}
            for i, pname in code.deferred:
                view = code.gather_from_view.get(i)
                g, x = ws.gather(pname, i, m, view is not None, i in code.stored_gradient)
                gathered[i] = (g, x)
                if i in code.stored_gradient:
                    g = ws.grad_steps(code.stored_gradient[i], 1, self.T)
                products.append((pname, g, x if view is None else ws.steps(view[0], 1 + view[1], self.T + view[1])))
            step[m] = code.make_backward(ws.values, params, ws.context, ws.grads, grads, gathered, columns)
        got = records.pop(id(stage))
        times = getattr(stage.steps, "times", None)
        if LOOPS and len(stage.members) == 1 and times is not None and stage.tapes:
            got.reverse()
            step[stage.members[0]].loop(reversed(times), got)  # the whole loop in the generated code
        else:
            for (name, t), record in zip(reversed(stage.steps), reversed(got)):
                step[name](t, record)
        if names is not None:
            ws.shadowed(names, 1, back=True)
        # every step wrote its columns of G (a tape's ops all lie on the way to its root)
        for pname, g, x in products:
            grads[pname] += g @ x.T  # ∇W of W @ v: one product over all steps

    def _fused_tail(self, tail, ws, params, grads):
        """Forward then backward of the stages after the last recurrence, chunk by chunk."""
        order = tail  # in evaluation order
        for a, b in self._chunks(*order):
            kept = []
            for stage in order:
                name = stage.members[0]
                tape, specs = stage.tapes[name], stage.inputs[name]
                inputs = self._inputs(specs, ws, params, a, b)
                outs, saveds = _replay(tape, inputs, ws.steps(name, a, b), stage.reuse[name], stage.chain[name])
                kept.append((stage, name, inputs, outs, saveds))
            for stage, name, inputs, outs, saveds in reversed(kept):
                g = ws.grad_steps(name, a, b)
                self._tape_backward(stage, name, g, (inputs, outs, saveds), ws, grads, a, b)

    # ------------------------------------------------------------------ reading it
    def kept_bytes(self) -> int:
        """The bytes of the workspaces this program keeps for its next runs."""
        return sum(a.nbytes for ws in self._pool for a in ws.arrays)

    def describe(self) -> str:
        """The stages in order, what each computes and how, and the buffers."""
        T, B = self.T, self.B
        lines = [f"program for {self.rec.name}: T={T}, batch {B}, {self.dtype.name}"]
        for i, stage in enumerate(self.stages, 1):
            for m in stage.members:
                if m in stage.hosts:
                    lines.append(f"  {i}. {m:<8} step by step, fed back on the engine's functions (no gradient)")
                    continue
                ops = ", ".join(op.name for op, _, _ in stage.tapes[m].ops)
                if m in self.at_tau:
                    how = f"at the last step only (T = {T})"
                elif stage.kind == "all":
                    n = len(self._chunks(*[s for s in self.stages if s.fused] if stage.fused else [stage]))
                    how = (f"all {T} steps at once, in {n} chunk{'s' * (n != 1)}"
                           + (", forward and backward together" if stage.fused else ""))
                else:
                    direction = "forwards" if stage.steps[0][1] <= stage.steps[-1][1] else "backwards"
                    how = f"step by step ({direction} in time)"
                    deferred = sorted({d for *_, d, _ in stage.tables[m] if d is not None})
                    if deferred:
                        how += f"; ∇{', ∇'.join(deferred)} as one product over the steps"
                lines.append(f"  {i}. {m:<8} {how}  [{ops}]")
        size = sum(a.nbytes for ws in self._pool for a in ws.arrays)
        lines.append(f"  buffers: {len(self.layouts)} variables, steps side by side"
                     + (f"; {len(self._pool)} workspace(s) kept, {size / 2**20:.1f} MiB" if self._pool else ""))
        return "\n".join(lines)

    # ------------------------------------------------------------------ errors
    def first_non_finite(self, ws, params) -> str | None:
        """The first value (in the order the stages ran) holding a NaN or an infinity, as ``"h[3]"``."""
        for stage in self.stages:
            found = []
            for m in stage.members:
                if m not in self.rec.variables:
                    continue  # a split-off term: the variable it feeds is named instead
                if self.layouts[m].window:
                    columns = [self.window_columns(ws, params, m, t, False) for t in range(1, self.T + 1)]
                    bad = ~np.isfinite(np.concatenate(columns, axis=-1))
                elif m in self.at_tau:
                    if not np.all(np.isfinite(ws.steps(m, self.T, self.T))):
                        found.append((self.T, stage.members.index(m), m))
                    continue
                else:
                    bad = ~np.isfinite(ws.steps(m, 1, self.T))
                per_step = bad.reshape(-1, self.T, self.B).any(axis=(0, 2)) if bad.ndim == 2 else \
                    bad.reshape(self.T, self.B).any(axis=1)
                if per_step.any():
                    found.append((int(np.argmax(per_step)) + 1, stage.members.index(m), m))
            if found:
                t, _, m = min(found)
                return key(m, t)
        return None


def run_compiled(program, plan) -> Run:
    """Run ``plan`` through its compiled ``program`` and wrap the workspace as a :class:`Run`
    (lent to it: the next run takes another workspace while this Run or one of its arrays lives)."""
    rec, T, mode, data, param_arrays, backward = plan.rec, plan.T, plan.mode, plan.data, plan.params, plan.backward
    has_loss = any(n in program.layouts for n in rec.losses)
    if backward and not has_loss:
        raise SpecError(NO_LOSS.format(rec.name))
    ws, loss, grads = program.run(param_arrays, data, backward, carry=plan.initial or None,
                                  draws=(np.random.default_rng(plan.seed), plan.p))
    context_grads = {n: grads.pop(n) for n in program.context_grads} if backward else {}
    if not has_loss:
        loss = float("nan")  # as on the engine: there is nothing to sum
    elif not np.isfinite(loss):
        bad = program.first_non_finite(ws, param_arrays) or "the loss"
        ws.release()
        raise DataError(f"the forward pass produced a non-finite value first at {bad}; the parameters or "
                        f"data are too large (try smaller weights, or gr.detect_anomaly() to find the op)")
    fixed_values = dict(param_arrays)
    value_steps: dict = {}
    grad_steps: dict = {}
    for n, series in data.items():
        if rec.variables[n].kind == "context":
            fixed_values[n] = series
        else:
            value_steps[n] = (range(1, len(series) + 1), lambda t, series=series: series[t - 1])
    learned = rec.learned_inits()
    fed: dict = {}
    for n, lay in program.layouts.items():
        var = rec.variables.get(n)
        if var is None:
            continue  # an internal split-off term (equations.fast_equations)
        first, last = program._span(n)
        inside = range(first, last + 1) if lay.kind in ("computed", "fed") else range(1, len(data[n]) + 1)
        for s in [*range(lay.lo, min(inside.start, lay.hi + 1)), *range(max(inside.stop, lay.lo), lay.hi + 1)]:
            if s not in inside:  # an initial value, as the engine names it
                if n in learned and (n, s) not in plan.initial:
                    fixed_values[key(n, s)] = param_arrays[learned[n]]
                elif lay.window:  # data outside its steps, read as zeros (init zero)
                    fixed_values[key(n, s)] = np.zeros(lay.shape, dtype=lay.dtype)
                else:
                    fixed_values[key(n, s)] = ws.steps(n, s, s)
        if lay.kind == "fed":  # what was fed back at each step: values, no gradient
            fed.update({key(n, t): ws.steps(n, t, t).copy() for t in inside})
            value_steps[n] = (inside, lambda t, n=n: fed[key(n, t)])
        if lay.kind != "computed":
            continue
        scalar = var.shape == ()
        values, grads_of = ws.steps, ws.grad_steps
        if lay.window:  # recomputed chunk by chunk when read (a lean program keeps no copy of every step)
            values = lambda name, t, _, ws=ws: program.window_columns(ws, param_arrays, name, t, False)  # noqa: E731
            grads_of = lambda name, t, _, ws=ws: program.window_columns(ws, param_arrays, name, t, True)  # noqa: E731
        value_steps[n] = (inside, _workspace_columns(values, n, scalar, np.sum))
        if backward:
            grad_steps[n] = (inside, _workspace_columns(grads_of, n, scalar, np.mean))
    leaves = {n: Tensor(a, name=n) for n, a in param_arrays.items()}
    for n, leaf in leaves.items():
        leaf.grad = grads[n] if backward else None
    first = min((program._span(n)[0] for n in rec.losses if n in program.layouts), default=1)
    step_losses = StepLosses(program.step_losses(ws), first) if rec.losses else {}
    run = Run(rec, T, mode, loss, NodeMap(fixed_values, value_steps), NodeMap(dict(grads) if backward else {},
              grad_steps), {}, step_losses, leaves, None, fed, program, context_grads=context_grads)
    ws.lend(run)
    return run


def _no_gradient(t, record):
    """The backward step of a fed value: none (it is a constant of the run)."""


def _workspace_columns(view, name, scalar, reduce):
    def fetch(t):
        cols = view(name, t, t)
        return np.asarray(reduce(cols)) if scalar else cols

    return fetch


def _replay(tape, inputs, dest=None, reuse=None, chain=()):
    """Run a tape's ops on ``inputs``; the last op writes straight into ``dest`` when it can (and
    the ops of ``chain`` before it, see :func:`dest_chain`), and an op in ``reuse`` (see
    :func:`reusable_operands`) over a temporary operand that fits."""
    outs, saveds = [], []
    consts = tape.consts
    ops = tape.ops
    last = len(ops) - 1 if dest is not None and tape.root == (OP, len(ops) - 1) else -1
    chained = set(chain) if last >= 0 else ()
    for i, (op, operands, attrs) in enumerate(ops):
        args = [outs[j] if k == OP else consts[j] if k == CONST else inputs[j] for k, j in operands]
        if i == last and op.name in INTO and not attrs and dest.dtype == tape.root_dtype:
            INTO[op.name](*args, out=dest)
            out, saved = dest, None
        elif i in chained and _result_fits(op, args, dest):
            INTO[op.name](*args, out=dest)
            out, saved = dest, None
        elif reuse and i in reuse and (over := _fits(args, [outs[j] for j in reuse[i]])) is not None:
            INTO[op.name](*args, out=over)
            out, saved = over, None
        else:
            out, saved = op.forward(*args, **attrs)
        outs.append(out if type(out) is np.ndarray else np.asarray(out))
        saveds.append(saved)
    if dest is not None and (last < 0 or outs[last] is not dest):
        dest[...] = _operand(tape.root, outs, inputs, consts)
        if tape.root[0] == OP:
            outs[tape.root[1]] = dest  # the stored copy stands for the op's output from now on
    return outs, saveds


def _result_fits(op, args, dest) -> bool:
    """Whether ``op`` of ``args`` (an op of :data:`INTO`) has exactly ``dest``'s shape and dtype."""
    if op.name == "matmul":
        a, b = args
        if a.ndim != 2 or b.ndim != 2:
            return False
        shape = (a.shape[0], b.shape[1])
    else:
        shape = np.broadcast_shapes(*[np.shape(x) for x in args])
    return shape == dest.shape and np.result_type(*args) == dest.dtype


def _fits(args, candidates):
    """The first candidate array the elementwise result of ``args`` may be written over, if any."""
    shape = np.broadcast_shapes(*[np.shape(a) for a in args])
    dtype = np.result_type(*args)
    for c in candidates:
        if c.shape == shape and c.dtype == dtype and c.flags.writeable and c.base is None:
            return c
    return None


#: ops whose result is always a new array (never a view of an operand), so it may be written over
FRESH = {"add", "sub", "mul", "div", "neg", "exp", "log", "tanh", "sigmoid", "relu", "matmul", "pow",
         "softmax", "log_softmax"}


def reusable_operands(tape, keep) -> dict[int, list[int]]:
    """For each op that may write its result over one of its operands: the candidates (outputs of
    earlier ops that only this op reads and no VJP needs).  Whether the shapes and dtypes fit is
    checked where the op runs."""
    readers = [0] * len(tape.ops)
    for _, operands, _ in tape.ops:
        for k, j in operands:
            if k == OP:
                readers[j] += 1
    out = {}
    for i, (op, operands, attrs) in enumerate(tape.ops):
        if op.name in INTO and not attrs and op.name != "matmul":
            got = [j for k, j in operands if k == OP and readers[j] == 1 and not keep[j]
                   and tape.ops[j][0].name in FRESH]
            if got:
                out[i] = got
    return out


def dest_chain(tape, reuse) -> list[int]:
    """Ops that may compute straight into the variable's own buffer, besides its last op: the
    operand the last op would write over, the operand that one would write over, and so on
    (``W @ h[t-1]``, then ``+ h:in[t]`` over it, then ``tanh`` over that: no temporary at all)."""
    n = len(tape.ops)
    if not n or tape.root != (OP, n - 1) or tape.ops[-1][0].name not in INTO or tape.ops[-1][2]:
        return []
    chain, current = [], n - 1
    while True:
        got = [j for j in reuse.get(current, ()) if tape.ops[j][0].name in INTO and not tape.ops[j][2]]
        if not got:
            return chain
        current = got[0]
        chain.append(current)


def _kept_outputs(tape) -> list[bool]:
    """Which op outputs some VJP reads (the op's own, or a consumer's reading its argument)."""
    keep = [op.reads_out for op, _, _ in tape.ops]
    for op, operands, _ in tape.ops:
        for pos, (k, j) in enumerate(operands):
            if k == OP and op.reads_arg(pos):
                keep[j] = True
    return keep


def _prune(outs, keep):
    """Replace the outputs no VJP reads with placeholders of the same shape (they only give shapes)."""
    for i, k in enumerate(keep):
        if not k:
            o = outs[i]
            outs[i] = placeholder_of(o.shape, o.dtype)
    return outs


# ------------------------------------------------------------------------------ buffers


class _Holders:
    """Weak references to what reads a workspace after its run: the Run and its two mappings."""

    def __init__(self, *holders):
        self.refs = [weakref.ref(h) for h in holders]

    def alive(self) -> bool:
        return any(r() is not None for r in self.refs)


class _Workspace:
    """The buffers of one run: every variable's steps side by side, and their gradients."""

    def __init__(self, program: Program, backward: bool):
        self.program, self.backward = program, backward
        B = program.B
        self.values: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.offsets: dict[str, int] = {}
        self.owner = None  # a weak reference to the Run holding this workspace
        self.busy = False  # taken by a run that has not yet handed it on
        self.arrays: list[np.ndarray] = []
        chunk = max((b - a + 1 for a, b in program.tail_chunks), default=0)
        for name, lay in program.layouts.items():
            if lay.direct:
                continue  # the caller's array (see load)
            steps = chunk + (lay.hi - program.T) + (1 - lay.lo) if lay.window else lay.hi - lay.lo + 1
            cols = steps * B
            shape = (lay.shape[0], cols) if len(lay.shape) == 2 else (cols,)
            self.values[name] = self._new(shape, lay.dtype)
            self.offsets[name] = lay.lo
            if backward and lay.kind == "computed":
                self.grads[name] = self._new(shape, lay.dtype)
        self.gathered: dict = {}
        self.tiled: dict = {}
        self.contexts: dict = {}
        self.series: dict = {}  # the data of windowed data variables, copied in chunk by chunk
        self.losses = None  # a lean program's loss per step
        self.window_losses: list = []  # and its loss chunk by chunk
        self.window_state = None  # which chunk the windows hold: (first step, with gradients)
        self.frozen = False  # while a lazy recomputation runs (see Program._tail_chunk)
        self.rng, self.p = None, 0.5  # a run's generator and scheduled-sampling probability (see _Host)
        self.skip: set = set()  # the equations at tau, in a segment that does not end the sequence
        self.columns = None
        if program.listed:  # every step's columns of every buffer, as views made once (before the baseline)
            self.columns = tuple({name: [buf[..., i * B:(i + 1) * B] for i in range(buf.shape[-1] // B)]
                                  for name, buf in bufs.items()} for bufs in (self.values, self.grads))
        #: with one sequence (B = 1) a step's column of a buffer is strided, and a ufunc over a
        #: (rows, 1) strided array costs about twice one over a contiguous one: a recurrent stage then
        #: works on step-major copies ((steps, rows, 1), each step contiguous), copied in and out
        #: around its loop (see shadowed)
        self.shadow = self.shadow_columns = None
        if program.listed and B == 1 and SHADOW:
            self._make_shadows()
        self._baseline = self._refs()  # (no local name may hold one of the arrays here)

    def _make_shadows(self):
        self.shadow, self.shadow_columns = ({}, {}), ({}, {})
        for which, bufs in enumerate((self.values, self.grads)):
            for name, buf in bufs.items():
                if buf.ndim == 2:
                    copy = self.shadow[which][name] = np.empty((buf.shape[1], buf.shape[0], 1), dtype=buf.dtype)
                    self.shadow_columns[which][name] = list(copy)
                else:
                    self.shadow_columns[which][name] = self.columns[which][name]

    def shadowed(self, names, which: int, back: bool) -> None:
        """Copy the buffers ``names`` (values: ``which`` 0, gradients: 1) into their step-major copies,
        or (``back``) the copies back into the buffers."""
        bufs = self.values if which == 0 else self.grads
        for name in names:
            copy = self.shadow[which].get(name)
            if copy is not None:
                if back:
                    bufs[name][...] = copy[:, :, 0].T
                else:
                    copy[:, :, 0] = bufs[name].T

    def _new(self, shape, dtype):
        arr = np.zeros(shape, dtype=dtype)
        self.arrays.append(arr)
        return arr

    def _refs(self):
        return [sys.getrefcount(a) for a in self.arrays]

    def free(self) -> bool:
        """Whether nobody holds this workspace or a view of one of its arrays."""
        if self.busy or (self.owner is not None and self.owner.alive()):
            return False
        return self._refs() == self._baseline

    def lend(self, run) -> None:
        """``run`` holds the workspace now: it is free again once ``run``, its ``values`` and
        ``grads`` (which read the buffers when asked) and its arrays are gone."""
        self.owner = _Holders(run, run.values, run.grads)
        self.busy = False

    def release(self) -> None:
        """The caller is done with the workspace (and keeps none of its arrays)."""
        self.busy = False

    # -- filling
    def load(self, params, data, shift=0):
        program, B = self.program, self.program.B
        self.contexts = {n: data[n] for n in program.context_shapes}
        self.tiled = {}
        self.window_losses = []
        self.window_state = None
        for name, lay in program.layouts.items():
            buf = self.values.get(name)
            if lay.window:
                if lay.kind == "data":
                    self.series[name] = data[name]
                continue
            if lay.direct:
                self.values[name] = data[name]
                continue
            if lay.kind == "data":
                series = data[name]
                first, last = max(lay.lo, 1 - shift), min(lay.hi, len(series) - shift)
                if first > lay.lo or last < lay.hi:
                    buf.fill(0)
                if lay.dtype.kind != "f":
                    buf[(first - lay.lo) * B:(last - lay.lo + 1) * B] = \
                        series[first + shift - 1:last + shift].reshape(-1)
                else:
                    rows = lay.shape[0]
                    buf.reshape(rows, -1, B)[:, first - lay.lo:last - lay.lo + 1, :] = \
                        np.moveaxis(series[first + shift - 1:last + shift], 0, 1)
            elif lay.lo < 1 or lay.hi > program.T:
                learned = program.learned.get(name)
                for s in list(range(lay.lo, 1)) + list(range(program.T + 1, lay.hi + 1)):
                    part = buf[..., (s - lay.lo) * B:(s - lay.lo + 1) * B]
                    if learned is not None:
                        part[...] = params[learned]  # one column, the same for every sequence
                    else:
                        part.fill(0)

    def window(self, a, b):
        """Move the windows to steps ``a..b`` (and the steps around them that are read); copy the data in."""
        program, B = self.program, self.program.B
        for name, lay in program.layouts.items():
            if not lay.window:
                continue
            lo = a + lay.lo - 1  # the first step the window holds
            self.offsets[name] = lo
            if lay.kind != "data":
                continue
            buf, series = self.values[name], self.series[name]
            hi = lo + buf.shape[-1] // B - 1
            first, last = max(lo, 1), min(hi, len(series))
            if first > lo or last < hi:
                buf.fill(0)
            if lay.dtype.kind != "f":
                buf[(first - lo) * B:(last - lo + 1) * B] = series[first - 1:last].reshape(-1)
            else:
                buf.reshape(lay.shape[0], -1, B)[:, first - lo:last - lo + 1, :] = \
                    np.moveaxis(series[first - 1:last], 0, 1)

    def clear_grads(self, loss_from: int = 1):
        """Zeros where the backward pass adds: everywhere but the steps that are written first."""
        program, B = self.program, self.program.B
        for name, g in self.grads.items():
            lay = program.layouts[name]
            if lay.window:
                continue  # chunk by chunk (Program._tail_chunk)
            first = None
            if name in program.assigned:
                first = 1
            elif name in program.losses:
                first = max(loss_from, program._span(name)[0])
            if first is None:
                g.fill(0)
                continue
            g[..., :max(first - lay.lo, 0) * B] = 0
            g[..., (program.T + 1 - lay.lo) * B:] = 0

    # -- views
    def steps(self, name, a, b):
        """Steps ``a..b`` of ``name``, side by side (a view)."""
        B, lo = self.program.B, self.offsets[name]
        return self.values[name][..., (a - lo) * B:(b - lo + 1) * B]

    def grad_steps(self, name, a, b):
        B, lo = self.program.B, self.offsets[name]
        return self.grads[name][..., (a - lo) * B:(b - lo + 1) * B]

    def context(self, name, steps):
        got = self.tiled.get((name, steps))
        if got is None:
            got = self.contexts[name] if steps == 1 else np.tile(self.contexts[name], (1, steps))
            self.tiled[(name, steps)] = got
        return got

    def gather(self, pname, i, name, from_view: bool, stored: bool):
        """Buffers collecting, step by step, the two factors of ∇W for one ``W @ v`` of a recurrence
        (none for a factor that is already stored step by step)."""
        cols = self.program.T * self.program.B
        k = (pname, i, name)
        got = self.gathered.get(k)
        if got is None:
            rows, inner = self.program.param_shapes[pname]
            dtype = self.program.dtype
            got = self.gathered[k] = (None if stored else np.empty((rows, cols), dtype=dtype),
                                      None if from_view else np.empty((inner, cols), dtype=dtype))
        return got

    def init_grad(self, lay, carried=()):
        """The gradient of a learned initial value: what reached the steps before 1 (but the ``carried``
        ones, which held other values), summed over the batch."""
        B = self.program.B
        g = self.grads[lay.name]
        before, after = g[:, :(1 - lay.lo) * B], g[:, (self.program.T + 1 - lay.lo) * B:]
        if carried:
            before = before.copy()
            for s in carried:
                before[:, (s - lay.lo) * B:(s - lay.lo + 1) * B] = 0
        return before.sum(axis=1, keepdims=True) + after.sum(axis=1, keepdims=True)
