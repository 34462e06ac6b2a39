"""Check BPTT step by step: at every step from τ down to 1, the engine's gradients beside the BPTT
equations derived from the spec (`graphrnn derive`, evaluated with numpy, independently of the engine),
the same equations fed the engine's own downstream gradients, the book's closed forms for the standard
RNN of fig. 10.3 (eqs. 10.17-10.28), and central finite differences of the loss with that node perturbed
inside the unrolled graph (sampled by default: --fd sample N; every entry: --fd all); then every
parameter's dummy copies W^(t), their sum and its total.  Each row names the derived equation it checks.
Exits 0 when every check passes, 1 (naming the first failing step and variable) when one fails.
"""

from __future__ import annotations

import argparse
import sys

from ..cli import add_arch_argument, load_arch
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
    parser.add_argument("--steps", "-T", type=_positive, default=5, metavar="T",
                        help="the number of time steps τ to unroll (default 5)")
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
    parser.add_argument("--export", metavar="FILE.npz",
                        help="also write the parameters, data, loss and every gradient of the run to a .npz file")


def main(args) -> int:
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
    report = verify(rec, steps=args.steps, batch=args.batch, seed=args.seed, dtype=args.dtype, mode=args.mode,
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
