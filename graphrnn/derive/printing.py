"""Printers of derived equations: one class per format, dispatching on the node type.

:class:`TextPrinter` writes Unicode in the style of ``graphrnn show`` and the verify
report (``Wᵀ diag(1 − (h(t+1))²) ∇h(t+1) L``); :class:`LatexPrinter` writes
amsmath (``\\boldsymbol{W}^\\top \\operatorname{diag}(...)``) and an ``align``
environment with one numbered line per equation; :class:`MarkdownPrinter` writes
markdown with ``$$`` math, as GitHub and Jupyter render it.  Each ``_print_X``
method prints node type ``X`` (as SymPy's printers do).

>>> import graphrnn as gr
>>> d = gr.derive("fig10_3")
>>> from graphrnn.derive.printing import text, latex
>>> eq = d.equation_for("W")
>>> text(eq.rhs)
'Σ_t diag(1 − (h(t))²) ∇h(t) L h(t−1)ᵀ'
>>> print(latex(eq.rhs))
\\sum_{t} \\operatorname{diag}\\left(1 - \\left(\\boldsymbol{h}^{(t)}\\right)^{2}\\right) \\nabla_{\\boldsymbol{h}^{(t)}} L \\, \\boldsymbol{h}^{(t-1)\\top}
"""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction

from . import symbols as S

_SUPERSCRIPTS = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")

#: precedence: a sum binds loosest, then products, then everything atomic
_SUM, _PRODUCT, _ATOM = 1, 2, 3


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    frac = Fraction(value).limit_denominator(1000)
    if abs(float(frac) - value) < 1e-12 * max(1.0, abs(value)):
        return f"{frac.numerator}/{frac.denominator}"
    return f"{value:.6g}"


class Printer:
    """Shared dispatch: ``self.doprint(node)``; subclasses define ``_print_<Node type>``."""

    def doprint(self, node) -> str:
        return getattr(self, f"_print_{type(node).__name__}")(node)

    def precedence(self, node) -> int:
        if isinstance(node, S.Add | S.LogSoftmaxVJP):
            return _SUM
        if isinstance(node, S.Num) and node.value < 0:
            return _SUM
        if isinstance(node, S.Scale | S.MatMul | S.Mul | S.Div | S.SoftmaxVJP | S.StepSum | S.Only):
            return _PRODUCT
        return _ATOM

    def inequality(self, n: S.Only) -> tuple[S.Step, str, S.Step]:
        """An :class:`~.symbols.Only`'s condition solved for its t or τ: (left, "≤" or "≥", right);
        τ − 2 ≤ 0 reads τ ≤ 2, t + 2 ≥ τ + 1 reads t ≥ τ − 1."""
        left = S.Step(n.step.anchor)
        if n.before:
            return left, "≤", S.Step("0", -n.step.offset)
        return left, "≥", S.Step("tau", 1 - n.step.offset)

    def paren(self, node, above: int) -> str:
        text = self.doprint(node)
        return self.wrap(text) if self.precedence(node) <= above else text

    def terms(self, node) -> list[tuple[str, str]]:
        """The terms of a sum as (sign, text), a negative scale printed as a subtraction."""
        out = []
        for i, t in enumerate(node.terms if isinstance(node, S.Add) else (node,)):
            if isinstance(t, S.Scale) and t.k < 0:
                out.append(("−" if i else "-", self.doprint(S.scale(-t.k, t.arg)) if t.k != -1 else
                            self.paren(t.arg, _SUM)))
            elif isinstance(t, S.Num) and t.value < 0:
                out.append(("−" if i else "-", _number(-t.value)))
            else:
                out.append(("+", self.doprint(t)))
        return out


# ------------------------------------------------------------------------------ text


class TextPrinter(Printer):
    """Unicode text, as ``graphrnn show`` prints and the verify report quotes."""

    def wrap(self, text: str) -> str:
        return f"({text})"

    def step(self, step: S.Step) -> str:
        base = {"t": "t", "tau": "τ", "0": ""}[step.anchor]
        if step.anchor == "0":
            return str(step.offset).replace("-", "−")
        if step.offset == 0:
            return base
        return f"{base}{'+' if step.offset > 0 else '−'}{abs(step.offset)}"

    def _print_Num(self, n):
        return _number(n.value).replace("-", "−")

    def _print_Var(self, n):
        return f"{n.name}({self.step(n.step)})"

    def _print_Param(self, n):
        return n.name

    def _print_Grad(self, n):
        if n.step is None:
            return f"∇{n.name} L"
        if n.loss:
            return f"∂L/∂{n.name}({self.step(n.step)})"
        return f"∇{n.name}({self.step(n.step)}) L"

    def _print_JacobianT(self, n):
        return f"(∂{self.doprint(n.of)}/∂{self.doprint(n.wrt)})ᵀ"

    def _print_Func(self, n):
        if n.fn == "one_hot":
            return f"1_{{{self.doprint(n.args[0])}}}"
        name = {"sigmoid": "σ"}.get(n.fn, n.fn)
        return f"{name}({', '.join(self.doprint(a) for a in n.args)})"

    def _print_Prediction(self, n):
        return unicodedata.normalize("NFC", f"{n.target.name}\u0302") + f"({self.step(n.target.step)})"

    def _print_OneHot(self, n):
        return f"1_{{{self.doprint(n.label)}}}"

    def _print_Positive(self, n):
        return f"1[{self.doprint(n.arg)} > 0]"

    def _print_Transpose(self, n):
        return f"{self.paren(n.arg, _PRODUCT)}ᵀ"

    def _print_Diag(self, n):
        return f"diag({self.doprint(n.arg)})"

    def _print_MatMul(self, n):
        return f"{self.paren(n.left, _SUM)} {self.paren(n.right, _SUM)}"

    def _print_Mul(self, n):
        return f"{self.paren(n.left, _PRODUCT)} ⊙ {self.paren(n.right, _PRODUCT)}"

    def _print_Div(self, n):
        return f"{self.paren(n.left, _PRODUCT)} / {self.paren(n.right, _PRODUCT)}"

    def _print_Power(self, n):
        p = n.p
        exp = str(int(p)).translate(_SUPERSCRIPTS) if p == int(p) else f"^{_number(p)}"
        base = self.doprint(n.arg) if isinstance(n.arg, S.Param) else self.wrap(self.doprint(n.arg))
        return base + exp

    def _print_Scale(self, n):
        if n.k == -1:
            return f"−{self.paren(n.arg, _SUM)}"
        k = _number(n.k).replace("-", "−")
        k = f"({k})" if "/" in k else k
        return f"{k} {self.paren(n.arg, _SUM)}"

    def _print_Add(self, n):
        parts = self.terms(n)
        out = ("−" if parts[0][0] == "-" else "") + parts[0][1]
        for sign, text in parts[1:]:
            out += f" {sign} {text}"
        return out

    def _print_SoftmaxVJP(self, n):
        s = self.paren(n.s, _PRODUCT)
        return f"(diag({self.doprint(n.s)}) − {s} {s}ᵀ) {self.paren(n.g, _SUM)}"

    def _print_LogSoftmaxVJP(self, n):
        g = self.paren(n.g, _SUM)
        return f"{g} − softmax({self.doprint(n.x)}) (1ᵀ {g})"

    def _print_StepSum(self, n):
        if n.lo == n.hi:
            return self.doprint(S.at(n.body, n.lo))
        if n.lo == S.Step("0", 1) and n.hi == S.TAU:
            return f"Σ_t {self.paren(n.body, _SUM)}"
        return f"Σ_{{t={self.step(n.lo)}}}^{{{self.step(n.hi)}}} {self.paren(n.body, _SUM)}"

    def _print_Only(self, n):
        left, rel, right = self.inequality(n)
        return f"[{self.step(left)} {rel} {self.step(right)}] {self.paren(n.body, _SUM)}"

    # ------------------------------------------------------------------ equations
    def condition(self, eq) -> str:
        if eq.lo is None or eq.single_step:
            return ""
        return f"for {self.step(eq.lo)} ≤ t ≤ {self.step(eq.hi)}"

    def equation(self, eq) -> str:
        if eq.kind == "none":
            return f"no gradient: {eq.note}"
        parts = [f"{self.doprint(eq.lhs)} = {self.doprint(eq.rhs)}"]
        cond = self.condition(eq)
        if cond:
            parts.append(cond)
        if eq.book:
            parts.append(f"({eq.book})")
        if eq.kind == "variable" and eq.note:
            parts.append(f"({eq.note})")
        return "    ".join(parts)

    def derivation(self, d) -> str:
        rec = d.rec
        lines = [f"{rec.name}: {rec.title}" if rec.title else rec.name, "", "forward:"]
        lines += [f"  {eq.text}" for eq in rec.spec.equations]
        if d.mode != "teacher" and rec.spec.feedbacks:
            lines += [f"  fed back ({d.mode} mode): {fb.text}" for fb in rec.spec.feedbacks.values()]
        lines += ["", f"BPTT ({_MODE_NAMES[d.mode]}), derived from the loss back:"]
        width = len(str(max((eq.number or 0) for eq in d.equations)))
        sections = {"loss": None, "variable": None, "parameter": "parameters (each the sum of its dummy copies' "
                    "terms, one per step, §10.2.2):", "initial": "learned initial states:", "none": "no gradient:"}
        shown = set()
        for eq in d.equations:
            title = sections.get(eq.kind)
            if title and eq.kind not in shown:
                shown.add(eq.kind)
                lines += ["", title]
            if eq.kind == "none":
                lines.append(f"  {eq.note}")
            else:
                lines.append(f"  ({eq.number:>{width}})  {self.equation(eq)}")
        where = self.where(d)
        if where:
            lines += ["", "where " + "; ".join(where)]
        if d.notes:
            lines += [""] + d.notes
        return "\n".join(lines)

    def where(self, d) -> list[str]:
        seen = {}
        for eq in d.equations:
            for node in (S.walk(eq.rhs) if eq.rhs is not None else ()):
                if isinstance(node, S.Prediction) and node.target.name not in seen:
                    seen[node.target.name] = (f"{self.doprint(node)} = "
                                              f"softmax({self.doprint(node.logits)}), and 1_{{{self.doprint(node.target)}}} "
                                              f"the one-hot column of class {self.doprint(node.target)}")
        return list(seen.values())


_MODE_NAMES = {"teacher": "teacher forcing", "free": "free running", "scheduled": "scheduled sampling"}


# ------------------------------------------------------------------------------ LaTeX


def _latex_name(name: str) -> str:
    """``h`` -> ``\\boldsymbol{h}``; ``Wf`` -> ``\\boldsymbol{W}_{f}``; ``y_fed`` -> ``\\boldsymbol{y}_{\\text{fed}}``."""
    if "_" in name:
        head, _, rest = name.partition("_")
        return f"{_latex_name(head)}_{{\\text{{{rest.replace('_', ' ')}}}}}"
    if len(name) == 1:
        return f"\\boldsymbol{{{name}}}"
    m = re.fullmatch(r"([A-Za-z])([a-z0-9]{1,2})", name)
    if m:
        return f"\\boldsymbol{{{m.group(1)}}}_{{{m.group(2)}}}"
    return f"\\boldsymbol{{\\mathrm{{{name}}}}}"


class LatexPrinter(Printer):
    """amsmath: the book's notation (bold vectors, ᵀ as \\top, diag as an operator)."""

    def wrap(self, text: str) -> str:
        return f"\\left({text}\\right)"

    def step(self, step: S.Step) -> str:
        if step.anchor == "0":
            return str(step.offset)
        base = "t" if step.anchor == "t" else "\\tau"
        if step.offset == 0:
            return base
        return f"{base}{'+' if step.offset > 0 else '-'}{abs(step.offset)}"

    def _print_Num(self, n):
        text = _number(n.value)
        if "/" in text:
            num, den = text.lstrip("-").split("/")
            return ("-" if n.value < 0 else "") + f"\\tfrac{{{num}}}{{{den}}}"
        return text

    def _var(self, name, step, extra=""):
        return f"{_latex_name(name)}^{{({self.step(step)}){extra}}}"

    def _print_Var(self, n):
        return self._var(n.name, n.step)

    def _print_Param(self, n):
        return _latex_name(n.name)

    def _print_Grad(self, n):
        if n.step is None:
            return f"\\nabla_{{{_latex_name(n.name)}}} L"
        if n.loss:
            return f"\\frac{{\\partial L}}{{\\partial {_latex_name(n.name) if n.name != 'L' else 'L'}^{{({self.step(n.step)})}}}}"
        return f"\\nabla_{{{self._var(n.name, n.step)}}} L"

    def _print_JacobianT(self, n):
        return (f"\\left(\\frac{{\\partial {self.doprint(n.of)}}}{{\\partial {self.doprint(n.wrt)}}}"
                f"\\right)^\\top")

    _FUNCS = {"tanh": "\\tanh", "sigmoid": "\\sigma", "exp": "\\exp", "log": "\\log"}

    def _print_Func(self, n):
        if n.fn == "one_hot":
            return f"\\mathbf{{1}}_{{{self.doprint(n.args[0])}}}"
        escaped = n.fn.replace("_", "\\_")
        name = self._FUNCS.get(n.fn, f"\\operatorname{{{escaped}}}")
        return f"{name}\\left({', '.join(self.doprint(a) for a in n.args)}\\right)"

    def _print_Prediction(self, n):
        return f"\\hat{{{_latex_name(n.target.name)}}}^{{({self.step(n.target.step)})}}"

    def _print_OneHot(self, n):
        return f"\\mathbf{{1}}_{{{self.doprint(n.label)}}}"

    def _print_Positive(self, n):
        return f"\\mathbf{{1}}\\left[{self.doprint(n.arg)} > 0\\right]"

    def _print_Transpose(self, n):
        if isinstance(n.arg, S.Var):
            return self._var(n.arg.name, n.arg.step, "\\top")
        return f"{self.paren(n.arg, _PRODUCT)}^\\top"

    def _print_Diag(self, n):
        return f"\\operatorname{{diag}}\\left({self.doprint(n.arg)}\\right)"

    def _print_MatMul(self, n):
        left, right = self.paren(n.left, _SUM), self.paren(n.right, _SUM)
        # a thin space where a gradient (ending in L) meets the next factor, as the book sets it
        sep = " \\, " if left.endswith(" L") else " "
        return f"{left}{sep}{right}"

    def _print_Mul(self, n):
        return f"{self.paren(n.left, _PRODUCT)} \\odot {self.paren(n.right, _PRODUCT)}"

    def _print_Div(self, n):
        return f"\\frac{{{self.doprint(n.left)}}}{{{self.doprint(n.right)}}}"

    def _print_Power(self, n):
        p = _number(n.p)
        base = self.doprint(n.arg) if isinstance(n.arg, S.Param) else self.wrap(self.doprint(n.arg))
        return f"{base}^{{{p}}}"

    def _print_Scale(self, n):
        if n.k == -1:
            return f"-{self.paren(n.arg, _SUM)}"
        return f"{self._print_Num(S.Num(n.k))} {self.paren(n.arg, _SUM)}"

    def _print_Add(self, n):
        parts = self.terms(n)
        out = ("-" if parts[0][0] == "-" else "") + parts[0][1]
        for sign, text in parts[1:]:
            out += f" {'-' if sign == '−' else '+'} {text}"
        return out

    def _print_SoftmaxVJP(self, n):
        s = self.paren(n.s, _PRODUCT)
        return f"\\left(\\operatorname{{diag}}\\left({self.doprint(n.s)}\\right) - {s} {s}^\\top\\right) " \
               f"{self.paren(n.g, _SUM)}"

    def _print_LogSoftmaxVJP(self, n):
        g = self.paren(n.g, _SUM)
        return f"{g} - \\operatorname{{softmax}}\\left({self.doprint(n.x)}\\right) \\left(\\mathbf{{1}}^\\top {g}\\right)"

    def _print_StepSum(self, n):
        if n.lo == n.hi:
            return self.doprint(S.at(n.body, n.lo))
        if n.lo == S.Step("0", 1) and n.hi == S.TAU:
            return f"\\sum_{{t}} {self.paren(n.body, _SUM)}"
        return f"\\sum_{{t={self.step(n.lo)}}}^{{{self.step(n.hi)}}} {self.paren(n.body, _SUM)}"

    def _print_Only(self, n):
        left, rel, right = self.inequality(n)
        rel = {"≤": "\\le", "≥": "\\ge"}[rel]
        return f"\\left[{self.step(left)} {rel} {self.step(right)}\\right] {self.paren(n.body, _SUM)}"

    # ------------------------------------------------------------------ equations
    def condition(self, eq) -> str:
        if eq.lo is None or eq.single_step:
            return ""
        return f"\\text{{for }} {self.step(eq.lo)} \\le t \\le {self.step(eq.hi)}"

    def equation(self, eq, align: bool = False) -> str:
        if eq.kind == "none":
            return f"\\text{{no gradient: {_latex_text(eq.note)}}}"
        eqsign = " &= " if align else " = "
        out = f"{self.doprint(eq.lhs)}{eqsign}{self.doprint(eq.rhs)}"
        cond = self.condition(eq)
        if cond:
            out += f" && {cond}" if align else f" \\qquad {cond}"
        return out

    def derivation(self, d) -> str:
        lines = []
        for eq in d.equations:
            if eq.kind == "none":
                continue
            book = _latex_text(eq.book or "").replace("†", "\\dagger").replace("–", "--")
            tag = f" \\tag{{{book}}}" if eq.book else ""
            lines.append(self.equation(eq, align=True) + tag)
        body = " \\\\\n".join(lines)
        out = ["\\begin{align}", body, "\\end{align}"]
        remarks = [eq.note for eq in d.equations if eq.kind == "none"]
        if remarks:
            out += ["", "% no gradient:"] + [f"% {r}" for r in remarks]
        return "\n".join(out)


def _latex_text(text: str) -> str:
    return (text.replace("\\", "\\textbackslash{}").replace("_", "\\_").replace("{", "\\{").replace("}", "\\}")
            .replace("#", "\\#").replace("%", "\\%").replace("&", "\\&"))


# ------------------------------------------------------------------------------ markdown


class MarkdownPrinter:
    """Markdown: a line of text per section and each equation as ``$$`` display math."""

    def derivation(self, d) -> str:
        tex, txt = LatexPrinter(), TextPrinter()
        rec = d.rec
        out = [f"**BPTT of {rec.name}** ({_MODE_NAMES[d.mode]}), derived from its equations:", ""]
        out += ["```", *(eq.text for eq in rec.spec.equations), "```", ""]
        for eq in d.equations:
            if eq.kind == "none":
                continue
            tag = f" \\qquad ({eq.number})" + (f"\\ \\text{{[{eq.book}]}}" if eq.book else "")
            out += ["$$", tex.equation(eq) + tag, "$$", ""]
        remarks = [eq.note for eq in d.equations if eq.kind == "none"]
        if remarks:
            out += ["No gradient:", ""] + [f"- {r}" for r in remarks] + [""]
        where = txt.where(d)
        if where:
            out += ["Where " + "; ".join(where) + ".", ""]
        for note in d.notes:
            out += [note, ""]
        return "\n".join(out).rstrip() + "\n"


def text(node) -> str:
    """``node`` in Unicode text."""
    return TextPrinter().doprint(node)


def latex(node) -> str:
    """``node`` in LaTeX."""
    return LatexPrinter().doprint(node)
