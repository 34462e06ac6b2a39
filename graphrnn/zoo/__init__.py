"""The zoo: the book's architectures as spec files (data, not code).

Three kinds of model live here, each with its own loader:

* **sequence** models (``*.rnn``): one recurrence over one time axis, figs 10.2-10.11 and
  10.13, an LSTM, a GRU; :func:`load` gives a :class:`~graphrnn.recurrence.Recurrence`;
* **encoder-decoders** (``encdec/*.rnn``, fig. 10.12, §10.4): two time axes joined by a
  context; :func:`load_encdec` gives an :class:`~graphrnn.recurrence.encdec.EncoderDecoder`;
* **recursive nets** (``*.tree``, fig. 10.14, §10.6): one set of weights over a tree;
  :func:`load_tree` gives a :class:`~graphrnn.runtime.tree.RecursiveNet`.

:func:`catalog` lists them all in the book's order.

>>> from graphrnn import zoo
>>> "fig10_3" in zoo.names()
True
>>> [(e.name, e.kind) for e in zoo.catalog() if e.name.startswith(("fig10_11", "fig10_12", "fig10_14"))]
[('fig10_11', 'sequence'), ('fig10_12', 'encdec'), ('fig10_12_init', 'encdec'), ('fig10_12_input', 'encdec'), ('fig10_14', 'tree')]
>>> zoo.kind_of("fig10_12")
'encdec'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpecError
from ..recurrence import Recurrence

HERE = Path(__file__).parent
ENCDEC = HERE / "encdec"

#: the kinds of model, and how `graphrnn list` and the error messages name them
KINDS = {"sequence": "sequence model", "encdec": "encoder-decoder", "tree": "recursive net"}
#: the loader of each kind, as the error messages name it
LOADERS = {"sequence": "gr.load", "encdec": "gr.zoo.load_encdec", "tree": "gr.zoo.load_tree"}
_FIGURE = re.compile(r"^fig10_(\d+)([a-z]?)(?:_(.*))?$")


def _order(stem: str):
    """The book's order: figures by number, then panel (10.13a, b, c), then variants (fig10_12_init);
    the other architectures (gru, halt, lstm) after the figures, by name."""
    m = _FIGURE.match(stem)
    if m:
        return (0, int(m.group(1)), m.group(2), m.group(3) or "")
    return (1, 0, "", stem)


def names() -> list[str]:
    """The zoo's sequence models (one time axis, :func:`load`), in the book's order."""
    return sorted((p.stem for p in HERE.glob("*.rnn")), key=_order)


def encdec_names() -> list[str]:
    """The zoo's encoder-decoders (fig. 10.12, §10.4: two time axes, :func:`load_encdec`), in the book's order."""
    return sorted((p.stem for p in ENCDEC.glob("*.rnn")), key=_order)


def tree_names() -> list[str]:
    """The zoo's recursive networks (§10.6), spec files ending in ``.tree``: they unroll over a tree."""
    return sorted((p.stem for p in HERE.glob("*.tree")), key=_order)


@dataclass(frozen=True)
class Entry:
    """One model of the zoo: its name, its kind (``"sequence"``, ``"encdec"``, ``"tree"``) and its title."""

    name: str
    kind: str
    title: str


def _title(path: Path) -> str:
    first = path.read_text(encoding="utf-8").split("\n", 1)[0].strip()
    return first.lstrip("#").strip() if first.startswith("#") else ""


def catalog() -> list[Entry]:
    """Every model of the zoo, of every kind, in the book's order (what ``graphrnn list`` prints)."""
    entries = [Entry(n, "sequence", _title(HERE / f"{n}.rnn")) for n in names()]
    entries += [Entry(n, "encdec", _title(ENCDEC / f"{n}.rnn")) for n in encdec_names()]
    entries += [Entry(n, "tree", _title(HERE / f"{n}.tree")) for n in tree_names()]
    return sorted(entries, key=lambda e: _order(e.name))


def kind_of(arch: str) -> str:
    """``"sequence"``, ``"encdec"`` or ``"tree"``: the kind of a zoo name or of a spec file (a ``.tree``
    file is a recursive net; a file with ``encoder over x:`` sections an encoder-decoder).  A name that
    is neither in the zoo nor a file is ``"sequence"`` (its loader then says what is wrong)."""
    if arch in encdec_names():
        return "encdec"
    if arch in tree_names():
        return "tree"
    if arch in names():
        return "sequence"
    candidate = Path(arch)
    if candidate.suffix == ".tree":
        return "tree"
    if candidate.is_file():
        from ..recurrence.encdec import is_encdec

        try:
            text = candidate.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return "sequence"
        if is_encdec(text):
            return "encdec"
    return "sequence"


def describe_kind(kind: str) -> str:
    """``"an encoder-decoder (two time axes, fig. 10.12)"``: a kind of model, as the messages say it."""
    return {"sequence": "a recurrence over one time axis",
            "encdec": "an encoder-decoder (two time axes, fig. 10.12)",
            "tree": "a recursive net (over a tree, fig. 10.14)"}[kind]


def _wrong_loader(arch: str, kind: str, loader: str) -> SpecError:
    return SpecError(f"{arch!r} is {describe_kind(kind)}, which {loader} does not load; "
                     f"load it with {LOADERS[kind]}({arch!r})")


def load_tree(arch: str, sizes: dict[str, int] | None = None):
    """A recursive network by name (``"fig10_14"``) or a ``.tree`` spec file by path
    (a :class:`graphrnn.runtime.tree.RecursiveNet`: the notation, and ``run``)."""
    from ..runtime.tree import RecursiveNet as TreeRecurrence

    if arch in tree_names():
        return TreeRecurrence((HERE / f"{arch}.tree").read_text(encoding="utf-8"), source=f"{arch}.tree",
                              sizes=sizes, name=arch)
    kind = kind_of(arch)
    if kind != "tree" and (arch in names() or arch in encdec_names() or Path(arch).is_file()):
        raise _wrong_loader(arch, kind, "gr.zoo.load_tree")
    candidate = Path(arch)
    if candidate.is_file():
        return TreeRecurrence.from_file(candidate, sizes=sizes)
    raise SpecError(f"no recursive network {arch!r} in the zoo (it has: {', '.join(tree_names())}); "
                    f"or give the path of a .tree spec file")


def load_encdec(arch: str, sizes: dict[str, int] | None = None):
    """An encoder-decoder (fig. 10.12, §10.4) by name (``"fig10_12"``, ``"fig10_12_init"``,
    ``"fig10_12_input"``) or from the path of a spec file with ``encoder over ...:`` and
    ``decoder over ...:`` sections (an :class:`~graphrnn.recurrence.encdec.EncoderDecoder`).

    >>> load_encdec("fig10_12").conditioning
    {'C': ('initial state of s', 'input at every step')}
    """
    from ..recurrence.encdec import EncoderDecoder

    if arch in encdec_names():
        return EncoderDecoder((ENCDEC / f"{arch}.rnn").read_text(encoding="utf-8"), source=f"{arch}.rnn",
                              sizes=sizes, name=arch)
    kind = kind_of(arch)
    if kind != "encdec" and (arch in names() or arch in tree_names() or Path(arch).is_file()):
        raise _wrong_loader(arch, kind, "gr.zoo.load_encdec")
    candidate = Path(arch)
    if candidate.is_file():
        return EncoderDecoder.from_file(candidate, sizes=sizes)
    raise SpecError(f"no encoder-decoder {arch!r} in the zoo (it has: {', '.join(encdec_names())}); or give "
                    f"the path of a .rnn spec file with `encoder over ...:` and `decoder over ...:` sections")


def path(name: str) -> Path:
    p = HERE / f"{name}.rnn"
    if name not in names():
        kind = kind_of(name)
        if kind != "sequence":
            raise _wrong_loader(name, kind, "gr.zoo.text")
        raise SpecError(f"no architecture {name!r} in the zoo (it has: {', '.join(names())}); "
                        f"or give the path of a .rnn spec file")
    return p


def text(name: str) -> str:
    return path(name).read_text(encoding="utf-8")


def load(arch: str, sizes: dict[str, int] | None = None) -> Recurrence:
    """A zoo architecture over one time axis by name (``"fig10_3"``), or a spec file by path.

    An encoder-decoder (``"fig10_12"``) or a recursive net (``"fig10_14"``) is not one: the
    error names its loader, :func:`load_encdec` or :func:`load_tree`.
    """
    if arch in names():
        return Recurrence(text(arch), source=f"{arch}.rnn", sizes=sizes, name=arch)
    kind = kind_of(arch)
    if kind != "sequence":
        raise _wrong_loader(arch, kind, "gr.load (gr.zoo.load)")
    candidate = Path(arch)
    if candidate.suffix or "/" in arch or candidate.exists():
        if not candidate.is_file():
            raise SpecError(f"no spec file at {arch!r}")
        return Recurrence.from_file(candidate, sizes=sizes)
    raise SpecError(f"no architecture {arch!r} in the zoo (it has: {', '.join(names())}); "
                    f"or give the path of a .rnn spec file; the zoo's encoder-decoders "
                    f"({', '.join(encdec_names())}) load with gr.zoo.load_encdec, its recursive nets "
                    f"({', '.join(tree_names())}) with gr.zoo.load_tree")
