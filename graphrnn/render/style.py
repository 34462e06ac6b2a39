"""The book's visual language, in one place: fonts, sizes, colours and safe labels.

Every variable is a circle of one size with a bold italic name and a
superscript step, ``h^(t)``; a weight letter is set in italics beside its
arrow; a delay is a small black square; a continuation is dashed.  Names come
from users, so every piece of text that reaches DOT goes through
:func:`text` (for HTML-like labels) or :func:`plain` (for ordinary attributes
such as tooltips): any name yields valid DOT and valid SVG.

>>> var_label("h", "t−1")
'<<B><I>h</I></B><SUP>(<I>t</I>−1)</SUP>>'
>>> var_label('<"&>')
'<<B><I>&lt;&quot;&amp;&gt;</I></B>>'
"""

from __future__ import annotations

import html
import math
import re

import graphviz

FONT = "Times"
NODE_SIZE = 0.62  # inches: the book's circles are all one size
FONT_SIZE = 16
EDGE_FONT_SIZE = 14
SQUARE = 0.11  # the delay square

#: colours that mean something (op level and the legend); the variable level is black, as printed
COLOURS = {
    "parameter": "#b9dfa4",  # a shared parameter (a leaf that wants a gradient)
    "copy": "#e3f2da",  # a dummy copy W^(t) of a parameter (§10.2.2)
    "input": "#aecdf2",  # data: inputs, targets, initial values, constants
    "state": "#ffe08a",  # a recurrent variable's value at one step (h^(t))
    "computed": "#fff4cf",  # another per-step variable (o^(t))
    "loss": "#f5a9a9",  # a loss L^(t) or the total loss
    "op": "#ffffff",  # an intermediate operation
}
LEGEND = (  # (colour, HTML text)
    ("parameter", "parameter"), ("copy", "dummy copy <I>W</I><SUP>(<I>t</I>)</SUP>"),
    ("input", "input / data / constant"),
    ("state", "state (recurrent variable)"), ("computed", "other per-step variable"), ("loss", "loss"),
    ("op", "intermediate op"),
)

GRAPH = {
    "rankdir": "BT", "newrank": "true", "nodesep": "0.32", "ranksep": "0.42", "fontname": FONT,
    "bgcolor": "white", "pad": "0.15", "outputorder": "edgesfirst", "ordering": "out",
}
NODE = {
    "shape": "circle", "fixedsize": "false", "width": str(NODE_SIZE), "height": str(NODE_SIZE),
    "margin": "0.02", "fontname": FONT, "fontsize": str(FONT_SIZE), "penwidth": "1.2",
}
EDGE = {"arrowsize": "0.7", "penwidth": "1.1", "fontname": FONT, "fontsize": str(EDGE_FONT_SIZE)}

_LETTER_RUNS = re.compile(r"[^\W\d_]+|(?:[\W\d_])+")

MINUS = "\u2212"
ELLIPSIS = "..."


def _clean(value) -> str:
    """``value`` as text with no control characters or lone surrogates (which XML cannot hold)."""
    s = str(value).encode("utf-8", "replace").decode("utf-8")
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else "\ufffd" for c in s)


def _no_escapes(s: str) -> str:
    # graphviz expands \N, \G, \E, \T, \H, \L in labels and tooltips (HTML ones too, even written
    # as &#92;): a zero-width space after each backslash keeps the text as written, and invisible
    return s.replace("\\", "\\\u200b")


def text(value) -> str:
    """``value`` made safe inside an HTML-like label: ``<``, ``>``, ``&``, quotes and backslashes."""
    return html.escape(_no_escapes(_clean(value)), quote=True)


def plain(value) -> str:
    """``value`` made safe as an ordinary DOT attribute (tooltip, comment): no HTML, no escapes."""
    return graphviz.escape(_no_escapes(_clean(value)))


def var_label(name: str, sup: str | None = None, bold: bool = True, extra: str = "") -> str:
    """The HTML-like label of a variable: bold italic name, superscript ``(sup)``."""
    body = f"<I>{text(name)}</I>"
    if bold:
        body = f"<B>{body}</B>"
    if sup is not None:
        body += step_sup(sup)
    return f"<{body}{extra}>"


def step_sup(sup) -> str:
    """The superscript ``(t−1)`` of a step, as the book sets it: the step symbol in italics
    (``t``, ``τ``), digits, signs and the ellipsis upright, in parentheses.

    >>> step_sup("t−1")
    '<SUP>(<I>t</I>−1)</SUP>'
    >>> step_sup("τ"), step_sup(3), step_sup("...")
    ('<SUP>(<I>τ</I>)</SUP>', '<SUP>(3)</SUP>', '<SUP>(...)</SUP>')
    """
    return f"<SUP>({italic_letters(sup)})</SUP>"


def italic_letters(value) -> str:
    """``value`` made safe for an HTML-like label, each run of letters in italics (a symbol, as in maths)."""
    out = []
    for run in _LETTER_RUNS.findall(_clean(value)):
        out.append(f"<I>{text(run)}</I>" if run[0].isalpha() else text(run))
    return "".join(out)


def param_label(name: str | None) -> str:
    """An edge's label: the weight it passes through, in italics (empty for a fixed operation)."""
    return f"<<I>{text(name)}</I>>" if name else ""


def step_text(offset: int, symbol: str = "t") -> str:
    """``t``, ``t−1``, ``t+2``: a step relative to the symbolic step ``symbol``."""
    if offset == 0:
        return symbol
    return f"{symbol}{MINUS if offset < 0 else '+'}{abs(offset)}"


def number(x: float) -> str:
    """A short, readable number: ``0.123``, ``1.2e-07``, ``3.4e+05``."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if x == 0:
        return "0"
    a = abs(x)
    if 1e-3 <= a < 1e4:
        return f"{x:.3g}"
    return f"{x:.1e}"


def mix(c1: str, c2: str, f: float) -> str:
    """The colour a fraction ``f`` of the way from ``c1`` to ``c2`` (``#rrggbb``)."""
    a = [int(c1[i:i + 2], 16) for i in (1, 3, 5)]
    b = [int(c2[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * f):02x}" for x, y in zip(a, b))


#: gradient size -> colour, on a log10 scale: grey (vanished), blues, then orange and red (exploding)
FLOW_STOPS = ((-8.0, "#d4d4d4"), (-5.0, "#a9cbe6"), (-2.0, "#4d8fc8"), (0.0, "#1d3f8f"), (1.0, "#e0662a"),
              (2.0, "#b10f1f"))


def flow_colour(log10: float) -> str:
    stops = FLOW_STOPS
    if log10 <= stops[0][0]:
        return stops[0][1]
    for (x0, c0), (x1, c1) in zip(stops, stops[1:]):
        if log10 <= x1:
            return mix(c0, c1, (log10 - x0) / (x1 - x0))
    return stops[-1][1]


def flow_width(log10: float, low: float = -8.0, high: float = 2.0) -> float:
    f = min(max((log10 - low) / (high - low), 0.0), 1.0)
    return round(0.6 + 6.4 * f, 2)
