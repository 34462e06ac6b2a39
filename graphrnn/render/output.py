"""Writing drawings: SVG, PNG, PDF through graphviz's ``dot`` program, DOT always.

>>> import graphrnn as gr, tempfile, pathlib
>>> d = gr.render.draw_folded(gr.load("fig10_2"))
>>> path = pathlib.Path(tempfile.mkdtemp()) / "fig10_2.dot"
>>> save(d, path).read_text().startswith("digraph")
True
"""

from __future__ import annotations

import shutil
from pathlib import Path

import graphviz

from ..errors import RenderError

#: suffix -> graphviz output format
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}

INSTALL = ("install graphviz's programs: `apt-get install graphviz` (Debian, Ubuntu), `brew install graphviz` "
           "(macOS), `conda install -c conda-forge graphviz` or https://graphviz.org/download/")


def dot_available(engine: str = "dot") -> bool:
    """Whether graphviz's ``dot`` program (or another layout ``engine``, e.g. ``neato``) is on the PATH."""
    return shutil.which(engine) is not None


def missing_dot(what: str = "this drawing", engine: str = "dot") -> RenderError:
    return RenderError(f"graphviz's `{engine}` program is not installed (or not on the PATH), so {what} cannot be "
                       f"laid out; {INSTALL}. DOT needs no program: write FILE.dot instead")


class Drawing(graphviz.Digraph):
    """A ``graphviz.Digraph`` that remembers its :class:`~graphrnn.render.scene.Scene` and saves by suffix.

    It displays inline in Jupyter like any Digraph; without ``dot`` it shows its
    DOT source and how to install graphviz instead of raising.
    """

    scene = None
    #: 2 for a drawing whose edges carry their own curves (``pos``): neato then only draws (``neato -n2``)
    neato_no_op = None

    def pipe(self, *args, **kwargs):
        if self.neato_no_op and len(args) < 4:  # not passed positionally
            kwargs.setdefault("neato_no_op", self.neato_no_op)
        return super().pipe(*args, **kwargs)

    def render(self, *args, **kwargs):
        if self.neato_no_op and len(args) < 8:
            kwargs.setdefault("neato_no_op", self.neato_no_op)
        return super().render(*args, **kwargs)

    def save(self, path, format: str | None = None) -> Path:  # noqa: A002 - graphviz's own word
        """Write this drawing to ``path`` (see :func:`save`)."""
        return save(self, path, format)

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        if not dot_available(self.engine):
            return {"text/plain": f"{missing_dot(engine=self.engine)}\n\n{self.source}"}
        return super()._repr_mimebundle_(include, exclude, **kwargs)


def render_bytes(drawing, fmt: str) -> bytes:
    """``drawing`` laid out by ``dot`` in format ``fmt`` (``"svg"``, ``"png"``, ``"pdf"``)."""
    if fmt == "dot":
        return drawing.source.encode("utf-8")
    engine = getattr(drawing, "engine", "dot")  # fig. 10.11's pinned layout uses neato
    if not dot_available(engine):
        raise missing_dot(f"{fmt.upper()} output", engine)
    try:
        return drawing.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise missing_dot(f"{fmt.upper()} output", engine) from None
    except graphviz.CalledProcessError as exc:
        err = exc.stderr.decode("utf-8", "replace") if isinstance(exc.stderr, bytes) else str(exc.stderr or exc)
        raise RenderError(f"graphviz's dot could not lay out this drawing: {err.strip()}") from None


def save(drawing, path, format: str | None = None) -> Path:  # noqa: A002
    """Write ``drawing`` (any graphviz Digraph) to ``path``; the format comes from the suffix.

    ``.svg``, ``.png`` and ``.pdf`` need graphviz's ``dot`` program (a
    :class:`~graphrnn.errors.RenderError` says how to install it); ``.dot`` (or
    ``.gv``) writes the DOT source and needs nothing.  Returns the path written.
    """
    path = Path(path)
    fmt = format or FORMATS.get(path.suffix.lower())
    if fmt not in FORMATS.values():
        raise RenderError(f"cannot tell the format of {str(path)!r} from its suffix; use one of "
                          f"{', '.join(FORMATS)} (or pass format=)")
    data = render_bytes(drawing, fmt)
    if path.parent and not path.parent.exists():
        raise RenderError(f"the folder {str(path.parent)!r} does not exist")
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise RenderError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None
    return path
