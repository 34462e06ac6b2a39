"""Two time axes in one spec: an encoder, a context computed from it, and a decoder (fig. 10.12, §10.4).

An encoder-decoder spec is one text with two *sections*, each a recurrence in the usual
notation with its own steps, and one or more *link* lines between them::

    # Fig. 10.12 - an encoder-decoder
    size H = 5, I = 3, K = 4

    encoder over x:                  # steps t = 1..tau of the encoder are those of x
      input  x: I
      state  h: H = zero
      h[t] = tanh(b + W @ h[t-1] + U @ x[t])

    C = h[tau]                       # the link: one column per sequence

    decoder over y:                  # steps t = 1..tau of the decoder are those of y
      target y: class K
      init   y = zero
      state  s: H = C                # C as the initial state s[0] ...
      loss   L
      s[t] = tanh(b + W @ s[t-1] + U @ one_hot(y[t-1]) + R @ C)   # ... and as an input at every step
      o[t] = c + V @ s[t]
      L[t] = cross_entropy(o[t], y[t])

Read aloud: "the encoder runs over x; C is its last state; the decoder runs over y, starts
from C and reads C at every step".  Each section is parsed by the ordinary parser
(:func:`~graphrnn.recurrence.spec.parse_spec`) and checked as a :class:`Recurrence` of its
own; ``t`` and ``tau`` mean that section's own steps, so τx and τy may differ.  The
parameters of the two sections are separate even where their names agree (the book's
encoder and decoder have their own weights): ``enc.W`` and ``dec.W``.

A link ``NAME = expression`` reads the encoder's computed per-step variables: a step,
``h[tau]`` (the last state), ``h[tau-1]``, ``h[1]`` (the first), or a summary over every
step, ``mean(h)`` or ``sum(h)``; these may be combined with ``+ - *``, numbers and the
elementwise ``tanh``, ``sigmoid``, ``relu``, ``exp``.  A link has no parameters of its own.

The decoder uses a link ``C`` in the ways of §10.2.4: as the initial state
(``state s: H = C``, or ``init s = C``: ``s[0]`` is ``C``), as an input at every step
(the bare name ``C`` in its equations, as fig. 10.9 uses ``x``), or both.

>>> model = EncoderDecoder(EXAMPLE)
>>> model.conditioning
{'C': ('initial state of s', 'input at every step')}
>>> sorted(model.all_param_shapes())[:3]
['dec.R', 'dec.U', 'dec.V']
>>> model.links["C"].rows
5
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import SpecError
from .recurrence import Recurrence
from .spec import KEYWORDS, LAST_STEP_SYMBOLS, STEP_SYMBOLS, Name, Ref, parse_spec, read_spec_file, walk

#: the two sections, in the order they run, and the prefix of their names in a run's results
ROLES = {"encoder": "enc", "decoder": "dec"}
#: what a link may call: summaries over the steps, and elementwise functions
SUMMARIES = ("mean", "sum")
ELEMENTWISE = ("tanh", "sigmoid", "relu", "exp")
_NAME = r"[^\W\d]\w*"
_HEADER = re.compile(rf"^(\w+)\s+over\s+({_NAME})\s*:$")
_LINK = re.compile(rf"^({_NAME})\s*=(?!=)\s*(.*)$")
_STATE_FROM = re.compile(rf"^(state|hidden)\s+({_NAME})\s*:\s*([^=]+?)\s*=\s*({_NAME})$")
_INIT_FROM = re.compile(rf"^init\s+({_NAME})\s*=\s*({_NAME})$")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
MAX_LINKS = 16

EXAMPLE = """# an encoder-decoder
size H = 5, I = 3, K = 4
encoder over x:
  input  x: I
  state  h: H = zero
  h[t] = tanh(b + W @ h[t-1] + U @ x[t])
C = h[tau]
decoder over y:
  target y: class K
  init   y = zero
  state  s: H = C
  loss   L
  s[t] = tanh(b + W @ s[t-1] + U @ one_hot(y[t-1]) + R @ C)
  o[t] = c + V @ s[t]
  L[t] = cross_entropy(o[t], y[t])
"""


# --------------------------------------------------------------------------- links


@dataclass(frozen=True)
class Step:
    """``h[tau-k]`` (``anchor="tau"``) or ``h[k]`` (``anchor="number"``): one step of an encoder variable."""

    name: str
    anchor: str
    offset: int
    text: str

    def step(self, T: int) -> int:
        return T + self.offset if self.anchor == "tau" else self.offset


@dataclass(frozen=True)
class Summary:
    """``mean(h)`` or ``sum(h)``: over the encoder's steps 1..τx."""

    fn: str
    name: str
    text: str


@dataclass(frozen=True)
class Apply:
    """An elementwise function (``tanh``), or ``+ - *`` of two parts (``op``), or a number (``value``)."""

    op: str
    args: tuple
    text: str
    value: float | None = None


@dataclass
class Link:
    """A line ``C = h[tau]``: a value per sequence computed from the encoder's states."""

    name: str
    expr: object
    line: int
    text: str
    rows: int = 0
    reads: tuple = ()

    def parts(self):
        """Every :class:`Step` and :class:`Summary` of the expression."""
        stack = [self.expr]
        while stack:
            e = stack.pop()
            if isinstance(e, Apply):
                stack.extend(e.args)
            else:
                yield e


def parse_link(name: str, text: str, line: int, source=None) -> Link:
    """Read the right side of a link line ``name = text`` (the notation's whitelist, with ``mean``/``sum``)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise SpecError(f"cannot read the link {name} = {text.strip()}: {exc.msg}", line, variable=name,
                        source=source) from None
    if sum(1 for _ in ast.walk(tree)) > 200:
        raise SpecError(f"the link {name} is too large; a link reads the encoder's last state or a summary",
                        line, variable=name, source=source)
    src = text.strip()
    return Link(name, _link_expr(tree.body, src, (name, line, source)), line, f"{name} = {src}")


def _link_expr(node, src: str, where):
    name, line, source = where
    seg = ast.get_source_segment(src, node) or ""

    def fail(message):
        raise SpecError(f"in the link {name}: {message}", line, variable=name, source=source)

    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        return Step(node.value.id, *_link_step(node.slice, node.value.id, fail), seg)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        fn = node.func.id
        if fn in SUMMARIES:
            if len(node.args) != 1 or not isinstance(node.args[0], ast.Name):
                fail(f"{fn} takes one encoder variable without a step, as in `{fn}(h)` (over steps 1..tau)")
            return Summary(fn, node.args[0].id, seg)
        if fn in ELEMENTWISE:
            if len(node.args) != 1:
                fail(f"{fn} takes one argument")
            return Apply(fn, (_link_expr(node.args[0], src, where),), seg)
        fail(f"unknown function {fn!r}: a link may use {', '.join(SUMMARIES + ELEMENTWISE)}")
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
        op = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*"}[type(node.op)]
        return Apply(op, (_link_expr(node.left, src, where), _link_expr(node.right, src, where)), seg)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return Apply("neg", (_link_expr(node.operand, src, where),), seg)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return Apply("number", (), seg, float(node.value))
    if isinstance(node, ast.Name):
        if node.id in STEP_SYMBOLS + LAST_STEP_SYMBOLS:
            fail(f"`{node.id}` alone is not a value; read a step, as in `h[tau]`")
        fail(f"`{node.id}` without a step: {name} is one column per sequence, so read one step of an encoder "
             f"variable (`{node.id}[tau]`, the last) or a summary over its steps (`mean({node.id})`); a link has "
             f"no parameters of its own (put a matrix into the decoder instead, e.g. `R @ {name}`)")
    fail(f"`{seg}` is not part of a link (allowed: h[tau], h[tau-k], h[k], mean(h), sum(h), numbers, + - *, "
         f"{', '.join(ELEMENTWISE)})")


def _link_step(node, var: str, fail) -> tuple[str, int]:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        if node.value < 1:
            fail(f"`{var}[{node.value}]`: the encoder's steps are numbered from 1")
        return "number", node.value
    if isinstance(node, ast.Name) and node.id in LAST_STEP_SYMBOLS:
        return "tau", 0
    if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and isinstance(node.left, ast.Name)
            and node.left.id in LAST_STEP_SYMBOLS and isinstance(node.right, ast.Constant)
            and type(node.right.value) is int and node.right.value >= 0):
        return "tau", -node.right.value
    if isinstance(node, ast.Name) and node.id in STEP_SYMBOLS or (
            isinstance(node, ast.BinOp) and isinstance(node.left, ast.Name) and node.left.id in STEP_SYMBOLS):
        fail(f"`{var}[t...]`: a link is computed once per sequence, not at every step; write `{var}[tau]` "
             f"(the encoder's last state) or a summary such as `mean({var})`")
    fail(f"the step of {var} in a link must be tau, tau-k or a whole number k >= 1")


# --------------------------------------------------------------------------- sections


@dataclass
class Phase:
    """One section: its role (``"encoder"``/``"decoder"``), the data variable it runs over, and its recurrence."""

    role: str
    axis: str
    line: int
    rec: Recurrence
    lines: list = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return ROLES[self.role]

    def data_names(self) -> list[str]:
        return [n for n, v in self.rec.variables.items() if v.kind in ("input", "target")]


@dataclass
class _Layout:
    """Where each line of the text belongs: shared lines, the sections' lines and the links."""

    shared: list = field(default_factory=list)  # line numbers (1-based) of shared `size` lines
    headers: dict = field(default_factory=dict)  # role -> (line, axis)
    sections: dict = field(default_factory=dict)  # role -> [line numbers]
    links: dict = field(default_factory=dict)  # name -> (line, text of the right side, role it sits in)


class EncoderDecoder:
    """An encoder, its links (contexts ``C``) and a decoder, each section a :class:`Recurrence`.

    ``encoder`` and ``decoder`` are :class:`Phase` objects (``.rec`` the recurrence);
    ``links`` maps each context to its :class:`Link`; ``conditioning`` says, for each
    context, how the decoder uses it (§10.2.4).  ``sizes`` overrides named sizes in both
    sections.  Running it is :func:`graphrnn.runtime.encdec.run_encdec`.
    """

    def __init__(self, text: str, source: str | None = None, sizes: dict | None = None, name: str | None = None):
        if not isinstance(text, str):
            raise SpecError(f"a spec is text; got {type(text).__name__}", source=source)
        self.text, self.source = text, source
        self.name = name or (Path(source).stem if source else "encdec")
        lines = _LINE_BREAK.split(text[1:] if text.startswith("\ufeff") else text)
        self.title = lines[0].strip().lstrip("#").strip() if lines and lines[0].strip().startswith("#") else ""
        layout = self._layout(lines)
        self.links: dict[str, Link] = {n: parse_link(n, rhs, line, source)
                                       for n, (line, rhs, _) in layout.links.items()}
        dec_lines, self.initial_from = self._decoder_text(lines, layout)
        self._check_sizes({"encoder": lines, "decoder": dec_lines}, layout, sizes or {})
        self.encoder = self._phase("encoder", lines, layout, None, sizes)
        self._check_encoder()
        self._link_shapes()
        self._check_reads(dec_lines, layout)
        self.decoder = self._phase("decoder", dec_lines, layout, self._context_lines(dec_lines, layout), sizes)
        self._check_decoder()
        self.conditioning = self._conditioning()

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_file(cls, path, sizes=None) -> "EncoderDecoder":
        path = Path(path)
        return cls(read_spec_file(path), source=str(path), sizes=sizes, name=path.stem)

    def _error(self, message, line=None, variable=None):
        return SpecError(message, line, variable=variable, source=self.source)

    # ------------------------------------------------------------------ splitting the text
    def _layout(self, lines: list[str]) -> _Layout:
        layout, role = _Layout(), None
        for number, raw in enumerate(lines, start=1):
            stripped = raw.split("#", 1)[0].strip()
            if not stripped:
                continue
            header = _HEADER.match(stripped)
            if header:
                role = self._header(header, number, layout)
                continue
            link = _LINK.match(stripped)
            if link and link.group(1) not in KEYWORDS:
                self._add_link(layout, link, number, role)
                continue
            if role is None:
                if stripped.split(None, 1)[0] in ("size", "title"):
                    layout.shared.append(number)
                    continue
                raise self._error(f"`{stripped}` comes before the first section; an encoder-decoder spec puts "
                                  f"`size` lines first, then `encoder over x:` and `decoder over y:` sections "
                                  f"(each an ordinary spec) and a link such as `C = h[tau]` between them", number)
            layout.sections[role].append(number)
        for role in ROLES:
            if role not in layout.headers:
                example = "encoder over x:" if role == "encoder" else "decoder over y:"
                raise self._error(f"the spec has no {role} section; start it with a line `{example}` "
                                  f"(the data variable whose steps the {role} runs over)")
        for role, (line, axis) in layout.headers.items():
            if not layout.sections[role]:
                raise self._error(f"the {role} section (`{role} over {axis}:`) is empty; write its declarations and "
                                  f"equations below it", line, role)
        if not layout.links:
            raise self._error("no link between the encoder and the decoder: the decoder must be conditioned on "
                              "a context computed from the encoder; write a line such as `C = h[tau]` (the "
                              "encoder's last state) after the encoder, and use C in the decoder (`state s: H = C` "
                              "or `R @ C`)", layout.headers["decoder"][0])
        return layout

    def _header(self, header, number: int, layout: _Layout) -> str:
        role, axis = header.group(1), header.group(2)
        if role not in ROLES:
            raise self._error(f"unknown section {role!r}; the sections are `encoder over x:` and "
                              f"`decoder over y:`", number, role)
        if role in layout.headers:
            raise self._error(f"a second {role} section (the first starts on line {layout.headers[role][0]}); "
                              f"a spec has one encoder and one decoder", number, role)
        if role == "decoder" and "encoder" not in layout.headers:
            raise self._error("the decoder section comes before the encoder's; the decoder reads a context "
                              "computed from the encoder, so write `encoder over ...:` first, then the link "
                              "(`C = h[tau]`), then `decoder over ...:`", number, role)
        layout.headers[role] = (number, axis)
        layout.sections[role] = []
        return role

    def _add_link(self, layout: _Layout, link, number: int, role) -> None:
        name, rhs = link.group(1), link.group(2)
        if role == "decoder":
            raise self._error(f"the link {name} = {rhs} is inside the decoder section, but it is computed from "
                              f"the encoder and the decoder reads it; move it above `decoder over "
                              f"{layout.headers['decoder'][1]}:`", number, name)
        if role is None:
            raise self._error(f"the link {name} = {rhs} comes before the encoder it is computed from; move it "
                              f"below the encoder section", number, name)
        if name in layout.links:
            raise self._error(f"the link {name} is defined twice (lines {layout.links[name][0]} and {number}); "
                              f"define each context once", number, name)
        if len(layout.links) >= MAX_LINKS:
            raise self._error(f"more than {MAX_LINKS} links", number, name)
        layout.links[name] = (number, rhs, role)

    def _section_text(self, lines, keep) -> str:
        """The whole text with every line not in ``keep`` blanked, so line numbers in errors are the file's."""
        return "\n".join(raw if i in keep else "" for i, raw in enumerate(lines, start=1))

    def _decoder_text(self, lines, layout):
        """The decoder's lines with ``state s: H = C`` / ``init s = C`` rewritten to start from zero;
        returns the lines and ``{state: context}``."""
        out, initial = list(lines), {}
        for number in layout.sections["decoder"]:
            stripped = lines[number - 1].split("#", 1)[0].strip()
            m = _STATE_FROM.match(stripped)
            if m and m.group(4) not in ("zero", "learned", "zeros", "0"):
                self._start_from(m.group(2), m.group(4), number, initial)
                out[number - 1] = f"{m.group(1)} {m.group(2)}: {m.group(3)} = zero"
                continue
            m = _INIT_FROM.match(stripped)
            if m and m.group(2) not in ("zero", "learned", "zeros", "0"):
                self._start_from(m.group(1), m.group(2), number, initial)
                out[number - 1] = ""
        return out, initial

    def _start_from(self, state: str, context: str, number: int, initial: dict) -> None:
        if context not in self.links:
            known = ", ".join(self.links)
            raise self._error(f"{state} starts from {context!r}, which no link defines (the links: {known}); "
                              f"write `{context} = h[tau]` after the encoder, or start {state} from one of them",
                              number, context)
        if state in initial:
            raise self._error(f"the initial value of {state} is given twice", number, state)
        initial[state] = (context, number)

    def _context_lines(self, lines, layout) -> list[str]:
        """``context C: n`` lines for the links the decoder reads as inputs and does not declare."""
        declared = parse_spec(self._section_text(lines, set(layout.shared) | set(layout.sections["decoder"])),
                              self.source)
        used = {node.name for eq in declared.equations + list(declared.feedbacks.values())
                for node in walk(eq.expr) if isinstance(node, Name)}
        return [f"context {n}: {link.rows}" for n, link in self.links.items()
                if n in used and n not in declared.contexts]

    def _phase(self, role, lines, layout, extra, sizes) -> Phase:
        keep = set(layout.shared) | set(layout.sections[role])
        text = self._section_text(lines, keep)
        if extra:
            text += "\n" + "\n".join(extra)
        known = parse_spec(text, self.source).sizes
        mine = {k: v for k, v in (sizes or {}).items() if k in known}
        line, axis = layout.headers[role]
        rec = Recurrence(text, source=self.source, sizes=mine, name=f"{self.name}.{ROLES[role]}")
        phase = Phase(role, axis, line, rec, sorted(keep))
        var = rec.variables.get(axis)
        if var is None or var.kind not in ("input", "target"):
            data = ", ".join(phase.data_names()) or "none"
            raise self._error(f"`{role} over {axis}:` - {axis!r} is not data of the {role} (its data: {data}); "
                              f"name the input or target whose steps the {role} runs over", line, axis)
        return phase

    def _check_sizes(self, texts: dict, layout, sizes: dict) -> None:
        known = {}
        for role in ROLES:
            keep = set(layout.shared) | set(layout.sections[role])
            known.update(parse_spec(self._section_text(texts[role], keep), self.source).sizes)
        for key in sizes:
            if key not in known:
                raise self._error(f"unknown size {key!r} (the spec's sizes: {', '.join(known) or 'none'})",
                                  variable=key)

    # ------------------------------------------------------------------ checks across sections
    def _check_reads(self, lines, layout) -> None:
        """The decoder reads the encoder only through the links: not its data, states or outputs."""
        enc = self.encoder.rec
        spec = parse_spec(self._section_text(lines, set(layout.shared) | set(layout.sections["decoder"])),
                          self.source)
        own = set(spec.inputs) | set(spec.targets) | set(spec.contexts) | {eq.name for eq in spec.equations}
        for eq in spec.equations + list(spec.feedbacks.values()):
            for node in walk(eq.expr):
                if isinstance(node, Ref | Name) and node.name in enc.variables and node.name not in own:
                    var = enc.variables[node.name]
                    what = {"input": "input", "target": "target", "context": "context"}.get(var.kind, "variable")
                    state = node.name if var.kind == "computed" else next(
                        (n for n, v in enc.variables.items() if v.kind == "computed" and v.rows), "h")
                    raise self._error(
                        f"the decoder's equation of {eq.name} reads `{node.text}`, but {node.name} is the encoder's "
                        f"{what} (line {var.line}), on the encoder's time axis (steps 1..τx); the decoder sees the "
                        f"encoder only through a link: write `C = {state}[tau]` (or `mean({state})`) after "
                        f"the encoder and use C in the decoder", eq.line, node.name)

    def _check_encoder(self) -> None:
        enc = self.encoder.rec
        for name in self.links:
            if name in enc.variables or name in enc.param_shapes:
                line = enc.variables[name].line if name in enc.variables else next(
                    (eq.line for eq in enc.spec.equations for n in walk(eq.expr)
                     if isinstance(n, Name) and n.name == name), None)
                raise self._error(f"{name} is computed from the encoder by the link on line {self.links[name].line}, "
                                  f"so the encoder cannot use it (it would need its own result); the decoder reads "
                                  f"it", line, name)
        if enc.losses:
            raise self._error(f"the encoder has a loss ({', '.join(enc.losses)}); the loss of an encoder-decoder is "
                              f"the decoder's (§10.4), so move it into the decoder section or rename the variable",
                              enc.variables[enc.losses[0]].line, enc.losses[0])

    def _link_shapes(self) -> None:
        enc = self.encoder.rec
        for link in self.links.values():
            rows, reads = None, []
            for part in link.parts():
                if isinstance(part, Apply):
                    continue
                var = enc.variables.get(part.name)
                if var is None or var.kind != "computed":
                    what = (f"the encoder's {var.kind}" if var is not None else
                            "not a variable of the encoder")
                    raise self._error(f"the link {link.name} reads {part.text}, but {part.name} is {what}; a link "
                                      f"reads what the encoder computes (its states, e.g. `h[tau]`)",
                                      link.line, part.name)
                if var.rows is None:
                    raise self._error(f"the link {link.name} reads {part.name}, which is not a column", link.line,
                                      part.name)
                if isinstance(part, Summary) and var.anchor != "t":
                    raise self._error(f"{part.text}: {part.name} is defined at the last step only, so there are no "
                                      f"steps to summarise; read {part.name}[tau]", link.line, part.name)
                if isinstance(part, Step) and part.anchor == "tau" and part.offset and var.anchor != "t":
                    raise self._error(f"{part.text}: {part.name} is defined at the last step only", link.line,
                                      part.name)
                if rows is not None and var.rows != rows:
                    raise self._error(f"the link {link.name} combines columns of {rows} and {var.rows} rows "
                                      f"({part.text}); the parts must have the same size", link.line, part.name)
                rows = var.rows
                reads.append(part.name)
            if rows is None:
                raise self._error(f"the link {link.name} reads nothing from the encoder; write for example "
                                  f"`{link.name} = h[tau]`", link.line, link.name)
            link.rows, link.reads = rows, tuple(dict.fromkeys(reads))

    def _check_decoder(self) -> None:
        enc, dec = self.encoder.rec, self.decoder.rec
        enc_names = {n: v for n, v in enc.variables.items()}
        for name, var in dec.variables.items():
            if name in enc_names and var.kind in ("input", "target") and enc_names[name].kind in ("input", "target"):
                raise self._error(f"{name!r} is data of both the encoder (line {enc_names[name].line}) and the "
                                  f"decoder; the two sections have their own time axes (τx and τy), so give the "
                                  f"decoder's data another name", var.line, name)
        for eq in dec.spec.equations:
            for node in walk(eq.expr):
                if isinstance(node, Name) and node.name in enc_names and node.name not in dec.variables:
                    raise self._error(f"the decoder's equation of {eq.name} uses {node.name!r}, a variable of the "
                                      f"encoder; the decoder sees the encoder only through a link (write "
                                      f"`C = {node.name}[tau]` after the encoder and use C)", eq.line, node.name)
        for name in dec.param_shapes:
            if name in self.links:  # cannot happen (the declaration makes it a context); kept as a guard
                raise self._error(f"{name} is read as a parameter", variable=name)
        for state, (context, line) in self.initial_from.items():
            var = dec.variables.get(state)
            if var is None or var.kind != "computed":
                raise self._error(f"{state} starts from {context}, but {state} is not computed by the decoder",
                                  line, state)
            if var.rows != self.links[context].rows:
                raise self._error(f"{state} starts from {context}, but {state} has {var.rows} rows and {context} has "
                                  f"{self.links[context].rows} (from `{self.links[context].text}`); make their sizes "
                                  f"agree", line, state)
        for name, link in self.links.items():
            var = dec.variables.get(name)
            if var is not None and var.kind != "context":
                raise self._error(f"the decoder defines {name!r} itself ({var.kind}), but {name} is the link on line "
                                  f"{link.line}; rename one of them", var.line, name)
            if var is not None and var.rows != link.rows:
                raise self._error(f"the decoder declares context {name} with {var.rows} rows, but the link "
                                  f"`{link.text}` gives {link.rows}; make the sizes agree", var.line, name)
            if var is None and name not in {c for c, _ in self.initial_from.values()}:
                raise self._error(f"the link {name} is computed but the decoder does not use it; condition the "
                                  f"decoder on it as its initial state (`state s: H = {name}`) or as an input at "
                                  f"every step (e.g. `+ R @ {name}`), or both", link.line, name)
        if not dec.losses:
            raise self._error("the decoder has no loss; add `loss L` and an equation such as "
                              "`L[t] = cross_entropy(o[t], y[t])`", self.decoder.line)

    def _conditioning(self) -> dict[str, tuple[str, ...]]:
        out = {}
        for name in self.links:
            ways = tuple(f"initial state of {s}" for s, (c, _) in self.initial_from.items() if c == name)
            if name in self.decoder.rec.variables:
                ways += ("input at every step",)
            out[name] = ways
        return out

    # ------------------------------------------------------------------ parameters and data
    def phases(self) -> tuple[Phase, Phase]:
        return self.encoder, self.decoder

    def all_param_shapes(self) -> dict[str, tuple[int, int]]:
        """Every parameter, phase-qualified (``"enc.W"``, ``"dec.W"``): the phases do not share weights."""
        return {f"{p.prefix}.{n}": s for p in self.phases() for n, s in p.rec.all_param_shapes().items()}

    @property
    def parameter_count(self) -> int:
        return sum(p.rec.parameter_count for p in self.phases())

    def init_params(self, seed: int = 0, dtype=np.float64) -> dict[str, np.ndarray]:
        """Random parameters of both phases (each phase's ``init_params``, the decoder's seeded ``seed + 1``)."""
        out = {}
        for i, p in enumerate(self.phases()):
            out.update({f"{p.prefix}.{n}": a for n, a in p.rec.init_params(seed + i, dtype).items()})
        return out

    def random_inputs(self, steps: tuple[int, int], batch: int = 1, seed: int = 0,
                      dtype=np.float64) -> dict[str, np.ndarray]:
        """Random data for ``steps = (τx, τy)`` encoder and decoder steps."""
        out = {}
        for i, (p, T) in enumerate(zip(self.phases(), steps)):
            out.update({n: a for n, a in p.rec.random_inputs(T, batch, seed + i, dtype).items() if n not in self.links})
        return out

    def run(self, data: dict, params: dict | None = None, **options):
        """Run both phases on ``data`` and back-propagate the decoder's loss into both (an ``EncDecRun``).

        ``params``: phase-qualified (``model.init_params()`` by default); ``options``: those of
        :func:`graphrnn.runtime.encdec.run_encdec` (``mode``, ``p``, ``seed``, ``dtype``,
        ``backward``, ``T``).  Like :meth:`Recurrence.run`, it reaches the runtime only through
        ``recurrence._runtime()``.

        >>> model = load("fig10_12", sizes={"H": 3})
        >>> run = model.run(model.random_inputs((4, 2), batch=2))
        >>> run.T, sorted(run.copy_grads["enc.W"])
        ({'enc': 4, 'dec': 2}, [1, 2, 3, 4])
        """
        from .recurrence import _runtime

        return _runtime().encdec.run_encdec(self, data, params, **options)

    def describe(self) -> str:
        lines = [f"{self.name}: {self.title}" if self.title else self.name]
        for p in self.phases():
            lines += ["", f"{p.role} over {p.axis} (steps 1..tau of {p.axis}; parameters {p.prefix}.*):"]
            lines += [f"  {eq.text}" for eq in p.rec.spec.equations]
            if p.role == "encoder":
                lines += [""] + [f"link: {link.text}  ({link.rows} rows per sequence)" for link in self.links.values()]
        lines += ["", "conditioning (§10.2.4):"]
        lines += [f"  {n}: {', '.join(ways)}" for n, ways in self.conditioning.items()]
        lines.append(f"parameters: {self.parameter_count} numbers ({len(self.all_param_shapes())} arrays)")
        return "\n".join(lines)

    def __repr__(self):
        return f"<EncoderDecoder {self.name}: {', '.join(self.links)}>"


# --------------------------------------------------------------------------- the zoo's encoder-decoders

def names() -> list[str]:
    """The encoder-decoder specs shipped with graphrnn (``graphrnn/zoo/encdec/*.rnn``): :func:`graphrnn.zoo.encdec_names`."""
    from .. import zoo  # the zoo imports this module

    return zoo.encdec_names()


def load(arch: str, sizes: dict | None = None) -> EncoderDecoder:
    """An encoder-decoder by name (``"fig10_12"``, ``"fig10_12_init"``, ...) or from a spec file's path:
    :func:`graphrnn.zoo.load_encdec`.

    >>> load("fig10_12").conditioning
    {'C': ('initial state of s', 'input at every step')}
    """
    from .. import zoo

    return zoo.load_encdec(arch, sizes=sizes)


def is_encdec(text: str) -> bool:
    """Whether a spec's text has sections (an ``encoder over x:`` line): what a loader can dispatch on."""
    return any(_HEADER.match(raw.split("#", 1)[0].strip() or "-") for raw in _LINE_BREAK.split(text))
