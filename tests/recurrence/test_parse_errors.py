"""A catalogue of bad specs, each with the error it must raise.

Every entry gives the spec, the exception type, the line (and column where the parser can
know it), the variable the error must name, and substrings of the message: the facts (both
shapes, the cycle, the step) and the fix.  The valid base spec, line by line::

    1  size H = 3, I = 2, K = 2
    2  input  x: I
    3  target y: class K
    4  state  h: H = zero
    5  loss   L
    6  h[t] = tanh(b + W @ h[t-1] + U @ x[t])
    7  o[t] = c + V @ h[t]
    8  L[t] = cross_entropy(o[t], y[t])
"""

from __future__ import annotations

import pytest

import graphrnn as gr
from graphrnn.errors import SpecError

BASE = [
    "size H = 3, I = 2, K = 2",
    "input  x: I",
    "target y: class K",
    "state  h: H = zero",
    "loss   L",
    "h[t] = tanh(b + W @ h[t-1] + U @ x[t])",
    "o[t] = c + V @ h[t]",
    "L[t] = cross_entropy(o[t], y[t])",
]


def variant(*edits) -> str:
    """BASE with ``(line, text)`` edits: line 1..8 replaces that line, 9+ appends."""
    lines = list(BASE)
    for number, text in edits:
        if number <= len(lines):
            lines[number - 1] = text
        else:
            lines.append(text)
    return "\n".join(lines) + "\n"


FEEDBACK = """size H = 3, I = 2, K = 2
input  x: I
target y: class K
init   y = zero
feedback y[t] = argmax(o[t])
h[t] = tanh(b + W @ one_hot(y[t]) + U @ x[t])
o[t] = c + V @ h[t]
L[t] = cross_entropy(o[t], y[t])
state  h: H
"""

BIDIRECTIONAL = """size H = 3, I = 2, K = 2
input  x: I
target y: class K
state  h: H
state  g: H
h[t] = tanh(W @ g[t+1] + U @ x[t])
g[t] = tanh(W2 @ h[t-1] + U2 @ x[t])
L[t] = cross_entropy(V @ h[t] + V2 @ g[t], y[t])
"""

#: (id, spec text, exception type, line, column or None (not checked), variable, substrings)
CATALOGUE = [
    # ---- syntax, with the column
    ("unclosed parenthesis", variant((6, "h[t] = tanh(b + W @ h[t-1] + U @ x[t]")), SpecError, 6, 12, "h",
     ["equation of h", "'(' was never closed"]),
    ("doubled operator, indented", variant((6, "    h[t] = tanh(b + W @@ h[t-1])")), SpecError, 6, 24, "h",
     ["equation of h", "invalid syntax"]),
    ("caret for a power", variant((7, "o[t] = c + V @ h[t] ^ 2")), SpecError, 7, 8, "o",
     ["operator ^", "write a power as **"]),
    ("modulo", variant((7, "o[t] = c + V @ h[t] % 2")), SpecError, 7, 12, "o",
     ["operator % in `V @ h[t] % 2`", "+ - * / @ **"]),
    ("digit glued to a word", variant((7, "o[t] = c + 2V @ h[t]")), SpecError, 7, 12, "o",
     ["invalid decimal literal"]),
    ("two equations on a line", variant((7, "o[t] = c + V @ h[t]; z[t] = o[t]")), SpecError, 7, None, None,
     ["expected an equation such as"]),
    ("augmented assignment", variant((7, "o[t] += c")), SpecError, 7, None, None, ["expected an equation such as"]),
    ("chained assignment", variant((7, "o[t] = z[t] = c + V @ h[t]")), SpecError, 7, None, None,
     ["expected an equation such as"]),
    # ---- unknown functions, forbidden constructs
    ("misspelt function", variant((6, "h[t] = tahn(b + W @ h[t-1] + U @ x[t])")), SpecError, 6, 8, "tahn",
     ["unknown function 'tahn'", "did you mean tanh", "sigmoid"]),
    ("__import__", variant((7, "o[t] = __import__('os')")), SpecError, 7, 8, "__import__",
     ["unknown function '__import__'"]),
    ("method call", variant((7, "o[t] = c + V.dot(h[t])")), SpecError, 7, 12, "o",
     ["only the notation's functions can be called"]),
    ("lambda", variant((7, "o[t] = (lambda: c)()")), SpecError, 7, 8, "o", ["only the notation's functions"]),
    ("attribute", variant((7, "o[t] = c + V @ h[t].shape")), SpecError, 7, 16, "o",
     ["`h[t].shape` is not part of the notation", ".T"]),
    ("dunder attribute", variant((7, "o[t] = c.__class__")), SpecError, 7, 8, "o", ["not part of the notation"]),
    ("comprehension", variant((7, "o[t] = [c for c in V]")), SpecError, 7, 8, "o", ["not part of the notation"]),
    ("f-string", variant((7, "o[t] = f'{c}'")), SpecError, 7, 8, "o", ["not part of the notation"]),
    ("walrus", variant((7, "o[t] = (z := c)")), SpecError, 7, 9, "o", ["not part of the notation"]),
    ("comparison", variant((7, "o[t] = c < V")), SpecError, 7, 8, "o", ["not part of the notation"]),
    ("conditional", variant((7, "o[t] = c if V else c")), SpecError, 7, 8, "o", ["not part of the notation"]),
    ("keyword argument", variant((6, "h[t] = tanh(a=x[t])")), SpecError, 6, 8, "h",
     ["tanh takes plain arguments"]),
    ("starred argument", variant((6, "h[t] = tanh(*x[t])")), SpecError, 6, 8, "h", ["plain arguments"]),
    ("wrong number of arguments", variant((6, "h[t] = tanh(x[t], h[t-1])")), SpecError, 6, 8, "h",
     ["tanh takes 1 argument(s), got 2"]),
    ("function used as a value", variant((7, "o[t] = c + tanh")), SpecError, 7, 12, "o",
     ["tanh is a function", "tanh(...)"]),
    ("string constant", variant((7, "o[t] = c + 'V'")), SpecError, 7, 12, "o", ["only numbers"]),
    ("boolean constant", variant((7, "o[t] = c * True")), SpecError, 7, 12, "o", ["only numbers"]),
    ("complex constant", variant((7, "o[t] = c * 2j")), SpecError, 7, 12, "o", ["only numbers"]),
    ("huge integer", variant((7, "o[t] = c * 1" + "0" * 400)), SpecError, 7, 12, "o", ["too large"]),
    ("huge float", variant((7, "o[t] = c * 1e999")), SpecError, 7, 12, "o", ["too large", "finite"]),
    ("exponent not a number", variant((7, "o[t] = c + V @ h[t] ** h[t]")), SpecError, 7, 16, "o",
     ["exponent must be a number", "h[t] ** 2"]),
    ("indexing a call", variant((7, "o[t] = tanh(c)[t]")), SpecError, 7, 8, "o",
     ["only a variable can be indexed"]),
    ("too deeply nested", variant((7, "o[t] = " + "tanh(" * 70 + "c" + ")" * 70)), SpecError, 7, None, "o",
     ["nested too deeply", "intermediate variables"]),
    ("line too long", variant((7, "o[t] = c" + " + c" * 600)), SpecError, 7, None, None,
     ["characters long", "2000"]),
    ("NUL character", variant((7, "o[t] = c\x00")), SpecError, 7, None, None, ["NUL"]),
    # ---- steps
    ("t times 2", variant((6, "h[t] = tanh(b + W @ h[t*2] + U @ x[t])")), SpecError, 6, 23, "h",
     ["step of h", "t-k", "h[t-1]"]),
    ("fractional step", variant((6, "h[t] = tanh(b + W @ h[t-1.5] + U @ x[t])")), SpecError, 6, 23, "h",
     ["whole number"]),
    ("slice", variant((6, "h[t] = tanh(b + W @ h[1:t] + U @ x[t])")), SpecError, 6, 23, "h", ["step of h"]),
    ("fixed step", variant((6, "h[t] = tanh(b + W @ h[2] + U @ x[t])")), SpecError, 6, 23, "h", ["step of h"]),
    ("huge delay", variant((6, "h[t] = tanh(b + W @ h[t-5000] + U @ x[t])")), SpecError, 6, 23, "h",
     ["5000 steps", "limit of 1000"]),
    ("t outside brackets", variant((7, "o[t] = c + V @ h[t] * t")), SpecError, 7, 23, "o",
     ["step symbol t may only appear inside [...]"]),
    ("left side with an offset", variant((7, "o[t-1] = c + V @ h[t]")), SpecError, 7, 1, "o",
     ["define o at `o[t]`"]),
    ("left side not indexed", variant((7, "o = c + V @ h[t]")), SpecError, 7, 1, None,
     ["left side must be a per-step variable", "bare names are parameters"]),
    ("tau in an every-step equation", variant((7, "o[t] = c + V @ h[tau]")), SpecError, 7, 16, "h",
     ["cannot use the last step tau", "define o at [tau]"]),
    ("t in a last-step equation", variant((7, "o[tau] = c + V @ h[t]"), (8, "L[tau] = cross_entropy(o[tau], y[tau])")),
     SpecError, 7, 18, "h", ["write h[tau]"]),
    ("last-step variable used at every step", variant((7, "o[tau] = c + V @ h[tau]")), SpecError, 8, 22, "o",
     ["o is defined only at the last step (line 7)"]),
    # ---- names
    ("undefined per-step name", variant((7, "o[t] = c + V @ z[t]")), SpecError, 7, 16, "z",
     ["'z' is used in `z[t]`", "input z: SIZE", "z[t] = ..."]),
    ("undefined name in a feedback", FEEDBACK.replace("argmax(o[t])", "argmax(q[t])"), SpecError, 5, 24, "q",
     ["'q' is used in `q[t]`"]),
    ("per-step variable without a step", variant((7, "o[t] = c + V @ h")), SpecError, 7, 16, "h",
     ["'h' is a per-step variable", "write h[t]"]),
    ("size used as a value", variant((7, "o[t] = c + V @ h[t] * H")), SpecError, 7, 23, "H",
     ["'H' is a size", "write the number"]),
    ("variable defined twice", variant((9, "h[t] = tanh(U @ x[t])")), SpecError, 9, None, "h",
     ["already declared or defined on line 6", "defined once"]),
    ("input defined by an equation", variant((9, "x[t] = tanh(U @ h[t])")), SpecError, 9, None, "x",
     ["already declared or defined on line 2"]),
    ("input declared twice", variant((9, "input x: 3")), SpecError, 9, None, "x", ["line 2"]),
    ("state declared twice", variant((9, "state h: 3")), SpecError, 9, None, "h", ["declared twice"]),
    ("size given twice", variant((1, "size H = 3, I = 2, K = 2, H = 4")), SpecError, 1, None, "H",
     ["given twice"]),
    ("reserved function name", variant((4, "state tanh: H = zero")), SpecError, 4, None, "tanh",
     ["reserved word of the notation"]),
    ("step symbol as a name", variant((2, "input t: I")), SpecError, 2, None, "t", ["reserved word"]),
    ("python keyword as a name", variant((9, "state lambda: H")), SpecError, 9, None, "lambda",
     ["reserved word of Python"]),
    ("invalid name", variant((2, "input 2x: I")), SpecError, 2, None, "2x", ["not a valid input name"]),
    # ---- algebraic loops: the cycle is named
    ("self loop at the same step", variant((6, "h[t] = tanh(b + W @ h[t] + U @ x[t])")), SpecError, 6, None, "h",
     ["algebraic loop", "h[t] -> h[t]", "total delay 0", "h[t-1]"]),
    ("two-variable loop", variant((6, "h[t] = tanh(b + W @ o[t] + U @ x[t])")), SpecError, 7, None, "h",
     ["algebraic loop", "h[t] -> o[t] -> h[t]", "previous step", "`h[t-1]` in the equation of o"]),
    ("delays that cancel", BIDIRECTIONAL, SpecError, 6, None, "g",
     ["algebraic loop", "g[t] -> h[t-1] -> g[t]", "add up to 0", "do not cancel"]),
    ("both directions of time", variant((6, "h[t] = tanh(b + W @ h[t-1] + W2 @ h[t+1] + U @ x[t])")), SpecError, 6,
     None, "h", ["algebraic loop", "forwards", "backwards", "h[1] -> h[2] -> h[1]", "one direction of time"]),
    ("loop only when running free", FEEDBACK, SpecError, 6, None, "y",
     ["algebraic loop in free-running mode", "argmax(o[t])", "y[t] -> h[t] -> o[t] -> y[t]", "y[t-1]"]),
    ("loop at the last step", variant((7, "o[tau] = c + V @ h[tau] + Q @ o[tau]"),
                                      (8, "L[tau] = cross_entropy(o[tau], y[tau])")),
     SpecError, 7, None, "o", ["o[tau] -> o[tau]", "o[tau-1]"]),
    # ---- shapes: the equation and both shapes
    ("elementwise sizes differ", variant((7, "o[t] = c + V @ (h[t] * x[t])")), SpecError, 7, 17,
     "o", ["in the equation of o", "`h[t] * x[t]`", "(3, B) of `h[t]`", "(2, B) of `x[t]`",
           "map one side through a matrix"]),
    ("right side differs from the state", variant((6, "h[t] = tanh(b + W @ h[t-1] + x[t])")), SpecError, 6, None,
     "h", ["in the equation of h", "has shape (2, B)", "declared with shape (3, B)",
           "map the right side through a matrix"]),
    ("matrix product sizes differ", variant((9, "param W: 3 x 4")), SpecError, 6, 17, "h",
     ["in the equation of h", "`W @ h[t-1]`", "(3, 4)", "(3, B)", "inner sizes differ"]),
    ("one parameter, two shapes", variant((7, "o[t] = c + U @ h[t]")), SpecError, 7, 12, "o",
     ["cannot multiply `U`", "(3, 2)", "(3, B)", "own name"]),
    ("scores and classes differ", variant((7, "o[t] = c + h[t]")), SpecError, 8, 8, "L",
     ["in the equation of L", "(3, B)", "2 classes"]),
    ("class label used as a vector", variant((6, "h[t] = tanh(b + W @ h[t-1] + U @ y[t])")), SpecError, 6, 34, "h",
     ["class label", "one_hot"]),
    ("vector target for cross_entropy", variant((3, "target y: K")), SpecError, 8, 8, "L",
     ["class labels", "`y[t]` is a vector", "mse"]),
    ("declared size and equation differ", variant((4, "state  h: 4 = zero"), (9, "param W: 3 x 3")), SpecError, 6, 17,
     "h", ["`W @ h[t-1]`", "(3, 3)", "(4, B)"]),
    ("declared state size vs equation", variant((7, "o[t] = 2.0"), (9, "state o: K")), SpecError, 7, None, "o",
     ["the right side `2.0` has shape ()", "declared with shape (2, B)", "change the declared size"]),
    ("one_hot of a vector", variant((6, "h[t] = tanh(b + W @ one_hot(x[t]))")), SpecError, 6, 21, "h",
     ["one_hot takes class labels"]),
    ("shape cannot be inferred", "input x: 2\nh[t] = tanh(W @ h[t-1] + U @ x[t])\n", SpecError, 2, None, "W",
     ["cannot infer the rows of parameter 'W'", "param W:"]),
    ("matrix product with a number", variant((7, "o[t] = c + V @ 2.0")), SpecError, 7, 12, "o",
     ["@ multiplies a matrix by a column", "use * to scale"]),
    # ---- declarations
    ("undeclared size", variant((2, "input x: J")), SpecError, 2, None, "x", ["size 'J' of x", "size J = ..."]),
    ("size out of range", variant((1, "size H = 0, I = 2, K = 2")), SpecError, 1, None, "H",
     ["size of H is 0", "1 to 1,000,000"]),
    ("size without =", variant((1, "size H: 3, I = 2, K = 2")), SpecError, 1, None, None, ["size H = 5"]),
    ("size not a number", variant((2, "input x: 2.5")), SpecError, 2, None, "x", ["not a size"]),
    ("declaration without a colon", variant((2, "input x I")), SpecError, 2, None, None, ["input x: 3"]),
    ("class without a count", variant((3, "target y: class")), SpecError, 3, None, "y", ["class K"]),
    ("param with three sizes", variant((9, "param W: 3 x 3 x 3")), SpecError, 9, None, "W", ["rows x cols"]),
    ("bad initial value", variant((4, "state  h: H = ones")), SpecError, 4, None, "h", ["`zero` or `learned`"]),
    ("init without =", variant((9, "init h zero")), SpecError, 9, None, None, ["init h = zero"]),
    ("initial value given twice", variant((9, "init h = learned")), SpecError, 9, None, "h", ["given twice"]),
    ("init of an unknown variable", variant((9, "init q = zero")), SpecError, 9, None, "q", ["names no variable"]),
    ("learned init of a target", variant((9, "init y = learned")), SpecError, 9, None, "y",
     ["only a computed vector can have a learned initial value"]),
    ("state without an equation", variant((9, "state g: H")), SpecError, 9, None, "g", ["write `g[t] = ...`"]),
    ("context never used", variant((9, "context q: 3")), SpecError, 9, None, "q", ["never used"]),
    ("feedback for a computed variable", variant((9, "feedback o[t] = argmax(o[t])")), SpecError, 9, None, "o",
     ["only a target or input"]),
    ("feedback given twice", FEEDBACK.replace("feedback y[t] = argmax(o[t])",
                                              "feedback y[t] = argmax(o[t])\nfeedback y[t] = sample(o[t])"),
     SpecError, 6, None, "y", ["given twice"]),
    ("loss that is not a number", variant((5, "loss h")), SpecError, 5, None, "h",
     ["one number per step", "cross_entropy"]),
    ("loss without an equation", variant((5, "loss Q")), SpecError, 5, None, "Q",
     ["not a variable defined by an equation", "Q[t] = ..."]),
    ("loss declared twice", variant((5, "loss L, L")), SpecError, 5, None, "L", ["declared twice"]),
    ("loss with no name", variant((5, "loss")), SpecError, 5, None, None, ["loss L"]),
    ("no equations", "size H = 3\ninput x: 2\n# nothing else\n", SpecError, None, None, None,
     ["no equations", "h[t] = tanh"]),
    ("empty text", "", SpecError, None, None, None, ["no equations"]),
]


@pytest.mark.parametrize("text, kind, line, col, variable, needles", [c[1:] for c in CATALOGUE],
                         ids=[c[0] for c in CATALOGUE])
def test_bad_spec(text, kind, line, col, variable, needles):
    with pytest.raises(gr.GraphrnnError) as info:
        gr.Recurrence(text, name="bad")
    error = info.value
    assert type(error) is kind, f"{type(error).__name__}: {error}"
    message = str(error)
    assert error.line == line, message
    if line is not None:
        assert message.startswith(f"line {line}"), message
        assert 1 <= line <= max(1, len(text.splitlines()))
    if col is not None:
        assert error.col == col, message
    assert error.variable == variable, message
    if variable is not None:
        assert variable in message
    for needle in needles:
        assert needle in message, f"{needle!r} not in: {message}"
    assert "Traceback" not in message and "<unknown>" not in message


def test_the_base_spec_is_valid():
    rec = gr.Recurrence(variant())
    assert rec.param_shapes == {"b": (3, 1), "W": (3, 3), "U": (3, 2), "c": (2, 1), "V": (2, 3)}
    assert gr.Recurrence(FEEDBACK.replace("one_hot(y[t])", "one_hot(y[t-1])")).spec.feedbacks
    assert gr.Recurrence(BIDIRECTIONAL.replace("h[t-1]", "h[t-2]")).losses == ["L"]


def test_columns_count_characters_from_the_start_of_the_line():
    """ast counts UTF-8 bytes from the start of the parsed text; errors count characters from
    the start of the line, through indentation, keywords and non-ASCII names."""
    text = "input x: 2\nstate σh: 3\n  σh[t] = tanh(W @ σh[t-1] + U @ x[t]) % 2\n"
    with pytest.raises(SpecError) as info:
        gr.Recurrence(text)
    line = text.splitlines()[2]
    assert info.value.col == line.index("tanh") + 1
    text = "input x: 2\ntarget y: class 2\ninit y = zero\nfeedback   y[t] = argmax(q[t])\nh[t] = tanh(U @ x[t])\n"
    with pytest.raises(SpecError) as info:
        gr.Recurrence(text)
    assert info.value.col == text.splitlines()[3].index("q[t]") + 1


def test_errors_carry_the_source_file_name(tmp_path):
    path = tmp_path / "bad.rnn"
    path.write_text(variant((7, "o[t] = c + V @ z[t]")), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        gr.Recurrence.from_file(path)
    assert str(info.value).startswith(f"{path}:7:16: ")
    with pytest.raises(SpecError, match="cannot read spec file"):
        gr.Recurrence.from_file(tmp_path / "missing.rnn")
    (tmp_path / "latin1.rnn").write_bytes("# caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpecError, match="cannot read spec file"):
        gr.Recurrence.from_file(tmp_path / "latin1.rnn")
    with pytest.raises(SpecError, match="no architecture"):
        gr.load("fig10_99")
    # a UTF-8 file with a byte-order mark (as some editors save) reads like any other
    (tmp_path / "bom.rnn").write_text("\ufeff" + variant(), encoding="utf-8")
    assert gr.Recurrence.from_file(tmp_path / "bom.rnn").param_shapes == gr.Recurrence(variant()).param_shapes


@pytest.mark.parametrize("sizes, needle", [({"Q": 3}, "unknown size 'Q'"), ({"H": 0}, "from 1 to 1,000,000"),
                                           ({"H": 2.5}, "whole number"), ({"H": True}, "whole number")])
def test_size_overrides_are_checked(sizes, needle):
    with pytest.raises(SpecError, match=needle):
        gr.Recurrence(variant(), sizes=sizes)
    assert gr.Recurrence(variant(), sizes={"H": 7}).param_shapes["W"] == (7, 7)


def test_a_spec_must_be_text():
    for thing in (b"h[t] = x[t]", None, 3, ["h[t] = x[t]"]):
        with pytest.raises(SpecError, match="a spec is text"):
            gr.Recurrence(thing)
