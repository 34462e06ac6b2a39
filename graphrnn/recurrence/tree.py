"""Recursive networks (§10.6, fig. 10.14): the same weights at every node of a tree.

A recurrence unrolls along a time axis; a recursive network unrolls along a tree.
The notation is that of a recurrence, with the step ``t`` replaced by a place in
the tree (see ``docs/recursive.md``)::

    h[leaf] = tanh(V @ x[leaf])                        # at each leaf, its input through V
    h[node] = tanh(b + U @ h[left] + W @ h[right])     # at each node, its children through U and W
    o = c + R @ h[root]                                # at the root, one output for the whole tree
    L = cross_entropy(o, y)

A tree is given as nested pairs (``((1, 2), (3, 4))``, the book's fig. 10.14) or as a
``networkx`` tree; leaf ``i`` reads ``x[i]``.  :meth:`TreeRecurrence.unroll` gives the
unrolled graph (a DAG, one circle per variable per tree node).  This is the notation only:
:class:`graphrnn.runtime.tree.RecursiveNet` (what ``graphrnn.zoo.load_tree`` returns) adds
``run``, on the engine, with gradients.

>>> import graphrnn as gr
>>> rec = gr.zoo.load_tree("fig10_14")
>>> shape = Tree.of(((1, 2), (3, 4)))
>>> shape.internal, shape.depth
(['1..2', '3..4', '1..4'], 2)
>>> g = rec.unroll(((1, 2), (3, 4)))
>>> sorted(g.predecessors("h[1..4]"))
['h[1..2]', 'h[3..4]']
>>> g.edges["h[1..2]", "h[1..4]"]["param"], g.edges["h[3..4]", "h[1..4]"]["param"]
('U', 'W')
"""

from __future__ import annotations

import ast
import difflib
import math
import re
import warnings
from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from ..errors import DataError, SpecError
from .shapes import BATCH, Shape, ShapeInference
from .spec import (
    FUNCTION_ALIASES, FUNCTIONS, LOSSES, NON_DIFFERENTIABLE, Bin, Call, Name, Num, Ref,
    Transpose, Unary, _check_name, _check_size, read_spec_file, references, walk,
)

#: where an equation is defined: at every leaf, at every internal node, or once, at the root
PLACES = ("leaf", "node", "root")
#: what a reference may name inside [...], by the place of the equation it is in
READS = {"leaf": ("leaf",), "node": ("node", "left", "right"), "root": ("root",)}
KEYWORDS = ("size", "input", "target", "hidden", "state", "param", "loss")
#: at most this many leaves in one tree (a deeper tree is a data error, not a slow run)
MAX_LEAVES = 100_000


# ------------------------------------------------------------------------------------------ the tree


@dataclass
class Tree:
    """The shape of a binary tree: its leaves (which input each reads) and internal nodes.

    Each node has a key: a leaf its input's number (``"3"``), an internal node the
    numbers of its leftmost and rightmost leaves (``"1..2"``); the keys are unique.
    ``internal`` lists the internal nodes children first (the order to compute them).

    >>> t = Tree.of(((1, 2), 3))
    >>> t.leaves, t.internal, t.root, t.children["1..3"]
    (['1', '2', '3'], ['1..2', '1..3'], '1..3', ('1..2', '3'))
    """

    leaves: list  # keys of the leaves, left to right
    internal: list  # keys of the internal nodes, children before parents
    children: dict  # internal key -> (left key, right key)
    leaf_input: dict  # leaf key -> the index (1-based) of the input it reads
    root: str
    nested: object = None  # the tree as nested tuples of input numbers

    @property
    def n_leaves(self) -> int:
        return len(self.leaves)

    @property
    def depth(self) -> int:
        """The number of internal nodes on the longest path from a leaf to the root (O(log n) if balanced)."""
        d = {k: 0 for k in self.leaves}
        for k in self.internal:
            d[k] = 1 + max(d[c] for c in self.children[k])
        return d[self.root]

    def parent_side(self) -> dict:
        """child key -> (parent key, "left" or "right")."""
        out = {}
        for k, (a, b) in self.children.items():
            out[a] = (k, "left")
            out[b] = (k, "right")
        return out

    @classmethod
    def of(cls, tree) -> Tree:
        """A :class:`Tree` from nested pairs, a ``networkx`` tree or a :class:`Tree`.

        Leaves are whole numbers ``1..n`` (each once: leaf ``i`` reads ``x[i]``), or any
        other values, numbered 1..n left to right.  Every internal node has exactly two
        children, a left one (through U in fig. 10.14) and a right one (through W).
        """
        if isinstance(tree, Tree):
            return tree
        if isinstance(tree, nx.Graph):
            tree = _nested_from_networkx(tree)
        if isinstance(tree, list):
            tree = _as_tuples(tree)
        leaves_raw: list = []
        _collect(tree, leaves_raw, 0)
        if len(leaves_raw) > MAX_LEAVES:
            raise DataError(f"a tree of {len(leaves_raw):,} leaves is beyond the limit of {MAX_LEAVES:,}")
        ints = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in leaves_raw)
        if ints:
            values = [int(v) for v in leaves_raw]
            if sorted(values) != list(range(1, len(values) + 1)):
                dup = sorted({v for v in values if values.count(v) > 1})
                what = f"leaf {dup[0]} appears more than once" if dup else f"the leaves are {sorted(values)}"
                raise DataError(f"the leaves of a tree of numbers name the inputs they read, 1..{len(values)} "
                                f"each once; {what}. Number them 1..{len(values)} (leaf i reads x[i])")
            number = iter(values)
        else:
            number = iter(range(1, len(leaves_raw) + 1))
        out = cls([], [], {}, {}, "")
        # children before parents, without recursion (a chain of 10,000 leaves is a fine tree)
        keys: list = []  # the keys of finished subtrees, a stack
        nested: list = []
        stack = [(tree, False)]
        while stack:
            t, done = stack.pop()
            if not isinstance(t, tuple):
                i = next(number)
                key = str(i)
                out.leaves.append(key)
                out.leaf_input[key] = i
                keys.append(key)
                nested.append(i)
            elif done:
                kb, ka = keys.pop(), keys.pop()
                nb, na = nested.pop(), nested.pop()
                key = f"{_first(ka)}..{_last(kb)}"
                out.children[key] = (ka, kb)
                out.internal.append(key)
                keys.append(key)
                nested.append((na, nb))
            else:
                stack += [(t, True), (t[1], False), (t[0], False)]
        out.root = keys[0]
        out.nested = nested[0]
        return out


def _first(key: str) -> str:
    return key.split("..")[0]


def _last(key: str) -> str:
    return key.split("..")[-1]


def _as_tuples(t):
    return tuple(_as_tuples(c) for c in t) if isinstance(t, (list, tuple)) else t


def _collect(t, out: list, depth: int) -> None:
    stack = [(t, depth)]
    while stack:
        node, d = stack.pop()
        if d > 10_000:
            raise DataError("this tree is nested more than 10,000 deep")
        if isinstance(node, tuple):
            if len(node) != 2:
                raise DataError(f"every internal node of the tree has two children (a left and a right one, "
                                f"through U and W in fig. 10.14); {_short(node)} has {len(node)}. "
                                f"Group the children in pairs, e.g. ((a, b), c)")
            stack.append((node[1], d + 1))
            stack.append((node[0], d + 1))
        else:
            out.append(node)


def _short(node) -> str:
    s = repr(node)
    return s if len(s) <= 40 else s[:37] + "..."


def _nested_from_networkx(g: nx.Graph):
    """Nested tuples from a networkx tree: edges from parent to child (or all reversed), the
    children in the order ``g.successors`` gives them (the order they were added)."""
    if not isinstance(g, nx.DiGraph):
        raise DataError("give the tree as a networkx.DiGraph with edges from each parent to its children")
    if g.number_of_nodes() == 0:
        raise DataError("the tree has no nodes")
    if not nx.is_arborescence(g):
        if nx.is_arborescence(g.reverse(copy=False)):
            g = g.reverse()
        else:
            raise DataError("the networkx graph is not a tree with edges from each parent to its children "
                            "(one root, every other node with one parent, no cycles)")
    root = next(n for n, d in g.in_degree() if d == 0)
    order = list(nx.dfs_postorder_nodes(g, root))
    done: dict = {}
    for n in order:  # iteratively: a deep tree must not hit Python's recursion limit
        kids = list(g.successors(n))
        done[n] = tuple(done[k] for k in kids) if kids else g.nodes[n].get("leaf", n)
    return done[root]


# ------------------------------------------------------------------------------------------ the notation


@dataclass
class TreeEquation:
    name: str
    place: str  # "leaf", "node" or "root"
    expr: object
    line: int
    text: str


@dataclass
class TreeSpec:
    """A parsed recursive-network spec (see the module doc)."""

    text: str
    source: str | None = None
    title: str = ""
    sizes: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)  # name -> size: one column per leaf
    targets: dict = field(default_factory=dict)  # name -> ("class"|"vector", size): one per tree
    hidden: dict = field(default_factory=dict)  # name -> size
    params: dict = field(default_factory=dict)  # name -> declared shape
    losses: list = field(default_factory=list)
    equations: list = field(default_factory=list)
    lines: dict = field(default_factory=dict)


def _error(msg, line=None, col=None, variable=None, source=None) -> SpecError:
    return SpecError(msg, line, col, variable=variable, source=source)


def parse_tree_spec(text: str, source: str | None = None) -> TreeSpec:
    """Read a recursive-network spec: declarations, then ``h[leaf] = ...``, ``h[node] = ...``
    and root equations ``o = ...`` (see ``docs/recursive.md``)."""
    if not isinstance(text, str):
        raise _error(f"a spec is text, not a {type(text).__name__}", source=source)
    spec = TreeSpec(text=text, source=source)
    for number, raw in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
        body = raw.split("#", 1)[0].strip()
        if number == 1 and raw.strip().startswith("#"):
            spec.title = raw.strip().lstrip("#").strip()
        if not body:
            continue
        word = body.split(None, 1)[0]
        if word in KEYWORDS and "=" not in body.split(None, 1)[0] and not body.startswith(word + "["):
            _declare(spec, word, body[len(word):].strip(), number)
        else:
            spec.equations.append(_equation(body, number, source))
    _check(spec)
    return spec


def _size(token: str, line: int, source):
    token = token.strip()
    if token.isdigit():
        return int(token)
    if re.fullmatch(r"[^\W\d]\w*", token):
        return token
    raise _error(f"a size is a whole number or a size name, not {token!r}", line, source=source)


def _declare(spec: TreeSpec, word: str, rest: str, line: int) -> None:
    src = spec.source
    if word == "size":
        for part in rest.split(","):
            name, eq, value = part.partition("=")
            if not eq or not value.strip().isdigit():
                raise _error(f"write sizes as `size H = 4, I = 3`; got {part.strip()!r}", line, source=src)
            spec.sizes[name.strip()] = int(value)
        return
    if word == "loss":
        for name in rest.split(","):
            spec.losses.append(_check_name(name.strip(), line, src, "loss"))
        return
    name, colon, what = rest.partition(":")
    name = _check_name(name.strip(), line, src, word)
    if not colon:
        raise _error(f"declare {name} with its size, e.g. `{word} {name}: H`", line, variable=name, source=src)
    if name in spec.lines:
        raise _error(f"{name} is declared twice (first on line {spec.lines[name]})", line, variable=name, source=src)
    spec.lines[name] = line
    what = what.split("=")[0].strip()  # `hidden h: H = zero`: a tree has no time, so no initial value
    if word == "input":
        spec.inputs[name] = _size(what, line, src)
    elif word == "target":
        parts = what.split()
        spec.targets[name] = ("class", _size(parts[1], line, src)) if parts and parts[0] == "class" and len(parts) == 2 \
            else ("vector", _size(what, line, src))
    elif word in ("hidden", "state"):
        spec.hidden[name] = _size(what, line, src)
    elif word == "param":
        dims = [d.strip() for d in what.replace("×", "x").split("x")]
        spec.params[name] = tuple(_size(d, line, src) for d in dims)


def _equation(body: str, line: int, source) -> TreeEquation:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            tree = ast.parse(body, mode="exec")
    except SyntaxError as exc:
        raise _error(f"cannot read this equation: {exc.msg}", line, exc.offset, source=source) from None
    except (RecursionError, MemoryError, ValueError, OverflowError):
        raise _error("this equation is nested too deeply to read; split it", line, source=source) from None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assign) or len(tree.body[0].targets) != 1:
        raise _error("expected an equation such as `h[node] = tanh(b + U @ h[left] + W @ h[right])` or a "
                     f"declaration ({', '.join(KEYWORDS)})", line, source=source)
    target = tree.body[0].targets[0]
    if isinstance(target, ast.Name):
        name, place = target.id, "root"
    elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
        name = target.value.id
        place = target.slice.id if isinstance(target.slice, ast.Name) else None
        if place not in ("leaf", "node"):
            raise _error(f"define {name} at every leaf (`{name}[leaf] = ...`), at every internal node "
                         f"(`{name}[node] = ...`) or once for the tree (`{name} = ...`, reading `h[root]`)",
                         line, variable=name, source=source)
    else:
        raise _error("the left side must be `h[leaf]`, `h[node]` or a bare name for the root", line, source=source)
    _check_name(name, line, source, "variable")
    try:
        _check_size(tree.body[0].value, line, source)
        expr = _convert(tree.body[0].value, body, line, source, place)
    except SpecError as exc:
        if exc.variable is not None:
            raise
        raise _error(f"in the equation of {name}: {exc.message}", exc.line, exc.col, variable=name,
                     source=source) from None
    return TreeEquation(name, place, expr, line, body)


def _convert(node, text: str, line: int, source, place: str):
    """The notation's expression tree (spec.py's node classes); a reference ``h[left]`` is a
    :class:`~graphrnn.recurrence.spec.Ref` whose anchor is the place it reads."""
    col = (getattr(node, "col_offset", 0) or 0) + 1
    here = (line, col, ast.get_source_segment(text, node) or "")

    def sub(n):
        return _convert(n, text, line, source, place)

    if isinstance(node, ast.BinOp):
        ops = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.MatMult: "@", ast.Pow: "**"}
        if type(node.op) not in ops:
            raise _error(f"`{here[2]}`: the notation's operators are + - * / @ **", line, col, source=source)
        left, right = sub(node.left), sub(node.right)
        if ops[type(node.op)] == "**" and not isinstance(right, Num):
            raise _error("a power's exponent must be a number", line, col, source=source)
        return Bin(*here, ops[type(node.op)], left, right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return Unary(*here, "-" if isinstance(node.op, ast.USub) else "+", sub(node.operand))
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)) \
                or not math.isfinite(float(node.value)):
            raise _error(f"only finite numbers may appear as constants, not {node.value!r}", line, col,
                         source=source)
        return Num(*here, float(node.value))
    if isinstance(node, ast.Name):
        if node.id in FUNCTIONS or node.id in FUNCTION_ALIASES:
            raise _error(f"{node.id} is a function; call it, as in `{node.id}(...)`", line, col, source=source)
        if node.id in ("leaf", "node", "left", "right", "root"):
            raise _error(f"`{node.id}` is a place in the tree and may only appear inside [...], as in "
                         f"`h[{node.id}]`", line, col, source=source)
        return Name(*here, node.id)
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        name = node.value.id
        at = node.slice.id if isinstance(node.slice, ast.Name) else None
        allowed = READS[place]
        if at not in allowed:
            where = {"leaf": "a leaf equation reads the leaf itself: `x[leaf]`",
                     "node": "a node equation reads its children, `h[left]` and `h[right]`, or itself, `a[node]`",
                     "root": "a root equation reads the root: `h[root]`"}[place]
            raise _error(f"`{here[2]}`: {where}", line, col, variable=name, source=source)
        return Ref(*here, name, 0, at)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        fn = FUNCTION_ALIASES.get(node.func.id, node.func.id)
        if fn not in FUNCTIONS:
            close = difflib.get_close_matches(node.func.id, list(FUNCTIONS), n=1)
            guess = f"did you mean {close[0]}? " if close else ""
            raise _error(f"unknown function {node.func.id!r}; {guess}the notation knows " + ", ".join(FUNCTIONS),
                         line, col, variable=node.func.id, source=source)
        if node.keywords or len(node.args) != FUNCTIONS[fn]:
            raise _error(f"{fn} takes {FUNCTIONS[fn]} plain argument(s)", line, col, source=source)
        return Call(*here, fn, tuple(sub(a) for a in node.args))
    if isinstance(node, ast.Attribute) and node.attr == "T":
        return Transpose(*here, sub(node.value))
    raise _error(f"`{here[2]}` is not part of the notation (numbers, names, h[leaf], h[node], h[left], h[right], "
                 f"h[root], + - * / @ **, .T and the functions {', '.join(FUNCTIONS)})", line, col, source=source)


def _check(spec: TreeSpec) -> None:
    src = spec.source
    defined: dict = {}  # name -> set of places
    for eq in spec.equations:
        places = defined.setdefault(eq.name, set())
        if eq.place in places:
            raise _error(f"{eq.name}[{eq.place}] is defined twice", eq.line, variable=eq.name, source=src)
        if eq.name in spec.inputs or eq.name in spec.targets:
            raise _error(f"{eq.name} is declared as data, so no equation may define it", eq.line, variable=eq.name,
                         source=src)
        places.add(eq.place)
        if "root" in places and len(places) > 1:
            raise _error(f"{eq.name} is defined both at the root (`{eq.name} = ...`) and in the tree "
                         f"(`{eq.name}[leaf]`/`{eq.name}[node]`); give the root's variable its own name",
                         eq.line, variable=eq.name, source=src)
    if not spec.equations:
        raise _error("the spec has no equations; fig. 10.14's are `h[leaf] = tanh(V @ x[leaf])` and "
                     "`h[node] = tanh(b + U @ h[left] + W @ h[right])`", source=src)
    data = set(spec.inputs) | set(spec.targets)
    for eq in spec.equations:
        for ref in references(eq.expr):
            name, at = ref.name, ref.anchor
            if name in spec.targets:
                if eq.place != "root":
                    raise _error(f"`{ref.text}`: a target is given once for the whole tree; read it bare, in a root "
                                 f"equation (`L = cross_entropy(o, {name})`)", eq.line, ref.col, name, src)
                raise _error(f"`{ref.text}`: a target has one value for the tree: write `{name}`", eq.line, ref.col,
                             name, src)
            if name in spec.inputs:
                if at != "leaf":
                    raise _error(f"`{ref.text}`: the input {name} is given at the leaves: read it as "
                                 f"`{name}[leaf]` in a leaf equation", eq.line, ref.col, name, src)
                continue
            if name not in defined or defined[name] == {"root"}:
                close = difflib.get_close_matches(name, [n for n in defined if defined[n] != {"root"}] + list(data),
                                                  n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                raise _error(f"`{ref.text}`: no equation defines {name} at the leaves or nodes{hint}", eq.line,
                             ref.col, name, src)
            need = {"left": {"leaf", "node"}, "right": {"leaf", "node"}, "root": {"node"},
                    "node": {"node"}, "leaf": {"leaf"}}[at]
            if at == "root" and "node" not in defined[name]:
                need = {"leaf"}
            missing = need - defined[name]
            if missing:
                where = " and ".join(f"`{name}[{m}] = ...`" for m in sorted(missing))
                why = "a child may be a leaf or a node" if at in ("left", "right") else f"it is read at [{at}]"
                raise _error(f"`{ref.text}`: {name} must be defined at every place it is read ({why}): "
                             f"add {where}", eq.line, ref.col, name, src)
        for n in walk(eq.expr):
            if isinstance(n, Name) and n.name in spec.inputs:
                raise _error(f"`{n.text}`: the input {n.name} is given at each leaf: write `{n.name}[leaf]`",
                             eq.line, n.col, n.name, src)
            if isinstance(n, Name) and n.name in defined and defined[n.name] != {"root"}:
                raise _error(f"`{n.text}`: {n.name} has a value at every node: say which, e.g. `{n.name}[root]`",
                             eq.line, n.col, n.name, src)
            if isinstance(n, Name) and n.name in spec.targets and eq.place != "root":
                raise _error(f"`{n.text}`: the target {n.name} belongs to the whole tree: read it in a root "
                             f"equation", eq.line, n.col, n.name, src)
            if isinstance(n, Name) and n.name in defined and eq.place != "root":
                raise _error(f"`{n.text}`: {n.name} is computed once, at the root, after the tree; a leaf or "
                             f"node equation cannot read it", eq.line, n.col, n.name, src)
    # a cycle among same-place equations (h[node] reads a[node] reads h[node])
    g = nx.DiGraph()
    for eq in spec.equations:
        g.add_node((eq.name, eq.place))
        for ref in references(eq.expr):
            if ref.anchor in (eq.place,) and ref.name not in data:
                g.add_edge((ref.name, eq.place), (eq.name, eq.place))
        if eq.place == "root":
            for n in walk(eq.expr):
                if isinstance(n, Name) and n.name in defined and defined[n.name] == {"root"}:
                    g.add_edge((n.name, "root"), (eq.name, "root"))
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        names = " -> ".join(f"{a}[{p}]" for (a, p), _ in cycle)
        raise _error(f"an algebraic loop: {names} reads itself at the same place; read a child "
                     f"([left] or [right]) instead", variable=cycle[0][0][0], source=src)
    losses = spec.losses or (["L"] if "L" in defined else [])
    for name in losses:
        if name not in defined or defined[name] != {"root"}:
            raise _error(f"the loss {name} must be defined once for the tree, by a root equation "
                         f"(`{name} = cross_entropy(o, y)`)", spec.lines.get(name), variable=name, source=src)
    spec.losses = losses


class TreeRecurrence:
    """A recursive network: a :class:`TreeSpec` with its shapes, to unroll over a tree and run.

    >>> import graphrnn as gr
    >>> rec = gr.zoo.load_tree("fig10_14")
    >>> sorted(rec.param_shapes.items())
    [('R', (3, 4)), ('U', (4, 4)), ('V', (4, 3)), ('W', (4, 4)), ('b', (4, 1)), ('c', (3, 1))]
    """

    def __init__(self, text: str, source: str | None = None, sizes: dict | None = None, name: str | None = None):
        self.spec = parse_tree_spec(text, source)
        self.name = name or (source or "tree").rsplit("/", 1)[-1].removesuffix(".tree")
        self.sizes = dict(self.spec.sizes)
        for k, v in (sizes or {}).items():
            if k not in self.sizes:
                raise SpecError(f"{self.name} has no size {k!r} (it has {', '.join(self.sizes) or 'none'})",
                                variable=k)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise SpecError(f"size {k} must be a whole number, at least 1; got {v!r}", variable=k)
            self.sizes[k] = v
        self.equations = {(eq.name, eq.place): eq for eq in self.spec.equations}
        self.losses = list(self.spec.losses)
        self._infer_shapes()

    @classmethod
    def from_file(cls, path, sizes=None) -> TreeRecurrence:
        from pathlib import Path

        p = Path(path)
        return cls(read_spec_file(p), source=str(p), sizes=sizes, name=p.stem)

    # -- shapes --------------------------------------------------------------------------------
    def _n(self, size, line=None, name=None) -> int:
        if isinstance(size, int):
            return size
        if size not in self.sizes:
            raise SpecError(f"unknown size {size!r}; declare it, e.g. `size {size} = 4`", line, variable=name,
                            source=self.spec.source)
        return self.sizes[size]

    def _infer_shapes(self) -> None:
        spec = self.spec
        si = ShapeInference(spec.source)
        var: dict = {}
        for n, s in spec.inputs.items():
            var[n] = si.column(self._n(s, spec.lines.get(n), n))
        for n, (kind, s) in spec.targets.items():
            k = self._n(s, spec.lines.get(n), n)
            var[n] = si.label(k) if kind == "class" else si.column(k)
        for n, s in spec.hidden.items():
            var[n] = si.column(self._n(s, spec.lines.get(n), n))
        for n, shape in spec.params.items():
            si.param(n, tuple(self._n(d, spec.lines.get(n), n) for d in shape))
        computed = {eq.name for eq in spec.equations}
        for n in computed:
            if n not in var:
                var[n] = Shape((si.dims.new(), si.batch)) if n not in self._root_names() else None

        def lookup(e):
            name = e.name
            if isinstance(e, Ref) or name in spec.targets or name in spec.inputs:
                return var[name]
            if name in self._root_names():
                return var[name]
            return si.param(name)

        for eq in [e for e in spec.equations if e.place != "root"] + self.order("root"):
            shape = si.infer(eq.expr, lookup)
            if eq.place == "root" and var.get(eq.name) is None:
                var[eq.name] = shape
            else:
                si.unify_shapes(eq.expr, var[eq.name], shape, f"{eq.name}[{eq.place}] has one shape everywhere")
        self.var_shapes = {}
        for n, s in var.items():
            dims = tuple(si.dims.get(d) for d in s.dims)
            if any(d is None for d in dims):
                raise SpecError(f"cannot infer the size of {n}; declare it, e.g. `hidden {n}: H`",
                                spec.lines.get(n), variable=n, source=spec.source)
            self.var_shapes[n] = dims
        self.param_shapes = {}
        for p, s in si.params.items():
            dims = tuple(si.dims.get(d) for d in s.dims)
            if any(d is None or d == BATCH for d in dims):
                raise SpecError(f"cannot infer the shape of parameter {p!r}; declare it, e.g. `param {p}: H x H`",
                                variable=p, source=spec.source)
            self.param_shapes[p] = dims
        self.classes = {n: self._n(s) for n, (kind, s) in spec.targets.items() if kind == "class"}

    def _root_names(self) -> set:
        return {eq.name for eq in self.spec.equations if eq.place == "root"}

    @property
    def parameter_count(self) -> int:
        """How many numbers the network learns: the same for a tree of any size."""
        return sum(int(np.prod(s)) for s in self.param_shapes.values())

    def order(self, place: str) -> list:
        """The equations of one place in an order that computes what each reads first."""
        eqs = [eq for eq in self.spec.equations if eq.place == place]
        names = {eq.name for eq in eqs}
        g = nx.DiGraph()
        g.add_nodes_from(eq.name for eq in eqs)
        for eq in eqs:
            for n in walk(eq.expr):
                if isinstance(n, (Ref, Name)) and n.name in names and n.name != eq.name and \
                        (isinstance(n, Name) or n.anchor == place):
                    g.add_edge(n.name, eq.name)
        by = {eq.name: eq for eq in eqs}
        return [by[n] for n in nx.lexicographical_topological_sort(g, key=[eq.name for eq in eqs].index)]

    # -- unrolling -------------------------------------------------------------------------------
    def unroll(self, tree) -> nx.DiGraph:
        """The graph unrolled over ``tree``: a DAG with a node per variable per tree node.

        Node keys: ``x[3]`` (the input at leaf 3), ``h[3]`` (h at leaf 3), ``h[1..2]`` (h at the
        internal node over leaves 1..2), bare names at the root (``o``, ``L``, ``y``) and the
        parameters. Each edge has ``param`` (the weight it passes through, or None) and
        ``side`` (``"left"``/``"right"`` for a child read by its parent).
        """
        t = self.tree_of(tree)
        g = nx.DiGraph(name=self.name, tree=t)
        spec = self.spec

        def add(key, var, at, kind):
            g.add_node(key, var=var, at=at, kind=kind)

        def place_key(name, at_key):
            return f"{name}[{at_key}]"

        for place, keys in (("leaf", t.leaves), ("node", t.internal)):
            for k in keys:
                for eq in self.order(place):
                    dst = place_key(eq.name, k)
                    add(dst, eq.name, k, "loss" if eq.name in self.losses else "computed")
                    for ref, param in _uses(eq.expr, set(self.param_shapes)):
                        if isinstance(ref, Name):
                            continue
                        src_at = k if ref.anchor in ("leaf", "node") else t.children[k][0 if ref.anchor == "left"
                                                                                         else 1]
                        src = place_key(ref.name, src_at)
                        if ref.name in spec.inputs and src not in g:
                            add(src, ref.name, src_at, "input")
                        g.add_edge(src, dst, param=param, side=ref.anchor if ref.anchor in ("left", "right") else None)
        for eq in self.order("root"):
            add(eq.name, eq.name, "root", "loss" if eq.name in self.losses else "computed")
            for ref, param in _uses(eq.expr, set(self.param_shapes)):
                if isinstance(ref, Ref):
                    src = place_key(ref.name, t.root)
                elif ref.name in spec.targets:
                    src = ref.name
                    if src not in g:
                        add(src, ref.name, "root", "target")
                elif ref.name in self._root_names():
                    src = ref.name
                else:
                    continue
                g.add_edge(src, eq.name, param=param, side=None, target=ref.name in spec.targets)
        return g

    # -- data and running -------------------------------------------------------------------------
    def init_params(self, seed: int = 0, dtype=np.float64) -> dict:
        """Random parameters: matrices ~ N(0, 1/cols), columns ~ N(0, 0.1²)."""
        rng = np.random.default_rng(seed)
        return {p: (rng.standard_normal((r, c)) * (0.1 if c == 1 else 1.0 / math.sqrt(c))).astype(dtype)
                for p, (r, c) in self.param_shapes.items()}

    def random_inputs(self, tree, batch: int = 1, seed: int = 0, dtype=np.float64) -> dict:
        """Random data for ``batch`` trees of this shape: inputs ``(leaves, rows, batch)``, targets ``(batch,)``."""
        t = self.tree_of(tree)
        rng = np.random.default_rng(seed)
        out = {}
        for n in self.spec.inputs:
            out[n] = rng.standard_normal((t.n_leaves, self.var_shapes[n][0], batch)).astype(dtype)
        for n, (kind, _) in self.spec.targets.items():
            out[n] = rng.integers(0, self.classes[n], size=batch) if kind == "class" else \
                rng.standard_normal((self.var_shapes[n][0], batch)).astype(dtype)
        return out

    def tree_of(self, tree) -> Tree:
        """``tree`` (nested pairs, a networkx tree or a :class:`Tree`) as a :class:`Tree`, checked against
        the spec: what the root equations read must be defined where the root is (a leaf or a node)."""
        t = Tree.of(tree)
        place = "node" if t.internal else "leaf"
        defined = {(eq.name, eq.place) for eq in self.spec.equations}
        for eq in self.spec.equations:
            if eq.place != "root":
                continue
            for ref in references(eq.expr):
                if ref.anchor == "root" and (ref.name, place) not in defined:
                    raise DataError(f"`{ref.text}` in the equation of {eq.name}: the root of this tree is "
                                    f"{'an internal node' if t.internal else 'a leaf'}, and {ref.name} is not "
                                    f"defined there; add `{ref.name}[{place}] = ...` to the spec, or give a tree "
                                    f"{'of one leaf' if t.internal else 'with internal nodes'}")
        return t

    def __repr__(self) -> str:
        return f"TreeRecurrence({self.name!r}: {len(self.spec.equations)} equations, {self.parameter_count} parameters)"


def _uses(expr, params: set):
    """(reference or bare name, the parameter it is multiplied by or None) for every variable use."""
    out = []

    def visit(e, under):
        if isinstance(e, Bin) and e.op == "@" and isinstance(e.left, Name) and e.left.name in params:
            visit(e.right, e.left.name)
            return
        if isinstance(e, (Ref,)):
            out.append((e, under))
            return
        if isinstance(e, Name):
            if e.name not in params:
                out.append((e, under))
            return
        if isinstance(e, Call) and e.fn in LOSSES:
            visit(e.args[0], under)
            visit(e.args[1], None)
            return
        for c in _kids(e):
            visit(c, under if not isinstance(e, Call) or e.fn not in NON_DIFFERENTIABLE else None)

    visit(expr, None)
    return out


def _kids(e) -> tuple:
    if isinstance(e, Bin):
        return (e.left, e.right)
    if isinstance(e, (Unary, Transpose)):
        return (e.operand,)
    if isinstance(e, Call):
        return e.args
    return ()


def check_data(rec: TreeRecurrence, t: Tree, data: dict) -> dict:
    """The data as float/int arrays of the right shapes, or a :class:`~graphrnn.errors.DataError` saying which."""
    if not isinstance(data, dict):
        raise DataError(f"give the data as a dict of arrays ({', '.join(list(rec.spec.inputs) + list(rec.spec.targets))})")
    out, batch = {}, None
    for n in rec.spec.inputs:
        if n not in data:
            raise DataError(f"no data for the input {n}: give an array of shape (leaves, {rec.var_shapes[n][0]}, batch)"
                            f" = ({t.n_leaves}, {rec.var_shapes[n][0]}, B)")
        a = np.asarray(data[n])
        if a.ndim == 2:
            a = a[:, :, None]
        if a.ndim != 3 or a.shape[:2] != (t.n_leaves, rec.var_shapes[n][0]):
            raise DataError(f"the input {n} must have shape (leaves, {rec.var_shapes[n][0]}, batch) = "
                            f"({t.n_leaves}, {rec.var_shapes[n][0]}, B) for a tree of {t.n_leaves} leaves; "
                            f"got {a.shape}")
        if not np.issubdtype(a.dtype, np.floating) or not np.all(np.isfinite(a)):
            raise DataError(f"the input {n} must hold finite floats")
        batch = a.shape[2] if batch is None else batch
        if a.shape[2] != batch:
            raise DataError(f"the input {n} has a batch of {a.shape[2]}, another input {batch}")
        out[n] = a
    for n, (kind, _) in rec.spec.targets.items():
        if n not in data:
            if any(n in (x.name for x in walk(eq.expr) if isinstance(x, Name)) for eq in rec.spec.equations):
                raise DataError(f"no data for the target {n}: give " +
                                ("class labels of shape (batch,)" if kind == "class" else "an array (rows, batch)"))
            continue
        a = np.asarray(data[n])
        if kind == "class":
            if a.ndim == 0:
                a = a.reshape(1)
            if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
                raise DataError(f"the target {n} is one class label per tree: an integer array of shape (batch,); "
                                f"got {a.dtype} {a.shape}")
            if a.size and (a.min() < 0 or a.max() >= rec.classes[n]):
                raise DataError(f"the target {n} has labels outside 0..{rec.classes[n] - 1}")
        elif a.ndim != 2 or a.shape[0] != rec.var_shapes[n][0]:
            raise DataError(f"the target {n} must have shape ({rec.var_shapes[n][0]}, batch); got {a.shape}")
        b = a.shape[-1] if kind != "class" else a.shape[0]
        if batch is not None and b != batch:
            raise DataError(f"the target {n} has a batch of {b}, the inputs {batch}")
        batch = b if batch is None else batch
        out[n] = a
    return out


__all__ = ["Tree", "TreeSpec", "TreeRecurrence", "parse_tree_spec", "check_data", "PLACES"]
