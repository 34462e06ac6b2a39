"""The zoo: the book's architectures as spec files (data, not code).

>>> from graphrnn import zoo
>>> "fig10_3" in zoo.names()
True
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SpecError
from ..recurrence import Recurrence

HERE = Path(__file__).parent


def names() -> list[str]:
    """The zoo's architectures, in the book's order."""
    def order(p: Path):
        stem = p.stem
        number = stem[len("fig10_"):].rstrip("abcdefghijklmnopqrstuvwxyz")  # fig10_13a: figure 13, panel a
        if stem.startswith("fig10_") and number.isdigit():
            return (0, int(number), stem)
        return (1, 0, stem)

    return [p.stem for p in sorted(HERE.glob("*.rnn"), key=order)]


def tree_names() -> list[str]:
    """The zoo's recursive networks (§10.6), spec files ending in ``.tree``: they unroll over a tree."""
    return sorted(p.stem for p in HERE.glob("*.tree"))


def load_tree(arch: str, sizes: dict[str, int] | None = None):
    """A recursive network by name (``"fig10_14"``) or a ``.tree`` spec file by path
    (a :class:`graphrnn.runtime.tree.RecursiveNet`: the notation, and ``run``)."""
    from ..runtime.tree import RecursiveNet as TreeRecurrence

    if arch in tree_names():
        return TreeRecurrence((HERE / f"{arch}.tree").read_text(encoding="utf-8"), source=f"{arch}.tree",
                              sizes=sizes, name=arch)
    candidate = Path(arch)
    if candidate.is_file():
        return TreeRecurrence.from_file(candidate, sizes=sizes)
    raise SpecError(f"no recursive network {arch!r} in the zoo (it has: {', '.join(tree_names())}); "
                    f"or give the path of a .tree spec file")


def path(name: str) -> Path:
    p = HERE / f"{name}.rnn"
    if name not in names():
        raise SpecError(f"no architecture {name!r} in the zoo (it has: {', '.join(names())}); "
                        f"or give the path of a .rnn spec file")
    return p


def text(name: str) -> str:
    return path(name).read_text(encoding="utf-8")


def load(arch: str, sizes: dict[str, int] | None = None) -> Recurrence:
    """A zoo architecture by name (``"fig10_3"``), or a spec file by path."""
    if arch in names():
        return Recurrence(text(arch), source=f"{arch}.rnn", sizes=sizes, name=arch)
    candidate = Path(arch)
    if candidate.suffix or "/" in arch or candidate.exists():
        if not candidate.is_file():
            raise SpecError(f"no spec file at {arch!r}")
        return Recurrence.from_file(candidate, sizes=sizes)
    raise SpecError(f"no architecture {arch!r} in the zoo (it has: {', '.join(names())}); "
                    f"or give the path of a .rnn spec file")
