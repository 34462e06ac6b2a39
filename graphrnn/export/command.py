"""Write a recurrence as standalone PyTorch or JAX code: `graphrnn export ARCH --to torch -o model.py`.

The torch file defines make_model(params) -> torch.nn.Module, whose forward(inputs) returns graphrnn's total
loss; the jax file defines loss_fn(params, inputs) on jax.lax.scan.  Both import only torch or jax, keep the
spec's parameter names and shapes, and write each equation on one line with the spec's line as a comment.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli import add_arch_argument, load_arch
from ..errors import GraphrnnError
from . import to_jax, to_torch


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_arch_argument(parser)
    parser.add_argument("--to", choices=("torch", "jax"), required=True, help="the target: PyTorch or JAX")
    parser.add_argument("-o", "--output", metavar="FILE.py",
                        help="where to write the code (default: print it on standard output)")
    parser.add_argument("--mode", choices=("teacher", "free"), default="teacher",
                        help="teacher forcing (the spec as written, default) or free running, where the "
                             "`feedback` lines feed the model's own output back")


def main(args) -> int:
    rec = load_arch(args)
    source = (to_torch if args.to == "torch" else to_jax)(rec, mode=args.mode)
    if not args.output:
        sys.stdout.write(source)
        return 0
    path = Path(args.output)
    try:
        path.write_text(source, encoding="utf-8")
    except OSError as exc:
        raise GraphrnnError(f"cannot write {path}: {exc.strerror or exc}") from None
    entry = "make_model(params)" if args.to == "torch" else "loss_fn(params, inputs)"
    print(f"wrote {path}: {rec.name} as {args.to} ({entry}; {len(rec.all_param_shapes())} parameters, "
          f"{source.count(chr(10))} lines)")
    return 0
