"""Step through BPTT in the browser: one self-contained HTML page per run.

:func:`explore` runs a recurrence on random data and writes a page that walks
through the forward pass and then the backward pass one node at a time, over
graphrnn's own unfolded drawing: each node's value (a heatmap of its column over
the batch, and its norm), each gradient with the edges it came back along (as
wide as in the gradient-path drawings), the dummy copies W^(t) filling up and
adding up to ∇W (§10.2.2), and for each gradient one entry checked three ways:
the engine, the derived equation (:mod:`graphrnn.derive`, with that entry's terms
plugged in) and a finite difference.  Arrow keys step, space plays, the address keeps the position.

The page is one file: script, styles, data and SVG inline, nothing fetched, so it
works from ``file://`` and offline.  In Jupyter an :class:`Explorer` shows itself
inline.  Also ``graphrnn explore ARCH --steps T -o page.html``.

>>> import graphrnn as gr
>>> from graphrnn.explore import explore
>>> page = explore(gr.load("fig10_3"), steps=3, batch=2, seed=0)   # also gr.explore
>>> page.ok, len(page.trace.backward)
(True, 9)
>>> explore(gr.load("fig10_3"), steps=80)  # doctest: +ELLIPSIS
Traceback (most recent call last):
    ...
graphrnn.explore.trace.ExploreError: steps = 80 is too many for the explorer: ...
"""

from __future__ import annotations

import html
from pathlib import Path

from .trace import MAX_STEPS, Check, ExploreError, Trace, build_trace

__all__ = ["explore", "Explorer", "ExploreError", "MAX_STEPS", "Trace", "Check"]


class Explorer:
    """An explorer page: ``.html`` (the whole page), ``.save(path)``, ``.trace`` (its numbers).

    Shown inline in Jupyter (in a frame of its own, so its script and keys stay its own).
    """

    #: the frame's height in a notebook, in pixels
    HEIGHT = 820

    def __init__(self, trace: Trace):
        from .page import page_html

        self.trace = trace
        self.html = page_html(trace)

    @property
    def ok(self) -> bool:
        """Whether every checked entry agrees: the engine with finite differences (and the derived equations)."""
        return all(c.ok for c in self.trace.all_checks())

    def save(self, path) -> Path:
        """Write the page to ``path`` (``.html``); returns the path."""
        path = Path(path)
        if path.parent and not path.parent.exists():
            raise ExploreError(f"the folder {str(path.parent)!r} does not exist")
        try:
            path.write_text(self.html, encoding="utf-8")
        except OSError as exc:
            raise ExploreError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
        return path

    def _repr_html_(self) -> str:
        return (f'<iframe srcdoc="{html.escape(self.html, quote=True)}" style="width:100%;height:{self.HEIGHT}px;'
                f'border:1px solid #ddd" title="graphrnn explore"></iframe>')

    def __repr__(self) -> str:
        tr = self.trace
        return (f"<Explorer of {tr.rec.name}: T={tr.T}, {len(tr.forward)} forward and {len(tr.backward)} backward "
                f"steps, checks {'pass' if self.ok else 'FAIL'}>")


def explore(rec, steps: int = 5, batch: int = 2, seed: int = 0, *, sizes: dict | None = None,
            checks: bool = True) -> Explorer:
    """The explorer page of ``rec`` (a :class:`~graphrnn.Recurrence`, or a zoo name / spec path with ``sizes``).

    Runs ``rec`` for ``steps`` steps (at most :data:`MAX_STEPS`) on a random batch of
    ``batch`` sequences with random parameters (``seed``).  ``checks=False`` leaves out
    the finite differences (the page then shows the engine's numbers only).
    """
    if isinstance(rec, (str, Path)):
        from ..zoo import load

        rec = load(str(rec), sizes=sizes or {})
    elif sizes:
        raise ExploreError("sizes= applies when the architecture is given by name; load the Recurrence with "
                           "gr.load(name, sizes=...) instead")
    return Explorer(build_trace(rec, steps=steps, batch=batch, seed=seed, checks=checks))
