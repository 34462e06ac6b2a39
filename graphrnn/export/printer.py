"""What the two printers share: Python names for the spec's names, and expressions printed as Python.

An expression of the notation prints as the same Python expression, with the same operators in the same
order (so the exported code adds and multiplies in graphrnn's order); only the reads ``h[t-1]`` and the
functions differ between PyTorch and JAX, and each target says how it prints them.

>>> from graphrnn.recurrence.spec import parse_equation
>>> eq = parse_equation("h[t] = tanh(b + W @ h[t-1]) * -(x[t] - 1) ** 2", 1)
>>> expression(eq.expr, lambda ref: f"{ref.name}{ref.offset}", str, lambda fn, args: f"{fn}({', '.join(args)})")
'tanh(b + W @ h-1) * -(x0 - 1.0) ** 2.0'
"""

from __future__ import annotations

import builtins
import keyword

from ..recurrence.spec import Bin, Call, Name, Num, Ref, Transpose, Unary

#: Python's binding strength of the notation's operators (higher binds tighter)
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "@": 2, "unary": 3, "**": 4, "atom": 5}


def number(value: float) -> str:
    """A constant as Python writes it: ``2.0``, ``0.5``, ``1e-05``."""
    return repr(float(value))


def expression(e, read, name, call) -> str:
    """Print the notation's expression ``e`` as Python, with ``read(ref)`` for ``x[t+k]``, ``name(n)`` for a
    parameter or a context and ``call(fn, argument_texts)`` for a function."""
    return _print(e, read, name, call)[0]


def _print(e, read, name, call) -> tuple[str, int]:
    if isinstance(e, Num):
        return number(e.value), _PRECEDENCE["atom"]
    if isinstance(e, Ref):
        return read(e), _PRECEDENCE["atom"]
    if isinstance(e, Name):
        return name(e.name), _PRECEDENCE["atom"]
    if isinstance(e, Call):
        return call(e.fn, [_print(a, read, name, call)[0] for a in e.args]), _PRECEDENCE["atom"]
    if isinstance(e, Transpose):
        inner, p = _print(e.operand, read, name, call)
        return (inner if p == _PRECEDENCE["atom"] else f"({inner})") + ".T", _PRECEDENCE["atom"]
    if isinstance(e, Unary):
        inner, p = _print(e.operand, read, name, call)
        if e.op == "+":
            return inner, p
        mine = _PRECEDENCE["unary"]
        return "-" + (inner if p >= mine else f"({inner})"), mine
    if isinstance(e, Bin):
        mine = _PRECEDENCE[e.op]
        left, lp = _print(e.left, read, name, call)
        right, rp = _print(e.right, read, name, call)
        if e.op == "**":  # right-associative, and binds tighter than a unary minus on its left
            left = left if lp > mine else f"({left})"
            right = right if rp >= mine else f"({right})"
            return f"{left} ** {right}", mine
        left = left if lp >= mine else f"({left})"
        right = right if rp > mine else f"({right})"  # a - (b - c), a / (b * c): keep the spec's grouping
        return f"{left} {e.op} {right}", mine
    raise TypeError(f"not an expression of the notation: {e!r}")


class Names:
    """Python identifiers for the exported file: the spec's names stay as they are unless they would hide
    something the file needs (``torch``, ``sum``, a helper), and each local made up here is unique."""

    def __init__(self, spec_names, reserved):
        self.reserved = set(reserved) | set(dir(builtins)) | set(keyword.kwlist)
        self.taken = set(self.reserved)
        self.of: dict[str, str] = {}
        for n in sorted(spec_names):
            self.of[n] = self.fresh(n)

    def fresh(self, preferred: str) -> str:
        """``preferred``, or ``preferred_``, ``preferred__``...: the first that is still free."""
        candidate = preferred
        while candidate in self.taken:
            candidate += "_"
        self.taken.add(candidate)
        return candidate

    def __getitem__(self, spec_name: str) -> str:
        return self.of[spec_name]


def offset_text(base: str, k: int) -> str:
    """``t``, ``t - 1``, ``T + 2``: a step written as Python."""
    return base if k == 0 else f"{base} {'+' if k > 0 else '-'} {abs(k)}"


def header(p) -> tuple[str, str, list[str]]:
    """What an exported file's docstring says of ``p`` (a lowered Program) in either target: its title,
    its mode, and one line per data array giving graphrnn's layout."""
    layout = []
    for d in p.data:
        if d.kind == "context":
            layout.append(f"{d.name}: ({d.rows}, B) context, one column per sequence")
        elif d.classes is not None:
            layout.append(f"{d.name}: (T, B) integer class labels in 0..{d.classes - 1}")
        else:
            layout.append(f"{d.name}: (T, {d.rows}, B) {d.kind}")
    title = f"{p.name}: {p.title}" if p.title else p.name
    mode = "teacher forcing (the spec as written)" if p.mode == "teacher" else \
        "free running: the `feedback` lines feed the model's own output back, without gradient"
    return title, mode, layout


def docstring_block(text: str, indent: str = "    ") -> str:
    """The spec's text indented for a docstring (backslashes and triple quotes made harmless)."""
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return "\n".join((indent + line).rstrip() for line in text.strip("\n").splitlines())


def comment(text: str) -> str:
    """One line of the spec as a comment (one line, whatever it holds)."""
    return "# " + " ".join(text.split())
