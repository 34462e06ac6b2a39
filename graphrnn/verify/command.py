"""Check BPTT step by step: at every step from τ down to 1, the engine's gradients beside the BPTT
equations derived from the spec (`graphrnn derive`, evaluated with numpy, independently of the engine),
the same equations fed the engine's own downstream gradients, the book's closed forms for the standard
RNN of fig. 10.3 (eqs. 10.17-10.28), and central finite differences of the loss with that node perturbed
inside the unrolled graph (sampled by default: --fd sample N; every entry: --fd all); then every
parameter's dummy copies W^(t), their sum and its total.  Each row names the derived equation it checks.
Exits 0 when every check passes, 1 (naming the first failing step and variable) when one fails.

An encoder-decoder (fig10_12; --steps TX,TY, its steps on each time axis) is checked gradient by gradient
against central differences, decoder, context C, encoder and parameters, and beside its derived BPTT
equations; a recursive net (fig10_14, over --tree) every parameter entry by entry and every tree node's
gradient against central differences.
"""

from __future__ import annotations

import argparse
import sys

from ..cli import BOOK_TREE, add_arch_argument, load_arch, one_axis_steps, parse_steps, parse_tree, refuse_tree
from .check import DTYPES, VerifyError, verify


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_arch_argument(parser)
    parser.add_argument("--steps", "-T", type=parse_steps, metavar="T",
                        help="the number of time steps τ to unroll (default 5); for an encoder-decoder TX,TY, "
                             "its steps on each time axis (default 4,3)")
    parser.add_argument("--batch", "-B", type=_positive, default=2, metavar="B",
                        help="sequences in the batch (default 2)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the random data and parameters")
    parser.add_argument("--dtype", choices=DTYPES, default="float64",
                        help="precision of the engine's run (finite differences are always float64)")
    parser.add_argument("--mode", choices=("teacher", "free", "scheduled"), default="teacher",
                        help="what is fed back where the spec says `feedback` (default: teacher forcing)")
    parser.add_argument("--fd", nargs="+", default=["sample", "1"], metavar="all|sample N",
                        help="finite differences of every entry of every gradient (all), or along N random "
                             "directions of every per-step gradient and parameter, and of the dummy copies at N "
                             "random steps (sample N; the default is sample 1)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="print only the summary and the failing rows, not every row")
    parser.add_argument("--plot", metavar="FILE.png",
                        help="also draw the gradient norm ‖∇h(t) L(τ)‖ against τ − t for the spec's W and for W "
                             "rescaled below and above σ_max = 1 (needs matplotlib)")
    parser.add_argument("--plot-steps", type=_positive, default=40, metavar="N",
                        help="steps of the sequence in the plot (default 40)")
    parser.add_argument("--tree", metavar="TREE",
                        help=f"a recursive net (fig10_14) is checked over this tree: nested pairs of leaf numbers "
                             f"(default {BOOK_TREE!r}, as printed)")
    parser.add_argument("--export", metavar="FILE.npz",
                        help="also write the parameters, data, loss and every gradient of the run to a .npz file")


ENCDEC_STEPS = (4, 3)


def _one_axis_only(args, what: str) -> None:
    """The options of the step-by-step check of a recurrence over one time axis, refused for ``what``."""
    extra = [flag for flag, given in (("--dtype", args.dtype != "float64"), ("--mode", args.mode != "teacher"),
                                      ("--fd", args.fd != ["sample", "1"]), ("--plot", args.plot),
                                      ("--export", args.export), ("--quiet", args.quiet)) if given]
    if extra:
        raise VerifyError(f"{', '.join(extra)}: for recurrences over one time axis; {args.arch} is {what}, checked "
                          f"in float64 against central differences (give --steps, --batch, --seed"
                          f"{', --tree' if 'recursive' in what else ''})")


def verify_encdec(args) -> int:
    """``graphrnn verify`` of an encoder-decoder: :func:`~graphrnn.verify.encdec.check_encdec` on a run, and
    the run's gradients beside the derived equations (:func:`~graphrnn.derive.encdec.derive_encdec`)."""
    import numpy as np

    from .. import zoo
    from ..cli import _sizes, two_axis_steps
    from ..derive.derivation import DeriveError
    from ..derive.encdec import derive_encdec
    from .encdec import check_encdec

    _one_axis_only(args, "an encoder-decoder")
    if args.tree:
        raise VerifyError(f"--tree is for recursive nets (fig10_14); {args.arch} is an encoder-decoder: give "
                          f"--steps TX,TY")
    model = zoo.load_encdec(args.arch, sizes=_sizes(args.size))
    steps = two_axis_steps(args, ENCDEC_STEPS)
    data = model.random_inputs(steps, batch=args.batch, seed=args.seed)
    run = model.run(data, model.init_params(seed=args.seed))
    report = check_encdec(run, seed=args.seed)
    print(f"{model.name}: tau_x = {steps[0]} encoder steps, tau_y = {steps[1]} decoder steps, batch {args.batch}, "
          f"seed {args.seed}; loss {run.loss:.10g}")
    print(report.text())
    ok = report.ok
    try:
        derived = derive_encdec(model).evaluate(run)
    except DeriveError as exc:
        print(f"derived equations: not compared ({exc})")
    else:
        keys = [k for k in run.grads if k in derived]
        worst = max((float(np.max(np.abs(np.asarray(derived[k]) - np.asarray(run.grads[k]))))
                     / max(float(np.max(np.abs(run.grads[k]))), 1e-12) for k in keys), default=0.0)
        agree = bool(keys) and worst < 1e-8
        print(f"derived equations (`graphrnn derive {args.arch}`, evaluated with numpy): {len(keys)} gradients, "
              f"worst relative difference from the engine {worst:.1e}: {'all agree' if agree else 'FAILED'}")
        ok = ok and agree
    if not ok:
        first = report.first_failure
        where = f"first failure at {first.quantity}" if first is not None else "the derived equations disagree"
        print(f"graphrnn verify: FAILED: {model.name}: {where}", file=sys.stderr)
        return 1
    return 0


def verify_recursive(args) -> int:
    """``graphrnn verify`` of a recursive net: :func:`~graphrnn.verify.tree.verify_tree` over ``--tree``."""
    from .. import zoo
    from ..cli import _sizes
    from .tree import verify_tree

    _one_axis_only(args, "a recursive net")
    if args.steps is not None:
        raise VerifyError(f"{args.arch} is a recursive net: it runs over a tree, not over steps; give --tree "
                          f"'{BOOK_TREE}' instead of --steps")
    rec = zoo.load_tree(args.arch, sizes=_sizes(args.size))
    report = verify_tree(rec, parse_tree(args.tree or BOOK_TREE), batch=args.batch, seed=args.seed)
    print(report.text())
    if not report.ok:
        print(f"graphrnn verify: FAILED: {rec.name}: worst relative error {report.worst:.1e}", file=sys.stderr)
        return 1
    return 0


def main(args) -> int:
    from .. import zoo

    kind = zoo.kind_of(args.arch)
    if kind == "encdec":
        return verify_encdec(args)
    if kind == "tree":
        return verify_recursive(args)
    refuse_tree(args, VerifyError)
    steps = one_axis_steps(args, 5)
    if steps < 1:
        raise VerifyError(f"--steps must be a whole number of at least 1; got {steps}")
    if args.plot:  # say so before the check runs, not after
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            from .plot import INSTALL_HINT

            raise VerifyError(f"--plot needs matplotlib: {INSTALL_HINT}") from None
    rec = load_arch(args)
    if args.plot:
        from .plot import recurrent_params

        recurrent_params(rec)  # no recurrent matrix to rescale: say so now
    report = verify(rec, steps=steps, batch=args.batch, seed=args.seed, dtype=args.dtype, mode=args.mode,
                    fd=" ".join(args.fd), progress=None)
    if args.quiet:
        print(report.header())
        if report.failures:
            print(report.table(report.failures))
        print("\n" + report.summary())
    else:
        print(report)
    if args.export:
        from .export import export_npz

        arrays = export_npz(args.export, report)
        print(f"wrote {args.export} ({len(arrays)} arrays)")
    if args.plot:
        from .plot import plot_gradient_norms

        plot_gradient_norms(rec, args.plot, steps=args.plot_steps, seed=args.seed)
        print(f"wrote {args.plot}")
    if not report.ok:
        first = report.first_failure
        print(f"graphrnn verify: FAILED: {report.name}: first failure at {first.failure(report.tolerance)}",
              file=sys.stderr)
        return 1
    return 0
