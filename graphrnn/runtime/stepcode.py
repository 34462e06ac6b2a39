"""Python code for one step of a recurrent stage, generated once from its tape.

A recurrent stage of a :class:`~.program.Program` runs its tapes once per step,
so whatever the interpreter does around each numpy call — looking up where an
operand comes from, building argument lists, testing what to do with each
gradient — is paid T times.  Here that is decided once: each tape becomes the
source of a small function that calls the registry's forward and VJP rules in
order on local variables, with the buffer columns of step ``t`` computed
inline.  The numbers are those of the interpreter (the same rules, the same
order); only the bookkeeping goes.

The generated functions are built by ``make_*`` factories, called once per run
with that run's buffers and parameters.
"""

from __future__ import annotations

import re

import numpy as np

from ..engine.ops import SliceGrad, unbroadcast

IN, OP = "in", 0
PARAM, VAR, CONTEXT = "param", "var", "context"

#: ops whose registry forward is exactly this numpy function: the last op of a tape may write
#: straight into its variable's buffer with ``out=``
INTO = {"tanh": np.tanh, "add": np.add, "sub": np.subtract, "mul": np.multiply, "neg": np.negative,
        "exp": np.exp, "matmul": np.matmul}

#: ops whose registry forward saves nothing for its VJP (returns ``(out, None)``); tested
SAVES_NOTHING = {"add", "sub", "mul", "div", "neg", "pow", "powt", "matmul", "transpose", "sum", "mean",
                 "reshape", "getitem", "concat", "stack", "identity", "exp", "log", "tanh", "sigmoid", "relu",
                 "softmax", "log_softmax", "mse", "bce_with_logits", "one_hot"}

_ZERO = bytes(16)

#: write the common VJPs out in the generated backward step (False: call the registry's; to compare)
INLINE = True


def placeholder_of(shape, dtype):
    """An array of this shape and dtype that reads 0 everywhere and holds no memory."""
    return np.ndarray(shape, dtype, buffer=_ZERO, strides=(0,) * len(shape))


_ASSIGNED = re.compile(r"^\s*(\w+) = (None|\w+|\w+\[[^\]]*\])(\s*#.*)?$")


def _pruned(source: str) -> str:
    """``source`` without the assignments of names nothing reads (``s0 = None``, ``o1 = P1``, a view
    ``i2 = cv1[t + -1]`` no rule uses): every line they would cost runs once per step."""
    lines = source.split("\n")
    while True:
        targets = {}
        for n, line in enumerate(lines):
            m = _ASSIGNED.match(line)
            if m:
                targets.setdefault(m.group(1), []).append(n)
        dead = set()
        for name, at in targets.items():
            pattern = re.compile(rf"\b{name}\b")
            if not any(pattern.search(line) for n, line in enumerate(lines) if n not in at) and \
                    not any(pattern.search(_ASSIGNED.match(lines[n]).group(2)) for n in at):
                dead.update(at)
        if not dead:
            return "\n".join(lines)
        lines = [line for n, line in enumerate(lines) if n not in dead]


def _cols(buf_ndim: int, start: str) -> str:
    return f"[:, {start}:{start} + B]" if buf_ndim == 2 else f"[{start}:{start} + B]"


class StepCode:
    """The generated forward and backward step of one variable of a recurrent stage."""

    def __init__(self, stage, name, layouts, B, gather_from_view, stored_gradient=None, listed=False):
        """``stage`` is the program's recurrent stage (its tape, inputs, backward table and what
        each op keeps, reuses, writes); ``layouts`` where each variable's steps live; ``listed``:
        the step reads its columns from lists of per-step views made once per workspace (a list
        lookup instead of slicing a buffer at every step)."""
        self.listed = listed
        tape, specs, keep, table = stage.tapes[name], stage.inputs[name], stage.keep[name], stage.tables[name]
        reuse, write, chain = stage.reuse[name], stage.assign[name], stage.chain[name]
        self.name = name
        self.computed = {v for v, lay in layouts.items() if lay.kind == "computed"}
        self.vars = sorted({s[1] for s in specs if s[0] == VAR} | {name})
        self.params = sorted({s[1] for s in specs if s[0] == PARAM})
        self.contexts = sorted({s[1] for s in specs if s[0] == CONTEXT})
        self.deferred = [(i, d) for i, _, _, _, _, d, _ in table if d is not None]
        #: per deferred product (op index): the variable and offset its right factor is a view of, if any
        self.gather_from_view = gather_from_view
        #: per deferred product: the variable whose gradient buffer already holds its left factor
        self.stored_gradient = dict(stored_gradient or {})
        #: the inputs whose gradient is written into their variable's buffer, not added (the first to arrive)
        self.write = set(write)
        self.ns = {"B": B, "np": np, "unbroadcast": unbroadcast, "SliceGrad": SliceGrad}
        for i, (op, _, attrs) in enumerate(tape.ops):
            self.ns[f"F{i}"], self.ns[f"V{i}"], self.ns[f"A{i}"] = op.forward, op.vjp, attrs
        for j, c in enumerate(tape.consts):
            self.ns[f"K{j}"] = c
        kind, r = tape.root
        #: what a step keeps for its backward pass: outputs some VJP reads (other than the variable's
        #: own value, which stays in its buffer) and what ops saved
        self.stored = [i for i in range(len(tape.ops)) if keep[i] and not (kind == OP and i == r)]
        self.saving = [i for i, (op, _, _) in enumerate(tape.ops) if op.name not in SAVES_NOTHING]
        self.forward_source = self._forward(tape, specs, layouts, keep, reuse, chain)
        self.backward_source = self._backward(tape, specs, layouts, table)
        if INLINE:
            self.forward_source, self.backward_source = _pruned(self.forward_source), _pruned(self.backward_source)
            # the ufuncs the written-out rules call, as names of the factory (no attribute lookup per call)
            for ufunc, local in (("np.multiply(", "_mul("), ("np.subtract(", "_sub("), ("np.negative(", "_neg(")):
                self.backward_source = self.backward_source.replace(ufunc, local)
            self.backward_source = self.backward_source.replace(
                "    def step(t, record):", "    _mul, _sub, _neg = np.multiply, np.subtract, np.negative\n"
                "    def step(t, record):", 1)
        exec(compile(self.forward_source, f"<step {name}: forward>", "exec"), self.ns)
        exec(compile(self.backward_source, f"<step {name}: backward>", "exec"), self.ns)
        self.make_forward, self.make_backward = self.ns["make_forward"], self.ns["make_backward"]

    def _var(self, v):
        return f"v{self.vars.index(v)}"

    def _bind_inputs(self, specs, grads=False):
        """Lines of a factory binding a run's buffers, parameters and contexts to local names."""
        lines = [f"    {self._var(v)} = values[{v!r}]" for v in self.vars]
        if self.listed:
            lines += [f"    c{self._var(v)} = columns[0][{v!r}]" for v in self.vars]
            if grads:
                lines += [f"    cg{self.vars.index(v)} = columns[1][{v!r}]" for v in self.vars if v in self.computed]
        for j, spec in enumerate(specs):
            if spec[0] == PARAM:
                lines.append(f"    i{j} = params[{spec[1]!r}]")
            elif spec[0] == CONTEXT:
                lines.append(f"    i{j} = context({spec[1]!r}, 1)")
        return lines

    def _step_views(self, specs, layouts, tape=None, read=None, read_d=True):
        """Lines of a step computing the views of step ``t``: its inputs, and ``d``, its own columns.
        An input not in ``read`` (when given) is a placeholder of its shape: no VJP reads its values."""
        lines = []
        for j, spec in enumerate(specs):
            if spec[0] == VAR:
                if read is not None and j not in read:
                    self.ns[f"Q{j}"] = placeholder_of(tape.in_shapes[j], tape.in_dtypes[j])
                    lines.append(f"        i{j} = Q{j}")
                    continue
                lay = layouts[spec[1]]
                if lay.direct:  # the caller's data array, steps on axis 0
                    lines.append(f"        i{j} = {self._var(spec[1])}[t + {spec[2] - 1}]")
                    continue
                if self.listed:
                    lines.append(f"        i{j} = c{self._var(spec[1])}[t + {spec[2] - lay.lo}]")
                    continue
                start = f"(t + {spec[2] - lay.lo}) * B"
                lines.append(f"        i{j} = {self._var(spec[1])}{_cols(len(lay.shape), start)}")
        lay = layouts[self.name]
        if read_d and self.listed:
            lines.append(f"        d = c{self._var(self.name)}[t + {-lay.lo}]")
        elif read_d:
            lines.append(f"        d = {self._var(self.name)}{_cols(len(lay.shape), f'(t - {lay.lo}) * B')}")
        else:
            self.ns["Qd"] = placeholder_of(tape.root_shape, tape.root_dtype)
            lines.append("        d = Qd")
        return lines

    def _forward(self, tape, specs, layouts, keep, reuse, chain):
        n = len(tape.ops)
        kind, r = tape.root
        into_d = set()  # ops computing straight into the variable's columns (see program.dest_chain)
        for j in chain:
            if tape.out_shapes[j] != tape.root_shape or tape.out_dtypes[j] != tape.root_dtype:
                break
            if tape.ops[j][0].name == "matmul":
                # W @ h[t-1] into h[t]'s columns: the operand and the result interleave in one buffer,
                # and numpy then copies (measured slower than a fresh result)
                break
            into_d.add(j)
        head = ["def make_forward(values, params, context, record, columns=None):"] + self._bind_inputs(specs)
        scratchy = set()  # ops whose output is a scratch array of the run, overwritten at every step
        body = ["    def step(t):"] + self._step_views(specs, layouts)
        for i, (op, operands, attrs) in enumerate(tape.ops):
            args = ", ".join(f"o{j}" if k == OP else f"i{j}" if k == IN else f"K{j}" for k, j in operands)
            if kind == OP and i == r == n - 1 and op.name in INTO and not attrs:
                self.ns[f"N{i}"] = INTO[op.name]
                body.append(f"        o{i} = N{i}({args}, out=d)")
                body.append(f"        s{i} = None")
                continue
            over = [j for j in reuse.get(i, ()) if self._fits(tape, i, j)
                    and not (i in self.stored and j in scratchy)]  # a kept output must be fresh each step
            if i in into_d and not (INLINE and over):
                self.ns[f"N{i}"] = INTO[op.name]
                body.append(f"        o{i} = N{i}({args}, out=d)")
                body.append(f"        s{i} = None")
                continue
            # the result is written over a temporary no one else reads: a fresh array, contiguous, where
            # the variable's columns are not (B = 1: a column of a wide buffer), measured faster
            if over:
                if over[0] in scratchy:
                    scratchy.add(i)
                self.ns[f"N{i}"] = INTO[op.name]
                body.append(f"        o{i} = N{i}({args}, out=o{over[0]})")
                body.append(f"        s{i} = None")
                continue
            if INLINE and op.name == "matmul" and not attrs and [len(tape.in_shapes[j]) if k == IN else
                                                      len(tape.out_shapes[j]) if k == OP else 0
                                                      for k, j in operands] == [2, 2]:
                (ka, ja), (kb, jb) = operands  # ndarray.dot: the same product, less overhead (see _inline_vjp)
                b_arg = f"o{jb}" if kb == OP else f"i{jb}" if kb == IN else f"K{jb}"
                out = ""
                if i not in self.stored and not (kind == OP and i == r):  # no one keeps it past the step
                    head.append(f"    S{i} = np.empty({tape.out_shapes[i]!r}, dtype=np.{tape.out_dtypes[i].name})")
                    out = f", out=S{i}"
                    scratchy.add(i)
                if ka == IN and specs[ja][0] == PARAM:
                    head.append(f"    D{i} = i{ja}.dot")
                    body.append(f"        o{i} = D{i}({b_arg}{out})")
                else:
                    a_arg = f"o{ja}" if ka == OP else f"i{ja}" if ka == IN else f"K{ja}"
                    body.append(f"        o{i} = {a_arg}.dot({b_arg}{out})")
                body.append(f"        s{i} = None")
                continue
            call = f"F{i}({args}, **A{i})" if attrs else f"F{i}({args})"
            body.append(f"        o{i}, s{i} = {call}")
        if kind == OP and not (r == n - 1 and tape.ops[r][0].name in INTO and not tape.ops[r][2]):
            body.append(f"        d[...] = o{r}")
        elif kind != OP:
            body.append(f"        d[...] = {'i' if kind == IN else 'K'}{r}")
        record = [f"o{i}" for i in self.stored] + [f"s{i}" for i in self.saving]
        # the same body looped over steps inside one function (no call per step): step.loop(steps, records)
        loop = ["    def loop(ts, out):", "        for t in ts:"] + ["    " + part for line in body[1:] for part in line.split("\n")]
        if record:
            loop += ["            if record:", f"                out.append(({''.join(x + ', ' for x in record)}))"]
        body.append("        if record:")
        body.append(f"            return ({''.join(x + ', ' for x in record)})" if record else "            return None")
        return "\n".join(head + body + loop + ["    step.loop = loop", "    return step", ""])

    @staticmethod
    def _fits(tape, i, j):
        """Whether op ``i``'s result has exactly op ``j``'s output shape and dtype (one step: static)."""
        return tape.out_shapes[i] == tape.out_shapes[j] and tape.out_dtypes[i] == tape.out_dtypes[j]

    def _backward(self, tape, specs, layouts, table):
        n = len(tape.ops)
        kind, r = tape.root
        head = (["def make_backward(values, params, context, grads, pgrads, gathered, columns=None):"]
                + self._bind_inputs(specs, grads=True))
        for v in self.vars:
            if layouts[v].kind == "computed":
                head.append(f"    g{self.vars.index(v)} = grads[{v!r}]")
        for p in self.params:
            head.append(f"    a_{self.params.index(p)} = pgrads[{p!r}]")
        for c in self.contexts:
            head.append(f"    b_{self.contexts.index(c)} = pgrads.get({c!r})")
        for i, _ in self.deferred:
            head.append(f"    G{i}, X{i} = gathered[{i}]")
        read = set()  # the inputs whose values the backward pass reads
        for i, op, operands, attrs, wants, defer, anything in table:
            for pos, (k, j) in enumerate(operands):
                if k == IN and anything and op.reads_arg(pos):
                    read.add(j)
            if defer is not None and i not in self.gather_from_view and operands[1][0] == IN:
                read.add(operands[1][1])
        read_d = kind == OP and tape.ops[r][0].reads_out
        body = ["    def step(t, record):"] + self._step_views(specs, layouts, tape, read, read_d)
        record = [f"o{i}" for i in self.stored] + [f"s{i}" for i in self.saving]
        #: the forward steps record something: the backward loop is given their records
        self.records = bool(record)
        if record:
            body.append(f"        {''.join(x + ', ' for x in record)}= record")
        for i in range(n):
            if kind == OP and i == r:
                body.append(f"        o{i} = d")  # the stored value
            elif i not in self.stored:
                self.ns[f"P{i}"] = placeholder_of(tape.out_shapes[i], tape.out_dtypes[i])
                body.append(f"        o{i} = P{i}  # no VJP reads it: only its shape")
            if i not in self.saving:
                body.append(f"        s{i} = None")
            if not (kind == OP and i == r):
                body.append(f"        l{i} = None")
        assigned = set()  # op gradients given a value so far, in the order the code runs
        lay = layouts[self.name]
        root_g = (f"cg{self.vars.index(self.name)}[t + {-lay.lo}]" if self.listed else
                  f"g{self.vars.index(self.name)}{_cols(len(lay.shape), f'(t - {lay.lo}) * B')}")
        if kind == OP:
            body.append(f"        l{r} = {root_g}")
            assigned.add(r)
        elif kind == IN:
            body.append(f"        p = {root_g}")
            body += self._send(r, specs, layouts, "        ")
        for i, op, operands, attrs, wants, defer, anything in table:
            if kind == OP and i == r:
                body.append("        if True:  # the step's own gradient")
            else:
                body.append(f"        if l{i} is not None:")
            ind = "            "
            if defer is not None:  # gather the factors of ∇W = sum over t of l(t) x(t)^T, unless stored
                if i not in self.stored_gradient:
                    body.append(f"{ind}G{i}[:, (t - 1) * B:t * B] = l{i}")
                if i not in self.gather_from_view:
                    k, j = operands[1]
                    arg = f"o{j}" if k == OP else f"i{j}" if k == IN else f"K{j}"
                    body.append(f"{ind}X{i}[:, (t - 1) * B:t * B] = {arg}")
            if not anything:
                body.append(f"{ind}pass")
                continue
            args = ", ".join(f"o{j}" if k == OP else f"i{j}" if k == IN else f"K{j}" for k, j in operands)
            inline = self._inline_vjp(tape, specs, i, head)
            if inline is not None:  # the registry's rule written out: no call, no shape checks
                for pos, ((k, j), w) in enumerate(zip(operands, wants)):
                    if not w:
                        continue
                    body += [ind + line for line in inline[pos]]
                    if k == OP and j not in assigned:
                        body.append(f"{ind}l{j} = p")
                        assigned.add(j)
                    elif k == OP:
                        body.append(f"{ind}l{j} = p if l{j} is None else l{j} + p")
                    else:
                        body += self._send(j, specs, layouts, ind)
                continue
            body.append(f"{ind}r = V{i}(l{i}, o{i}, ({args},), {wants!r}, s{i}, A{i})")
            for pos, ((k, j), w) in enumerate(zip(operands, wants)):
                if not w:
                    continue
                arg = f"o{j}" if k == OP else f"i{j}"
                body.append(f"{ind}p = r[{pos}]")
                body.append(f"{ind}if p is not None:")
                if op.name == "getitem":
                    body.append(f"{ind}    if type(p) is SliceGrad:")
                    body.append(f"{ind}        p = np.asarray(p)")
                body.append(f"{ind}    if p.shape != {arg}.shape:")
                body.append(f"{ind}        p = unbroadcast(p, {arg}.shape)")
                if k == OP and j not in assigned:
                    body.append(f"{ind}    l{j} = p")
                    assigned.add(j)
                elif k == OP:
                    body.append(f"{ind}    l{j} = p if l{j} is None else l{j} + p")
                else:
                    body += self._send(j, specs, layouts, ind + "    ")
        # the same body looped over steps inside one function: step.loop(steps, records)
        loop = (["    def loop(ts, records):", "        for t, record in zip(ts, records):"] if record else
                ["    def loop(ts, records):", "        for t in ts:"]) + ["    " + part for line in body[1:] for part in line.split("\n")]
        return "\n".join(head + body + loop + ["    step.loop = loop", "    return step", ""])

    def _inline_vjp(self, tape, specs, i, head):
        """For op ``i``, when its operands have its output's shape (no broadcasting) and its rule is a
        few ufuncs: per operand, the lines computing that operand's gradient ``p`` — exactly the
        registry's VJP (the same ufuncs in the same order, so the same bits), written into scratch
        arrays made once per run (``W{i}_{pos}`` in the factory) instead of fresh ones; else None."""
        op, operands, attrs = tape.ops[i]
        if not INLINE or attrs or tape.out_dtypes[i].kind != "f":
            return None
        shape = tape.out_shapes[i]

        def shape_of(k, j):
            return tape.out_shapes[j] if k == OP else tape.in_shapes[j] if k == IN else np.shape(tape.consts[j])

        def arg(k, j):
            return f"o{j}" if k == OP else f"i{j}" if k == IN else f"K{j}"

        def scratch(pos, of=None):
            name = f"W{i}_{pos}"
            head.append(f"    {name} = np.empty({of or shape!r}, dtype=np.{tape.out_dtypes[i].name})")
            return name

        shapes = [shape_of(k, j) for k, j in operands]
        name = op.name
        if name == "matmul":
            if len(shapes[0]) != 2 or len(shapes[1]) != 2:
                return None
            (ka, ja), (kb, jb) = operands
            # ndarray.dot of two matrices: the product ``@`` computes (the same BLAS call, the same bits;
            # tests/runtime/test_program.py checks), at half the overhead of a call of the matmul ufunc
            # each into a scratch array of its operand's shape (a product into fresh memory measured slower)
            if ka == IN and specs[ja][0] == PARAM:  # a parameter's transpose, taken once per run
                head.append(f"    aT{i} = i{ja}.swapaxes(-1, -2).dot")
                gb = [f"p = aT{i}(l{i}, out={scratch(1, shapes[1])})"]
            else:
                gb = [f"p = {arg(ka, ja)}.swapaxes(-1, -2).dot(l{i}, out={scratch(1, shapes[1])})"]
            return [[f"p = l{i}.dot({arg(kb, jb)}.swapaxes(-1, -2), out={scratch(0, shapes[0])})"], gb]
        if any(sh != shape for sh in shapes):
            return None
        if name == "add":
            return [[f"p = l{i}"], [f"p = l{i}"]]
        if name == "sub":
            return [[f"p = l{i}"], [f"p = np.negative(l{i}, out={scratch(1)})"]]
        if name == "mul":
            (ka, ja), (kb, jb) = operands
            return [[f"p = np.multiply(l{i}, {arg(kb, jb)}, out={scratch(0)})"],
                    [f"p = np.multiply(l{i}, {arg(ka, ja)}, out={scratch(1)})"]]
        if name == "tanh":  # g * (1 - out * out)
            w = scratch(0)
            return [[f"p = np.multiply(o{i}, o{i}, out={w})", "np.subtract(1.0, p, out=p)",
                     f"np.multiply(l{i}, p, out=p)"]]
        if name == "sigmoid":  # g * out * (1 - out)
            w, v = scratch(0), scratch(1)
            return [[f"p = np.multiply(l{i}, o{i}, out={w})", f"np.multiply(p, np.subtract(1.0, o{i}, out={v}), out=p)"]]
        return None

    def _send(self, j, specs, layouts, ind):
        spec = specs[j]
        if spec[0] == PARAM:
            a = f"a_{self.params.index(spec[1])}"
            return [f"{ind}np.add({a}, p, out={a})"]
        if spec[0] == CONTEXT:  # the program wants only a float context's gradient (Program._wants)
            b = f"b_{self.contexts.index(spec[1])}"
            return [f"{ind}np.add({b}, p, out={b})"]
        if spec[0] == VAR and layouts[spec[1]].kind == "computed":
            lay = layouts[spec[1]]
            if self.listed:
                target = f"cg{self.vars.index(spec[1])}[t + {spec[2] - lay.lo}]"
                return [f"{ind}{target}[...] = p" if j in self.write else f"{ind}q = {target}\n{ind}q += p"]
            start = f"(t + {spec[2] - lay.lo}) * B"
            target = f"g{self.vars.index(spec[1])}{_cols(len(lay.shape), start)}"
            return [f"{ind}{target}[...] = p" if j in self.write else f"{ind}{target} += p"]
        return [f"{ind}pass"]
