"""Read a recurrence written in the book's notation: declarations, then equations.

A spec is plain text, one statement a line, ``#`` starting a comment::

    size   H = 5, I = 3, K = 4        # named sizes (overridable when loading)
    input  x: I                       # x[t]: a column of I numbers at every step
    target y: class K                 # y[t]: a class label in 0..K-1
    state  h: H = zero                # h[t] has H rows; h[0] (out of range) is zero
    hidden z: H                       # (same as state) the size of a per-step variable
    init   y = zero                   # value of a variable before step 1 / after the last
    param  W: H x H                   # a parameter's shape, where the equations leave it open
    context c: I                      # one vector for the whole sequence (fig. 10.9)
    feedback y[t] = argmax(o[t])      # free-running mode feeds this instead of y[t]
    loss   L                          # the total loss is the sum over t of L[t]

    h[t] = tanh(b + W @ h[t-1] + U @ x[t])
    o[t] = c + V @ h[t]
    L[t] = cross_entropy(o[t], y[t])

Equations are parsed with :mod:`ast` and checked against a whitelist of node
types and function names; nothing from a spec is ever evaluated, imported or
looked up as a Python attribute.  Every problem raises
:class:`~graphrnn.errors.SpecError` naming the line, the column where it helps,
the variable and the fix.
"""

from __future__ import annotations

import ast
import difflib
import keyword
import re
import unicodedata
import warnings
from dataclasses import dataclass, field

from ..errors import SpecError

#: functions the notation knows, with their number of arguments
FUNCTIONS: dict[str, int] = {
    "tanh": 1, "sigmoid": 1, "relu": 1, "exp": 1, "log": 1, "softmax": 1, "log_softmax": 1,
    "cross_entropy": 2, "mse": 2, "bce_with_logits": 2, "one_hot": 1, "argmax": 1, "sample": 1,
}
FUNCTION_ALIASES = {"onehot": "one_hot", "σ": "sigmoid"}
#: functions whose second argument is a target (a reference there is not an input use)
LOSSES = ("cross_entropy", "mse", "bce_with_logits")
#: functions whose value carries no gradient
NON_DIFFERENTIABLE = ("argmax", "sample")

STEP_SYMBOLS = ("t",)
LAST_STEP_SYMBOLS = ("tau", "T", "τ")
MAX_LINE = 2000
MAX_NODES = 500
MAX_DEPTH = 60
MAX_OFFSET = 1000
#: the largest spec read: characters of text, and statements (declarations and equations)
MAX_TEXT = 1_000_000
MAX_STATEMENTS = 10_000
_NAME = r"[^\W\d]\w*"
_NAME_RE = re.compile(rf"^{_NAME}$")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


# --------------------------------------------------------------------------- the expression tree


@dataclass(frozen=True)
class Node:
    line: int
    col: int
    text: str


@dataclass(frozen=True)
class Num(Node):
    value: float


@dataclass(frozen=True)
class Name(Node):
    """A bare name: a parameter, or a context input (fig. 10.9's x)."""

    name: str


@dataclass(frozen=True)
class Ref(Node):
    """``name[t+offset]`` (anchor ``"t"``) or ``name[tau+offset]`` (anchor ``"tau"``)."""

    name: str
    offset: int
    anchor: str

    @property
    def delay(self) -> int:
        """The book's delay of the edge this reference makes: 1 for ``h[t-1]``, -1 for ``g[t+1]``."""
        return -self.offset


@dataclass(frozen=True)
class Unary(Node):
    op: str  # "-" or "+"
    operand: "Expr"


@dataclass(frozen=True)
class Bin(Node):
    op: str  # + - * / @ **
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True)
class Call(Node):
    fn: str
    args: tuple


@dataclass(frozen=True)
class Transpose(Node):
    operand: "Expr"


Expr = Num | Name | Ref | Unary | Bin | Call | Transpose


def children(e) -> tuple:
    if isinstance(e, Unary | Transpose):
        return (e.operand,)
    if isinstance(e, Bin):
        return (e.left, e.right)
    if isinstance(e, Call):
        return e.args
    return ()


def walk(e):
    """Every node of an expression, parents before children (iteratively)."""
    stack = [e]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


def references(e, skip_targets: bool = False):
    """The :class:`Ref` nodes in ``e``; with ``skip_targets``, not those in a loss's target slot."""
    stack = [e]
    while stack:
        node = stack.pop()
        if isinstance(node, Ref):
            yield node
        elif isinstance(node, Call) and skip_targets and node.fn in LOSSES:
            stack.append(node.args[0])
        else:
            stack.extend(reversed(children(node)))


# --------------------------------------------------------------------------- declarations


@dataclass
class Equation:
    name: str
    anchor: str  # "t" (every step) or "tau" (the last step only)
    expr: Expr
    line: int
    text: str


@dataclass
class Spec:
    """What a spec file says, before any checking across statements."""

    text: str
    source: str | None = None
    sizes: dict[str, int] = field(default_factory=dict)
    inputs: dict[str, object] = field(default_factory=dict)  # name -> size (int or size name)
    contexts: dict[str, object] = field(default_factory=dict)
    targets: dict[str, tuple[str, object]] = field(default_factory=dict)  # name -> ("class"|"vector", size)
    states: dict[str, object] = field(default_factory=dict)  # name -> size
    inits: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> ("zero"|"learned", line)
    params: dict[str, tuple] = field(default_factory=dict)  # name -> declared shape
    losses: list[str] = field(default_factory=list)
    feedbacks: dict[str, Equation] = field(default_factory=dict)
    equations: list[Equation] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)  # where each name was declared/defined
    state_lines: dict[str, int] = field(default_factory=dict)  # where each `state`/`hidden` was declared
    loss_lines: dict[str, int] = field(default_factory=dict)  # where each `loss` was declared
    title: str = ""


KEYWORDS = ("size", "input", "context", "target", "state", "hidden", "init", "param", "loss", "feedback", "title")


def parse_spec(text: str, source: str | None = None) -> Spec:
    """Parse a spec's text into a :class:`Spec` (no cross-checks yet; see :class:`Recurrence`)."""
    if not isinstance(text, str):
        raise SpecError(f"a spec is text; got {type(text).__name__}", source=source)
    _check_spec_size(text, source)
    spec = Spec(text=text, source=source)
    text = text[1:] if text.startswith("\ufeff") else text  # a byte-order mark, as some editors write
    # lines end at \n, \r\n or \r only (as in editors and Python): str.splitlines would also split at
    # form feeds, U+2028 and others, and the line numbers in errors would not match what the user sees
    for number, raw in enumerate(_LINE_BREAK.split(text), start=1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            if not spec.title and raw.strip().startswith("#") and number == 1:
                spec.title = raw.strip().lstrip("#").strip()
            continue
        if len(line) > MAX_LINE:
            raise SpecError(f"the line is {len(line)} characters long; at most {MAX_LINE} are allowed",
                            number, source=source)
        if "\x00" in line:
            raise SpecError("the line holds a NUL character", number, source=source)
        try:
            line.encode("utf-8")
        except UnicodeError:
            bad = next(c for c in line if 0xD800 <= ord(c) <= 0xDFFF)
            raise SpecError(f"the line holds U+{ord(bad):04X}, a lone surrogate that is not a character; "
                            f"the spec must be valid Unicode text", number, source=source) from None
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        head = stripped.split(None, 1)[0]
        if head in KEYWORDS and not stripped[len(head):len(head) + 1] in ("[", "="):
            after = stripped[len(head):]
            rest = after.strip()
            _declaration(spec, head, rest, number, source, indent + len(head) + len(after) - len(after.lstrip()))
        else:
            equation = parse_equation(stripped, number, source, indent)
            _claim(spec, equation.name, number, source, "defined by an equation")
            spec.equations.append(equation)
    if not spec.equations:
        raise SpecError("the spec has no equations; write one such as `h[t] = tanh(W @ h[t-1] + U @ x[t])`",
                        source=source)
    return spec


def _check_spec_size(text: str, source) -> None:
    """Refuse a spec too large to be a recurrence one reads (checked before anything is parsed, so the
    error comes at once: more than MAX_TEXT characters, or more than MAX_STATEMENTS statements)."""
    if len(text) > MAX_TEXT:
        raise SpecError(f"the spec is {len(text):,} characters long; at most {MAX_TEXT:,} are read. A recurrence "
                        f"is a few equations repeated over time: write the repeated part once (the unroll "
                        f"repeats it), or split the spec", source=source)
    count = 0
    for number, raw in enumerate(_LINE_BREAK.split(text), start=1):
        stripped = raw.lstrip()
        if stripped and not stripped.startswith("#"):
            count += 1
            if count > MAX_STATEMENTS:
                raise SpecError(f"the spec has more than {MAX_STATEMENTS:,} statements (line {number} is number "
                                f"{count:,}); a recurrence is a few equations repeated over time: write the "
                                f"repeated part once (the unroll repeats it), or split the spec", source=source)


def _claim(spec: Spec, name: str, line: int, source, what: str) -> None:
    if name in spec.lines:
        raise SpecError(
            f"{name!r} is {what} here but was already declared or defined on line {spec.lines[name]}; "
            f"each variable is defined once (rename one of them)", line, variable=name, source=source)
    spec.lines[name] = line


def _normal(name: str) -> str:
    """A name as Python reads it in an equation (NFKC: the italic 𝑥 is x, ℎ is h), so that a
    declaration and the equations that use it agree."""
    return unicodedata.normalize("NFKC", name)


def _check_name(name: str, line: int, source, what: str) -> str:
    name = _normal(name)
    if not _NAME_RE.match(name) or not name.isidentifier():
        raise SpecError(f"{name!r} is not a valid {what} name (letters, digits and _, not starting "
                        f"with a digit)", line, variable=name, source=source)
    if name in FUNCTIONS or name in FUNCTION_ALIASES or name in STEP_SYMBOLS or name in LAST_STEP_SYMBOLS:
        raise SpecError(f"{name!r} is a reserved word of the notation; choose another {what} name",
                        line, variable=name, source=source)
    if keyword.iskeyword(name):
        raise SpecError(f"{name!r} is a reserved word of Python, in which equations are read; choose another "
                        f"{what} name", line, variable=name, source=source)
    return name


def _size(token: str, line: int, source, name: str | None = None) -> object:
    token = token.strip()
    of = f" of {name}" if name else ""
    if re.fullmatch(r"\d+", token, flags=re.ASCII):
        value = int(token) if len(token) <= 12 else 10 ** 12
        if not 1 <= value <= 1_000_000:
            raise SpecError(f"the size{of} is {token if len(token) <= 12 else token[:12] + '...'}, out of range; "
                            f"a size is a whole number from 1 to 1,000,000", line, variable=name, source=source)
        return value
    if _NAME_RE.match(_normal(token)) and _normal(token).isidentifier():
        return _normal(token)
    raise SpecError(f"{token!r} is not a size{of}: write a whole number or a name from a `size` line",
                    line, variable=name, source=source)


def _split_decl(rest: str, line: int, source, keyword: str, example: str):
    if ":" not in rest:
        raise SpecError(f"`{keyword}` needs a name and a size, for example `{keyword} {example}`",
                        line, source=source)
    name, body = (s.strip() for s in rest.split(":", 1))
    return _check_name(name, line, source, keyword), body


def _declaration(spec: Spec, keyword: str, rest: str, line: int, source, col0: int = 0) -> None:
    """Read one declaration; ``col0`` is where ``rest`` starts in its line (for columns)."""
    if keyword == "title":
        spec.title = rest
    elif keyword == "size":
        for item in filter(None, (s.strip() for s in rest.split(","))):
            m = re.fullmatch(rf"({_NAME})\s*=\s*([0-9]+)", item)
            if not m:
                raise SpecError(f"cannot read size {item!r}: write `size H = 5, I = 3`", line, source=source)
            name = _check_name(m.group(1), line, source, "size")
            if name in spec.sizes:
                raise SpecError(f"size {name!r} is given twice", line, variable=name, source=source)
            spec.sizes[name] = _size(m.group(2), line, source, name)
    elif keyword in ("input", "context"):
        name, body = _split_decl(rest, line, source, keyword, "x: 3")
        _claim(spec, name, line, source, f"declared as an {keyword}")
        (spec.inputs if keyword == "input" else spec.contexts)[name] = _size(body, line, source, name)
    elif keyword == "target":
        name, body = _split_decl(rest, line, source, keyword, "y: class 4")
        _claim(spec, name, line, source, "declared as a target")
        parts = body.split()
        if parts and parts[0] == "class":
            if len(parts) != 2:
                raise SpecError("write `target y: class K` with the number of classes K", line, variable=name,
                                source=source)
            spec.targets[name] = ("class", _size(parts[1], line, source, name))
        else:
            spec.targets[name] = ("vector", _size(body, line, source, name))
    elif keyword in ("state", "hidden"):  # `hidden` reads better for a variable with no delay
        name, body = _split_decl(rest, line, source, keyword, "h: 5 = zero")
        size, eq, init = body.partition("=")
        if name in spec.states:
            raise SpecError(f"state {name!r} is declared twice", line, variable=name, source=source)
        spec.states[name] = _size(size, line, source, name)
        spec.state_lines[name] = line
        if eq:
            _init(spec, name, init, line, source)
    elif keyword == "init":
        name, eq, init = rest.partition("=")
        if not eq:
            raise SpecError("write `init h = zero` or `init h = learned`", line, source=source)
        _init(spec, _check_name(name.strip(), line, source, "variable"), init, line, source)
    elif keyword == "param":
        name, body = _split_decl(rest, line, source, keyword, "W: 5 x 5")
        _claim(spec, name, line, source, "declared as a parameter")
        dims = [d for d in re.split(r"\s*[x×,]\s*", body.strip()) if d]
        if not 1 <= len(dims) <= 2:
            raise SpecError(f"the shape of parameter {name} is `rows x cols` or `rows`; got {body!r}", line,
                            variable=name, source=source)
        shape = tuple(_size(d, line, source, name) for d in dims)
        spec.params[name] = shape if len(shape) == 2 else (shape[0], 1)
    elif keyword == "loss":
        names = [s.strip() for s in rest.split(",") if s.strip()]
        if not names:
            raise SpecError("`loss` needs the per-step variable(s) to sum, e.g. `loss L`", line, source=source)
        for name in names:
            name = _check_name(name, line, source, "loss")
            if name in spec.loss_lines:
                raise SpecError(f"loss {name!r} is declared twice (lines {spec.loss_lines[name]} and {line}); "
                                f"declare it once", line, variable=name, source=source)
            spec.losses.append(name)
            spec.loss_lines[name] = line
    elif keyword == "feedback":
        eq = parse_equation(rest, line, source, col0)
        if eq.name in spec.feedbacks:
            raise SpecError(f"feedback for {eq.name!r} is given twice", line, variable=eq.name, source=source)
        spec.feedbacks[eq.name] = eq


def _init(spec: Spec, name: str, value: str, line: int, source) -> None:
    value = value.strip()
    value = "zero" if value in ("0", "zeros") else value
    if value not in ("zero", "learned"):
        raise SpecError(f"the value of {name} outside the steps given must be `zero` or `learned`, "
                        f"not {value!r}", line, variable=name, source=source)
    if name in spec.inits:
        raise SpecError(f"the initial value of {name!r} is given twice", line, variable=name, source=source)
    spec.inits[name] = (value, line)


# --------------------------------------------------------------------------- equations


def _column(text: str, node: ast.AST, col0: int) -> int:
    """The 1-based character column of ``node`` in its line (``ast`` counts UTF-8 bytes)."""
    offset = getattr(node, "col_offset", 0) or 0
    return col0 + len(text.encode("utf-8")[:offset].decode("utf-8", errors="ignore")) + 1


def parse_equation(text: str, line: int, source=None, col0: int = 0) -> Equation:
    """Parse ``name[t] = expression`` (or ``name[tau] = ...``) into an :class:`Equation`.

    ``col0`` is the number of characters before ``text`` in its line, so that
    columns in errors count from the start of the line.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # e.g. "invalid decimal literal": report it as a SpecError
            tree = ast.parse(text, mode="exec")
    except SyntaxError as exc:
        col = col0 + exc.offset if exc.offset else None
        hint = " (the notation writes powers as ** and matrix products as @)" if "^" in text else ""
        lhs = re.match(rf"\s*({_NAME})\s*\[", text)
        which = f"the equation of {lhs.group(1)}" if lhs else "this equation"
        raise SpecError(f"cannot read {which}: {exc.msg}{hint}", line, col, variable=lhs.group(1) if lhs else None,
                        source=source) from None
    except (RecursionError, MemoryError, ValueError, OverflowError):
        raise SpecError("this equation is nested too deeply to read; split it into several equations",
                        line, source=source) from None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assign) or len(tree.body[0].targets) != 1:
        raise SpecError(
            "expected an equation such as `h[t] = tanh(W @ h[t-1] + U @ x[t])` or a declaration "
            f"({', '.join(KEYWORDS)})", line, source=source)
    assign = tree.body[0]
    target = assign.targets[0]
    if not (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)):
        raise SpecError(
            "the left side must be a per-step variable such as `h[t]` (bare names are parameters, "
            "which no equation defines)", line, _column(text, target, col0), source=source)
    name = target.value.id
    _check_name(name, line, source, "variable")
    anchor, offset = _step_index(target.slice, line, source, name, text, col0)
    if offset != 0:
        raise SpecError(f"define {name} at `{name}[t]` (or `{name}[tau]` for the last step only), "
                        f"not with an offset", line, _column(text, target, col0), variable=name, source=source)
    try:
        _check_size(assign.value, line, source)
        expr = _convert(assign.value, text, line, source, col0)
    except SpecError as exc:
        if exc.variable is not None:
            raise
        raise SpecError(f"in the equation of {name}: {exc.message}", exc.line, exc.col, variable=name,
                        source=source) from None
    return Equation(name, anchor, expr, line, text)


def _check_size(tree: ast.AST, line: int, source) -> None:
    count, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH or count > MAX_NODES:
            raise SpecError("this equation is too large or nested too deeply; split it into several "
                            "equations with intermediate variables", line, source=source)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.MatMult: "@", ast.Pow: "**"}
_UNARY = {ast.USub: "-", ast.UAdd: "+"}
_OTHER_BINOPS = {ast.BitXor: "^", ast.Mod: "%", ast.FloorDiv: "//", ast.LShift: "<<", ast.RShift: ">>",
                 ast.BitOr: "|", ast.BitAnd: "&"}


def _segment(text: str, node: ast.AST) -> str:
    return ast.get_source_segment(text, node) or ""


def _convert(node: ast.AST, text: str, line: int, source, col0: int = 0) -> Expr:
    """Turn a whitelisted Python AST into the notation's expression tree (recursion is bounded
    by MAX_DEPTH, checked before)."""
    col = _column(text, node, col0)
    seg = _segment(text, node)
    here = (line, col, seg)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        op = _BINOPS[type(node.op)]
        left = _convert(node.left, text, line, source, col0)
        right = _convert(node.right, text, line, source, col0)
        if op == "**" and not isinstance(right, Num):
            raise SpecError("a power's exponent must be a number, as in `h[t] ** 2`", line, col, source=source)
        return Bin(*here, op, left, right)
    if isinstance(node, ast.BinOp):
        symbol = _OTHER_BINOPS.get(type(node.op), type(node.op).__name__)
        hint = ("; write a power as ** (as in `h[t] ** 2`)" if symbol == "^" else
                "; the notation's operators are + - * / @ **")
        raise SpecError(f"the operator {symbol} in `{seg}` is not part of the notation{hint}", line, col,
                        source=source)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return Unary(*here, _UNARY[type(node.op)], _convert(node.operand, text, line, source, col0))
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise SpecError(f"only numbers may appear as constants, not {node.value!r}", line, col,
                            source=source)
        try:
            value = float(node.value)
        except OverflowError:
            value = float("inf")
        if value != value or value in (float("inf"), float("-inf")):
            raise SpecError("this constant is too large for a float64 (at most about 1.8e308); constants must be "
                            "finite numbers", line, col, source=source)
        return Num(*here, value)
    if isinstance(node, ast.Name):
        name = node.id
        if name in FUNCTIONS or name in FUNCTION_ALIASES:
            raise SpecError(f"{name} is a function; call it, as in `{name}(...)`", line, col, source=source)
        if name in STEP_SYMBOLS or name in LAST_STEP_SYMBOLS:
            raise SpecError(f"the step symbol {name} may only appear inside [...]", line, col, source=source)
        return Name(*here, name)
    if isinstance(node, ast.Subscript):
        if not isinstance(node.value, ast.Name):
            raise SpecError("only a variable can be indexed by a step, as in `h[t-1]`", line, col, source=source)
        name = node.value.id
        _check_name(name, line, source, "variable")
        anchor, offset = _step_index(node.slice, line, source, name, text, col0)
        return Ref(*here, name, offset, anchor)
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name):
            raise SpecError("only the notation's functions can be called: " + ", ".join(FUNCTIONS),
                            line, col, source=source)
        fn = FUNCTION_ALIASES.get(node.func.id, node.func.id)
        if fn not in FUNCTIONS:
            close = difflib.get_close_matches(node.func.id, list(FUNCTIONS), n=1)
            guess = f"did you mean {close[0]}? " if close else ""
            raise SpecError(f"unknown function {node.func.id!r}; {guess}the notation knows " + ", ".join(FUNCTIONS),
                            line, col, variable=node.func.id, source=source)
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise SpecError(f"{fn} takes plain arguments (no keywords or *)", line, col, source=source)
        if len(node.args) != FUNCTIONS[fn]:
            raise SpecError(f"{fn} takes {FUNCTIONS[fn]} argument(s), got {len(node.args)}", line, col,
                            source=source)
        return Call(*here, fn, tuple(_convert(a, text, line, source, col0) for a in node.args))
    if isinstance(node, ast.Attribute) and node.attr == "T":
        return Transpose(*here, _convert(node.value, text, line, source, col0))
    what = type(node).__name__
    raise SpecError(f"`{seg or what}` is not part of the notation (allowed: numbers, names, x[t±k], "
                    f"+ - * / @ **, .T and the functions {', '.join(FUNCTIONS)})", line, col, source=source)


def _step_index(node: ast.AST, line: int, source, name: str, text: str = "", col0: int = 0) -> tuple[str, int]:
    """Read ``t``, ``t-1``, ``t+2``, ``tau`` or ``tau-1`` into (anchor, offset)."""
    col = _column(text, node, col0)

    def symbol(n):
        if isinstance(n, ast.Name):
            if n.id in STEP_SYMBOLS:
                return "t"
            if n.id in LAST_STEP_SYMBOLS:
                return "tau"
        return None

    anchor, offset = symbol(node), 0
    if anchor is None and isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        anchor = symbol(node.left)
        k = node.right
        if anchor is not None and isinstance(k, ast.Constant) and type(k.value) is int:
            offset = k.value if isinstance(node.op, ast.Add) else -k.value
        else:
            anchor = None
    if anchor is None:
        raise SpecError(f"the step of {name} must be t, t-k or t+k (k a whole number), or tau for the last "
                        f"step; write for example `{name}[t-1]`", line, col, variable=name, source=source)
    if abs(offset) > MAX_OFFSET:
        shown = str(abs(offset)) if abs(offset) < 10 ** 12 else "more than 10**12"
        raise SpecError(f"a delay of {shown} steps is beyond the limit of {MAX_OFFSET}", line, col,
                        variable=name, source=source)
    return anchor, offset


def enclosing_params(expr, params: set[str]):
    """Yield (ref_or_name, param) for every variable use, with the innermost parameter
    whose matrix product it sits under (``W`` for ``h[t-1]`` in ``W @ h[t-1]``)."""
    stack = [(expr, None, False)]
    while stack:
        node, param, target = stack.pop()
        if isinstance(node, Ref):
            yield node, param, target
        elif isinstance(node, Name) and node.name not in params:
            yield node, param, target
        elif isinstance(node, Bin) and node.op == "@":
            left = node.left.operand if isinstance(node.left, Transpose) else node.left
            inner = left.name if isinstance(left, Name) and left.name in params else param
            stack.append((node.right, inner, target))
            stack.append((node.left, param, target))
        elif isinstance(node, Call) and node.fn in LOSSES:
            stack.append((node.args[1], param, True))
            stack.append((node.args[0], param, target))
        else:
            stack.extend((c, param, target) for c in reversed(children(node)))


def read_spec_file(path) -> str:
    """The text of the spec file at ``path`` (a :class:`SpecError` naming it when it cannot be read)."""
    from pathlib import Path

    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec file {str(path)!r}: {exc}") from None
