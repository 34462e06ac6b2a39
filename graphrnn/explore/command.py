"""Write a self-contained HTML page that steps through one run's forward and backward pass, node by node,
over the unfolded drawing: values, gradients, the edges they came back along, the dummy copies W(t) adding
up to ∇W, each gradient's derived equation with one entry's numbers plugged in, and that entry checked
three ways: the engine, the derived equation, a finite difference.
Open it in any browser, also offline: arrow keys step, space plays, the address keeps the position.

examples:
  graphrnn explore fig10_3 -o explore.html
  graphrnn explore fig10_3 --steps 8 --batch 3 --seed 1 -o explore.html
  graphrnn explore lstm --steps 4 --size H=4 -o lstm.html
"""

from __future__ import annotations

import argparse
import sys

from ..cli import add_arch_argument, load_arch
from . import Explorer
from .trace import MAX_STEPS, build_trace


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_arch_argument(parser)
    parser.add_argument("--steps", "-T", type=_whole, default=5, metavar="T",
                        help=f"time steps to unroll, at most {MAX_STEPS} (default 5)")
    parser.add_argument("--batch", "-B", type=_whole, default=2, metavar="B", help="sequences in the batch (default 2)")
    parser.add_argument("--seed", type=_whole, default=0, metavar="S", help="seed of the random data and parameters")
    parser.add_argument("--no-checks", action="store_true",
                        help="leave out the checks of each gradient (their finite differences take most of "
                             "the time of a long unroll)")
    parser.add_argument("-o", "--output", required=True, metavar="PAGE.html", help="where to write the page")


def main(args) -> int:
    rec = load_arch(args)
    page = Explorer(build_trace(rec, steps=args.steps, batch=args.batch, seed=args.seed, checks=not args.no_checks))
    path = page.save(args.output)
    checks = page.trace.all_checks()
    derived = [c for c in checks if c.derived is not None]
    print(f"wrote {path}: {len(page.trace.forward)} forward and {len(page.trace.backward)} backward steps of "
          f"{rec.name}, T = {page.trace.T}" + (f"; {sum(c.ok for c in checks)}/{len(checks)} gradient entries agree "
                                              f"with finite differences" if checks else "")
          + (f" and {len(derived)} with the derived equations" if derived else ""))
    if page.trace.derive_note:
        print(page.trace.derive_note)
    if checks and not page.ok:
        bad = next(c for c in checks if not c.ok)
        derived_text = f", derived {bad.derived!r}" if bad.derived is not None else ""
        print(f"graphrnn explore: a check FAILED: {bad.key}{list(bad.entry)}: engine {bad.engine!r}, finite "
              f"difference {bad.fd!r}{derived_text}", file=sys.stderr)
        return 1
    return 0
