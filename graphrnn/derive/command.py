"""Derive the BPTT equations of a recurrence symbolically and print them: for every per-step variable,
∇v(t) L as the sum over v's consumers (eq. 10.20), with the boundary cases (t = τ, ...) written out; for
every parameter, the sum over t of its dummy copies' terms (eqs. 10.22-10.28).  For fig. 10.3 the
equations carry the book's numbers (10.17-10.28).  Formats: Unicode text, LaTeX (an amsmath align
environment, one numbered line per equation) or markdown with $$ math.

An encoder-decoder (fig10_12) is derived on its two time axes: the decoder's equations with C as a context,
∇C L, and the encoder's seeded with ∇C L (text only).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..cli import add_arch_argument, load_arch
from .derivation import DeriveError, derive

FORMATS = ("text", "latex", "markdown")


def add_arguments(parser) -> None:
    add_arch_argument(parser)
    parser.add_argument("--format", "-f", choices=FORMATS, default="text",
                        help="text (Unicode, the default), latex (an amsmath align) or markdown ($$ math)")
    parser.add_argument("--mode", choices=("teacher", "free", "scheduled"), default="teacher",
                        help="what is fed back where the spec says `feedback` (default: teacher forcing)")
    parser.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of printing")


def _encdec_text(args) -> str:
    from .. import zoo
    from ..cli import _sizes
    from .encdec import derive_encdec

    extra = [f"--format {args.format}"] * (args.format != "text") + [f"--mode {args.mode}"] * (args.mode != "teacher")
    if extra:
        raise DeriveError(f"{args.arch} is an encoder-decoder: its derivation is written as text, in teacher "
                          f"forcing; leave out {' and '.join(extra)}")
    return derive_encdec(zoo.load_encdec(args.arch, sizes=_sizes(args.size))).text()


def main(args) -> int:
    from .. import zoo

    kind = zoo.kind_of(args.arch)
    if kind == "encdec":
        out = _encdec_text(args)
    elif kind == "tree":  # back-propagation through the tree's structure (derive/tree.py)
        from ..cli import _sizes
        from .tree import render

        if args.mode != "teacher":
            raise DeriveError(f"{args.arch} is a recursive net: it has no modes; leave out --mode")
        out = render(zoo.load_tree(args.arch, sizes=_sizes(args.size)), args.format)
    else:
        d = derive(load_arch(args), mode=args.mode)
        out = {"text": d.text, "latex": d.latex, "markdown": d.markdown}[args.format]()
    if not out.endswith("\n"):
        out += "\n"
    if args.output:
        try:
            Path(args.output).write_text(out, encoding="utf-8")
        except OSError as exc:
            raise DeriveError(f"cannot write {args.output!r}: {exc}") from None
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(out)
    return 0
