"""The verification report: one row per checked gradient, printable as text or HTML.

A :class:`Row` holds three arrays for one gradient (the engine's, a reference
computed another way, and central finite differences), the relative error and a
verdict.  A :class:`Report` is the list of rows with what was run and how it was
judged; ``str(report)`` is the table the ``graphrnn verify`` command prints, and
``_repr_html_`` shows the same table in Jupyter.

How errors are measured (:class:`Tolerance`): for two arrays ``a`` and ``b``,

    error = max|a − b| / max(max|a|, max|b|, floor)

one scale for the whole array, so a near-zero entry does not blow up the error;
``floor`` = atol / rtol stands in when the whole array is tiny, at the level of
the finite differences' own noise.  A row passes when every comparison's error
is at most ``rtol``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np

from ..errors import GradcheckError


@dataclass(frozen=True)
class Tolerance:
    """``rtol`` for arrays of ordinary size; ``atol`` the absolute noise allowed."""

    rtol: float
    atol: float

    @property
    def floor(self) -> float:
        return self.atol / self.rtol

    def directional_error(self, engine, directions, fd) -> float:
        """Sampled finite differences: the engine's gradient projected on unit vectors ``directions``
        against the loss's derivatives ``fd`` along them, relative to ‖engine‖₂ (a projection is at
        most that large)."""
        engine = np.asarray(engine, dtype=np.float64)
        fd = np.asarray(fd, dtype=np.float64)
        projected = np.array([float(np.vdot(engine, u)) for u in directions])
        diff = float(np.max(np.abs(projected - fd)))
        if not np.isfinite(diff):
            return float("inf")
        return diff / max(float(np.linalg.norm(engine)), float(np.max(np.abs(fd))), self.floor)

    def error(self, a, b) -> float:
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            return float("inf")
        if a.size == 0:
            return 0.0
        diff = float(np.max(np.abs(a - b)))
        if not np.isfinite(diff):
            return float("inf")
        scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))), self.floor)
        return diff / scale


#: relative tolerances by dtype: float64 results should agree to ~1e-9, float32 to ~1e-6
RTOL = {"float64": 1e-6, "float32": 1e-4}


def tolerance_for(dtype, loss_scale: float, grad_scale: float, eps: float) -> Tolerance:
    """The tolerance for a run in ``dtype``.

    ``atol`` adds the two sources of noise: the finite differences' rounding
    (float64 ulps of the loss, divided by the step ``eps``) and the engine's own
    rounding in ``dtype`` on gradients of size ``grad_scale``.
    """
    name = np.dtype(dtype).name
    rtol = RTOL.get(name, RTOL["float32"])
    # measured: the differences' error is about ε64·|L|/eps, the float32 engine's about ε32·|∇|
    fd_noise = 16 * np.finfo(np.float64).eps * max(loss_scale, 1.0) / eps
    engine_noise = 8 * np.finfo(np.dtype(dtype)).eps * max(grad_scale, 1.0)
    return Tolerance(rtol, float(fd_noise + engine_noise))


@dataclass
class Row:
    """One checked gradient.

    ``quantity`` names it as the book would (``∇h[3] L``, ``∇W^(3) L``); ``variable``
    and ``step`` say where it lives (``step`` is ``None`` for a parameter's total).
    ``equation`` is the number of the derived equation it checks (``"(4)"``, see
    ``graphrnn derive``) and ``book_equation`` the book's (fig. 10.3 only).

    The engine's gradient ``engine`` is compared with
    ``reference``, the derived equations evaluated with numpy (:mod:`graphrnn.derive`);
    ``local``, the same equation fed the engine's own gradients of the consumers
    (one step of BPTT on its own: it pins a wrong gradient to the step where it first goes wrong);
    ``book``, the book's closed form (eqs. 10.17–10.28, fig. 10.3 only);
    ``fd``, central finite differences of the loss with this very node perturbed inside the
    unrolled graph: every entry (``directions`` is ``None``), or the derivative along each
    of the unit vectors ``directions`` (sampled finite differences).
    """

    section: str
    step: int | None
    variable: str
    quantity: str
    equation: str
    engine: np.ndarray
    reference: np.ndarray | None
    fd: np.ndarray | None
    reference_kind: str = "derived"
    local: np.ndarray | None = None
    book: np.ndarray | None = None
    book_equation: str = ""
    directions: np.ndarray | None = None
    error_reference: float = 0.0
    error_local: float = 0.0
    error_book: float = 0.0
    error_fd: float = 0.0
    ok: bool = True

    @property
    def error(self) -> float:
        return max(self.error_reference, self.error_local, self.error_book, self.error_fd)

    def judge(self, tol: Tolerance) -> "Row":
        if self.reference is not None:
            self.error_reference = tol.error(self.engine, self.reference)
        if self.local is not None:
            self.error_local = tol.error(self.engine, self.local)
        if self.book is not None:
            self.error_book = tol.error(self.engine, self.book)
        if self.fd is not None and self.directions is None:
            self.error_fd = tol.error(self.engine, self.fd)
        elif self.fd is not None:
            self.error_fd = tol.directional_error(self.engine, self.directions, self.fd)
        self.ok = bool(self.error <= tol.rtol)
        return self

    @property
    def where(self) -> str:
        return (f"step {self.step}, " if self.step is not None else "") + f"{self.quantity} (variable {self.variable})"

    @property
    def equations(self) -> str:
        """The equations the row checks: ``"(4) 10.21†"``."""
        return " ".join(e for e in (self.equation, self.book_equation) if e)

    def failure(self, tol: Tolerance) -> str:
        """Why this row failed, naming the step, the variable and the comparisons that failed."""
        which = []
        if self.error_reference > tol.rtol:
            which.append(f"the derived equation {self.equation} (relative error {self.error_reference:.2e})")
        if self.error_local > tol.rtol:
            which.append(f"the derived equation {self.equation} applied to the engine's downstream gradients "
                         f"(relative error {self.error_local:.2e})")
        if self.error_book > tol.rtol:
            which.append(f"the book's eq. {self.book_equation} (relative error {self.error_book:.2e})")
        if self.error_fd > tol.rtol:
            which.append(f"finite differences (relative error {self.error_fd:.2e})")
        return f"{self.where}: the engine's gradient differs from {' and from '.join(which)}; tolerance {tol.rtol:.0e}"


def _norm(a) -> str:
    if a is None:
        return "—"
    return f"{float(np.linalg.norm(np.asarray(a, dtype=np.float64))):.6g}"


def _err(x: float) -> str:
    return "inf" if not np.isfinite(x) else f"{x:.1e}"


@dataclass
class Report:
    """The outcome of :func:`graphrnn.verify.verify`: rows, a verdict and a readable table.

    ``ok`` is true when every row passed; ``first_failure`` is the first failing
    row in report order (steps from τ down to 1, then the parameters).
    ``run`` is the engine's :class:`~graphrnn.Run`; ``inputs`` and ``params`` the
    data and parameters it used.
    """

    name: str
    steps: int
    batch: int
    seed: int
    dtype: str
    mode: str
    eps: float
    tolerance: Tolerance
    rows: list[Row]
    sections: dict[str, str]
    notes: list[str] = field(default_factory=list)
    evaluations: int = 0
    seconds: float = 0.0
    run: object = field(default=None, repr=False)
    inputs: dict = field(default_factory=dict, repr=False)
    params: dict = field(default_factory=dict, repr=False)
    #: how the finite differences were taken: "all" (every entry) or "sample N" (N random directions)
    fd_mode: str = "all"
    #: the derived equations the rows name (a :class:`graphrnn.derive.Derivation`)
    derivation: object = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if not r.ok]

    @property
    def first_failure(self) -> Row | None:
        return next((r for r in self.rows if not r.ok), None)

    @property
    def worst(self) -> Row | None:
        return max(self.rows, key=lambda r: r.error, default=None)

    def __bool__(self) -> bool:
        return self.ok

    def check(self) -> "Report":
        """Return ``self`` when every check passed, else raise
        :class:`~graphrnn.errors.GradcheckError` naming the first failing step and variable."""
        first = self.first_failure
        if first is not None:
            raise GradcheckError(f"{self.name}: {first.failure(self.tolerance)}")
        return self

    def summary(self) -> str:
        worst = self.worst
        head = (f"{len(self.rows)} checks, "
                + ("all passed" if self.ok else f"{len(self.failures)} FAILED"))
        if worst is not None:
            head += f"; worst relative error {_err(worst.error)} ({worst.where})"
        head += f"; {self.evaluations} evaluations in {self.seconds:.2f} s"
        first = self.first_failure
        if first is not None:
            head += f"\nfirst failure: {first.failure(self.tolerance)}"
        return head

    def header(self) -> str:
        t = self.tolerance
        if self.fd_mode == "all":
            fd = "every entry"
        else:
            n = self.fd_mode.split()[1]
            fd = (f"along {n} random unit direction{'s' if n != '1' else ''} per gradient (each parameter's dummy "
                  f"copies at {n} random step{'s' if n != '1' else ''})")
        return (f"BPTT check of {self.name}: τ = {self.steps} steps, batch {self.batch}, seed {self.seed}, "
                f"{self.dtype}, {self.mode} mode\n"
                f"reference: the derived equations (graphrnn derive, numbered below), evaluated with numpy from the "
                f"forward values; 'local' feeds each equation the engine's own downstream gradients\n"
                f"finite differences: central, ε = {self.eps:g}, in float64, {fd}, of the loss Σ_t L^(t) with one "
                f"node of the unrolled graph perturbed\n"
                f"error = max|a − b| / max(max|a|, max|b|, {t.floor:.1e}); pass when ≤ {t.rtol:.0e} "
                f"(against every comparison)")

    def equations_text(self) -> str:
        """The derived equations the rows name, numbered as in ``graphrnn derive``."""
        if self.derivation is None:
            return ""
        lines = ["Derived equations:"]
        for eq in self.derivation.equations:
            if eq.kind != "none":
                lines.append(f"  ({eq.number}) {eq.text()}")
        lines += [f"  no gradient: {eq.note}" for eq in self.derivation.equations if eq.kind == "none"]
        return "\n".join(lines)

    # ------------------------------------------------------------------ text
    def _columns(self, rows) -> list[str]:
        cols = ["step", "gradient", "eq.", "‖engine‖", "‖derived‖"]
        if any(r.book is not None for r in rows):
            cols.append("‖book‖")
        cols += ["finite diff.", "rel. error", ""]
        return cols

    def _table_rows(self, rows):
        with_book = any(r.book is not None for r in rows)
        for r in rows:
            if r.fd is None:
                fd = "—"
            elif r.directions is None:
                fd = "‖·‖ " + _norm(r.fd)
            else:
                fd = f"⟨·,u⟩ {float(np.asarray(r.fd).flat[0]):.6g}"
            cells = [("" if r.step is None else str(r.step)), r.quantity, r.equations, _norm(r.engine),
                     _norm(r.reference)] + ([_norm(r.book)] if with_book else []) + [
                fd, _err(r.error), "ok" if r.ok else "FAIL"]
            yield tuple(cells)

    def _grouped(self, rows=None):
        rows = self.rows if rows is None else rows
        for section, title in self.sections.items():
            members = [r for r in rows if r.section == section]
            if members:
                yield section, title, members

    def table(self, rows=None) -> str:
        out = []
        for section, title, members in self._grouped(rows):
            cols = self._columns(members)
            body = list(self._table_rows(members))
            right = {i for i, c in enumerate(cols) if c.startswith("‖") or c in ("step", "finite diff.", "rel. error")}
            widths = [max(len(cols[i]), *(len(b[i]) for b in body)) for i in range(len(cols))]
            fmt = lambda cells: "  ".join(  # noqa: E731
                (c.rjust(w) if i in right else c.ljust(w)) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
            out += ["", title, fmt(cols), fmt(["─" * w for w in widths])]
            out += [fmt(b) for b in body]
        return "\n".join(out)

    def __str__(self) -> str:
        parts = [self.header()]
        if self.derivation is not None:
            parts.append("\n" + self.equations_text())
        parts.append(self.table())
        if self.notes:
            parts.append("\n" + "\n".join(self.notes))
        parts.append("\n" + self.summary())
        return "\n".join(parts)

    def __repr__(self) -> str:
        return (f"<Report {self.name}: {len(self.rows)} checks, "
                f"{'all passed' if self.ok else str(len(self.failures)) + ' failed'}>")

    def _table_rows_for(self, members, head):
        """The cells of ``members`` under the columns ``head`` (of the whole report)."""
        for r, cells in zip(members, self._table_rows(members)):
            if len(cells) < len(head):  # a section without book rows in a report with some
                cells = cells[:5] + ("—",) + cells[5:]
            yield r, cells

    # ------------------------------------------------------------------ HTML
    def _repr_html_(self) -> str:
        esc = html.escape
        parts = [f"<div><p><b>{esc(self.name)}</b>: {'✅ all passed' if self.ok else '❌ ' + esc(self.summary())}</p>",
                 f"<pre style='font-size:smaller'>{esc(self.header())}</pre>",
                 (f"<pre style='font-size:smaller'>{esc(self.equations_text())}</pre>" if self.derivation else ""),
                 "<table><thead><tr>"]
        head = self._columns(self.rows)
        parts += [f"<th>{esc(c)}</th>" for c in head]
        parts.append("</tr></thead><tbody>")
        for section, title, members in self._grouped():
            parts.append(f"<tr><th colspan='{len(head)}' style='text-align:left'>{esc(title)}</th></tr>")
            for r, cells in self._table_rows_for(members, head):
                style = "" if r.ok else " style='background:#fdd'"
                parts.append(f"<tr{style}>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
        parts.append("</tbody></table>")
        if self.notes:
            parts.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in self.notes) + "</ul>")
        parts.append(f"<p>{esc(self.summary())}</p></div>")
        return "".join(parts)
