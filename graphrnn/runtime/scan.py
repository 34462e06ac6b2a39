"""A recurrent block of the fast path as one engine op: the steps replayed with numpy.

A block of mutually recurrent variables (``h[t] = tanh(W @ h[t-1] + h:in[t])``)
must be evaluated one step after the other.  Evaluated on the engine, every step
makes a handful of graph nodes, and each costs microseconds of bookkeeping on
top of its numpy call.  Here each equation is traced once into a *tape* — the
engine ops it applies, in order, with where each operand comes from — and the
tape is replayed with numpy for every step; the backward pass walks the tapes in
reverse through the same VJP rules of the op registry.  The whole block is one
node of the engine graph (the registry's ``scan`` op, as Theano's scan), whose
output holds every step of every variable of the block side by side.

Gradients of a parameter used as the left factor of a product (``W`` in
``W @ h[t-1]``) are formed once for all steps, as one matrix product over the
stacked steps instead of one outer product per step.

A block qualifies when its equations use only engine ops (no class labels,
``one_hot``, ``argmax``, random draws or losses); the others are evaluated step by
step as usual.
"""

from __future__ import annotations

import numpy as np

from .. import engine as E
from ..engine.ops import REGISTRY, SliceGrad, unbroadcast
from ..engine.tensor import Tensor
from ..recurrence.spec import LOSSES, Call, walk
from .stacked import Stacked
from .tape import CONST, OP, Tape, operand as _operand

_SCAN = REGISTRY["scan"]
_MATMUL = REGISTRY["matmul"]
_NOT_TRACEABLE = set(LOSSES) | {"one_hot", "argmax", "sample", "feed"}

# where an input of a tape comes from, once resolved for a block
PARENT, OWN = 1, 2


#: a step's arrays up to this size are cheap enough that the engine's bookkeeping dominates;
#: above it the numpy calls do, and the engine's own nodes cost little extra
SCAN_BYTES = 1 << 13


def scannable(rec, eqs: dict, members, batch: int) -> bool:
    """Whether the block ``members`` can run as one scan op, and gains by it."""
    widest = max((rec.variables[m].rows or 1) for m in members if m in rec.variables)
    if widest * batch * 8 > SCAN_BYTES:
        return False
    for name in members:
        eq = eqs[name]
        if eq.anchor != "t":
            return False
        var = rec.variables.get(name)
        if var is not None and (var.is_label or var.shape == ()):
            return False
        if any(isinstance(n, Call) and n.fn in _NOT_TRACEABLE for n in walk(eq.expr)):
            return False
    return True


class _Tracer:
    """A stand-in context: answers references with placeholder tensors and remembers them."""

    stacked_mode = False
    lean = False

    def __init__(self, ctx, members, shapes):
        self.ctx, self.members, self.shapes = ctx, members, shapes
        self.dtype, self.batch, self.T = ctx.dtype, ctx.batch, ctx.T
        self.sources: dict[int, tuple] = {}

    def _leaf(self, source, shape, dtype=None):
        t = Tensor(np.zeros(shape, dtype=dtype or self.dtype))
        self.sources[id(t)] = source
        return t

    def param(self, name, t):
        p = self.ctx.params[name]
        return self._leaf(("param", name), p.shape, p.dtype)

    def context(self, name):
        return self._leaf(("context", name), self.ctx.data[name].shape)

    def ref(self, name, s, needed_by):
        return self._leaf(("ref", name, s - 1), self.shapes[name])  # traced at t = 1: offset s - 1


class ScanPlan:
    """Run steps ``a..b`` of a block, forward and backward, on numpy arrays.

    ``parents`` (the engine tensors the scan op reads) are the block's parameters,
    the stacked values of everything it reads from outside the block, and the
    values of its own variables just outside ``a..b`` (carried in)."""

    def __init__(self, ctx, members, eqs, compiled, steps, a, b):
        self.members, self.steps, self.a, self.b, self.B = list(members), steps, a, b, ctx.batch
        rows = {m: ctx.rec.variables[m].rows if m in ctx.rec.variables else None for m in members}
        shapes = {}
        self.parents: list[Tensor] = []
        slot_of: dict[tuple, int] = {}

        def parent(key, make):
            if key not in slot_of:
                slot_of[key] = len(self.parents)
                self.parents.append(make())
            return slot_of[key]

        stacked = Stacked(ctx, "scan", a, b)
        # trace every equation at t = 1 with placeholders of the right shapes
        for m in members:
            shapes[m] = (rows[m], ctx.batch)
        self.tapes = {}
        for m in members:
            tracer = _Tracer(ctx, members, _ShapeLookup(ctx, shapes, stacked))
            with E.enable_grad(), np.errstate(all="ignore"):
                root = compiled[m](tracer, 1)
            self.tapes[m] = Tape(root, tracer.sources)
        # resolve every tape input to a parent slot (or to the block's own values)
        self.resolved = {}
        for m, tape in self.tapes.items():
            out = []
            for source in tape.inputs:
                if source[0] == "param":
                    out.append((PARENT, parent(source, lambda n=source[1]: ctx.params[n]), None))
                elif source[0] == "context":
                    out.append((PARENT, parent(source, lambda n=source[1]: stacked.context(n)), "columns"))
                else:
                    _, name, offset = source
                    if name in members:
                        out.append((OWN, name, offset))
                    elif self._covered(ctx, name, a + offset, b + offset):
                        # computed earlier for chunks of steps: read each step from its chunk
                        slots = [(parent(("part", name, pa), lambda w=w: w), pa, pb)
                                 for w, pa, pb in ctx.batched[name]]
                        out.append((PARENT, slots, ("parts", offset)))
                    else:
                        out.append((PARENT, parent(source, lambda n=name, k=offset: stacked.ref(n, k, "scan")),
                                    "columns"))
            self.resolved[m] = out
        # own values referenced outside a..b: carried in from earlier steps, or initial values
        self.outside: dict[tuple, int] = {}
        for m, tape in self.tapes.items():
            for kind, name, offset in (r for r in self.resolved[m] if r[0] == OWN):
                for _, t in steps:
                    s = t + offset
                    if not a <= s <= b and (name, s) not in self.outside:
                        self.outside[(name, s)] = parent(("own", name, s), lambda n=name, s=s: ctx.ref(n, s, "scan"))
        self.need = [p.requires_grad for p in self.parents]
        self.rows = {m: shapes[m][0] for m in members}
        offsets, r = {}, 0
        for m in members:
            offsets[m] = (r, r + self.rows[m])
            r += self.rows[m]
        self.row_ranges, self.total_rows = offsets, r
        self.step_grads: dict[tuple, np.ndarray] = {}

    @staticmethod
    def _covered(ctx, name, first, last) -> bool:
        parts = ctx.batched.get(name)
        return bool(parts) and parts[0][1] <= first and last <= parts[-1][2]

    def _locate(self, slots, s):
        """The parent slot and first column of step ``s`` in a variable stored in chunks."""
        for slot, pa, pb in slots:
            if pa <= s <= pb:
                return slot, (s - pa) * self.B
        raise AssertionError(s)

    # ------------------------------------------------------------------ forward
    def forward(self, arrays):
        a, B = self.a, self.B
        n = self.b - a + 1
        values: dict[tuple, np.ndarray] = {}
        records = []
        for name, t in self.steps:
            tape = self.tapes[name]
            inputs = []
            for kind, x, how in self.resolved[name]:
                if kind == OWN:  # x is the variable, how its offset
                    value = values.get((x, t + how))
                    inputs.append(value if value is not None else arrays[self.outside[(x, t + how)]])
                elif how is None:
                    inputs.append(arrays[x])
                elif how == "columns":
                    inputs.append(arrays[x][..., (t - a) * B:(t - a + 1) * B])
                else:
                    slot, c = self._locate(x, t + how[1])
                    inputs.append(arrays[slot][..., c:c + B])
            outs, saveds = [], []
            consts = tape.consts
            for op, operands, attrs in tape.ops:
                args = [outs[j] if k == OP else consts[j] if k == CONST else inputs[j] for k, j in operands]
                out, saved = op.forward(*args, **attrs)
                outs.append(out)
                saveds.append(saved)
            value = _operand(tape.root, outs, inputs, tape.consts)
            values[(name, t)] = value
            records.append((inputs, outs, saveds))
        result = np.empty((self.total_rows, n * B), dtype=np.result_type(*[v.dtype for v in values.values()]))
        for (name, t), value in values.items():
            r0, r1 = self.row_ranges[name]
            result[r0:r1, (t - a) * B:(t - a + 1) * B] = value
        return result, records

    # ------------------------------------------------------------------ backward
    def _backward_table(self, name, need):
        """For each op of ``name``'s tape, in reverse: what the backward pass does with it."""
        table = []
        for i in range(len(self.tapes[name].ops) - 1, -1, -1):
            op, operands, attrs = self.tapes[name].ops[i]
            wants = tuple(self._wants(o, name, need) for o in operands)
            defer = None
            if op is _MATMUL and wants[0]:
                defer = self._param_slot(operands[0], name)  # ∇W of W @ x: one product over all steps
                if defer is not None:
                    wants = (False,) + wants[1:]
            table.append((i, op, operands, attrs, wants, defer, any(wants)))
        return table

    def backward(self, g, records, arrays, need):
        a, B = self.a, self.B
        self.step_grads = {}
        grads: list = [None] * len(arrays)
        deferred: dict[int, tuple[list, list]] = {}  # parameter slot -> (gradients, right factors) of W @ x
        own: dict[tuple, np.ndarray] = {}
        tables = {name: self._backward_table(name, need) for name in self.tapes}
        for (name, t), (inputs, outs, saveds) in zip(reversed(self.steps), reversed(records)):
            r0, r1 = self.row_ranges[name]
            gv = g[r0:r1, (t - a) * B:(t - a + 1) * B]
            extra = own.pop((name, t), None)
            if extra is not None:
                gv = gv + extra
            self.step_grads[(name, t)] = gv  # the whole ∂L/∂v(t), recurrent paths included
            tape = self.tapes[name]
            consts = tape.consts
            local: list = [None] * len(tape.ops)
            self._send(tape.root, gv, name, t, local, own, grads, arrays)
            for i, op, operands, attrs, wants, defer, anything in tables[name]:
                gi = local[i]
                if gi is None:
                    continue
                args = tuple([outs[j] if k == OP else consts[j] if k == CONST else inputs[j] for k, j in operands])
                if defer is not None and args[0].ndim == 2 and args[1].ndim == 2:
                    gs, xs = deferred.setdefault(defer, ([], []))
                    gs.append(gi)
                    xs.append(args[1])
                elif defer is not None:  # not a plain matrix product after all: the ordinary rule
                    wants = (True,) + wants[1:]
                    anything = True
                if not anything:
                    continue
                pgrads = op.vjp(gi, outs[i], args, wants, saveds[i], attrs)
                for o, pg, w, arg in zip(operands, pgrads, wants, args):
                    if w and pg is not None:
                        if type(pg) is SliceGrad:
                            pg = np.asarray(pg)
                        if pg.shape != arg.shape:
                            pg = unbroadcast(pg, arg.shape)
                        if o[0] == OP:
                            j = o[1]
                            local[j] = pg if local[j] is None else local[j] + pg
                        else:
                            self._send(o, pg, name, t, local, own, grads, arrays)
        for slot, (gs, xs) in deferred.items():
            term = np.concatenate(gs, axis=1) @ np.concatenate(xs, axis=1).T
            grads[slot] = term if grads[slot] is None else grads[slot] + term
        for (name, s), gv in own.items():  # what flows out to the values carried in
            slot = self.outside[(name, s)]
            grads[slot] = _add(grads[slot], gv)
        return tuple(grads)

    def _param_slot(self, operand, name):
        kind, i = operand
        if kind != "in":
            return None
        src = self.resolved[name][i]
        return src[1] if src[0] == PARENT and src[2] is None else None

    def _wants(self, operand, name, need) -> bool:
        kind, i = operand
        if kind == OP:
            return True
        if kind == CONST:
            return False
        src = self.resolved[name][i]
        if src[0] != PARENT:
            return True
        if isinstance(src[1], list):
            return any(need[slot] for slot, _, _ in src[1])
        return need[src[1]]

    def _send(self, operand, gv, name, t, local, own, grads, arrays):
        """Add gradient ``gv`` to where ``operand`` came from."""
        kind, i = operand
        if kind == OP:
            local[i] = gv if local[i] is None else local[i] + gv
            return
        if kind == CONST:
            return
        src = self.resolved[name][i]
        if src[0] == PARENT:
            slot, how = src[1], src[2]
            if how is None:
                grads[slot] = _add(grads[slot], gv)
                return
            if how == "columns":
                c = (t - self.a) * self.B
            else:
                slot, c = self._locate(slot, t + how[1])
            if grads[slot] is None:
                grads[slot] = np.zeros(arrays[slot].shape, dtype=arrays[slot].dtype)
            grads[slot][..., c:c + self.B] += gv
        else:
            key = (src[1], t + src[2])
            own[key] = gv if key not in own else own[key] + gv


class _ShapeLookup(dict):
    """Placeholder shapes for the tracer: the block's variables, and what they read."""

    def __init__(self, ctx, shapes, stacked):
        super().__init__(shapes)
        self.ctx, self.stacked = ctx, stacked

    def __missing__(self, name):
        var = self.ctx.rec.variables.get(name)
        if var is not None and var.is_label:
            return (self.ctx.batch,)
        if var is not None and var.rows:
            return (var.rows, self.ctx.batch)
        whole = self.stacked.ref(name, 0, "scan")  # an internal variable computed for the whole range
        return (whole.shape[0], self.ctx.batch)


def _add(acc, g):
    return g.copy() if acc is None else acc + g


def run_block(ctx, members, eqs, compiled, steps, a, b) -> None:
    """Evaluate ``steps`` (within ``a..b``) of the block as one scan op; store each variable's part."""
    plan = ScanPlan(ctx, members, eqs, compiled, steps, a, b)
    whole = E.apply(_SCAN, *plan.parents, plan=plan)
    ctx.scans.append(plan)
    for m in members:
        r0, r1 = plan.row_ranges[m]
        part = E.getitem(whole, (slice(r0, r1), slice(None)))
        ctx.batched.setdefault(m, []).append((part, a, b))
