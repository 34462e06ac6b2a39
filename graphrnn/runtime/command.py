"""Run a recurrence and print or save every value: `graphrnn run ARCH --steps 5 [-o values.npz]`.

The data is random (seeded; or read from an .npz with --data), the parameters are `init_params(seed)`.
A spec with a loss runs forward and backward; one without (fig. 10.2) runs forward only.  Without -o, a
compact table shows each computed variable at each step (first sequence of the batch).  With -o FILE.npz,
every value is saved, loadable with numpy.load(FILE, allow_pickle=False):

    VAR          a computed variable over the steps, (T, rows, B) (or (T,) for a loss per step); a
                 variable of the last step only (o[tau]) is (rows, B); in free running, the fed values
                 (y_fed: (T, B) class labels)
    data:X       the data the run read (inputs, targets, contexts)
    param:W      the parameters
    grad:W       gradients of the loss (parameters and computed variables; with a loss only)
    loss         the total loss (with a loss only)
    lengths      the sequence lengths given with --lengths
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..cli import add_arch_argument, load_arch
from ..errors import DataError, GraphrnnError
from ..recurrence.unroll import key

#: at most this many numbers of one value are printed in the table
SHOWN = 6


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_arch_argument(parser)
    parser.add_argument("--steps", type=int, default=5, metavar="T", help="number of steps (default 5)")
    parser.add_argument("--batch", type=int, default=1, metavar="B", help="sequences in the batch (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random data and parameters (default 0)")
    parser.add_argument("--mode", choices=("teacher", "free", "scheduled"), default="teacher",
                        help="teacher forcing (default), or free running / scheduled sampling for a spec "
                             "with `feedback`")
    parser.add_argument("--data", metavar="FILE.npz",
                        help="read the data from this .npz (one array per input/target/context, as rec.run "
                             "takes them) instead of random data")
    parser.add_argument("--lengths", metavar="N,N,...",
                        help="the length of each sequence of the batch (variable-length batch, see "
                             "docs/lengths.md), e.g. --lengths 5,3")
    parser.add_argument("--forward-only", action="store_true",
                        help="do not back-propagate even if the spec has a loss")
    parser.add_argument("-o", "--output", metavar="FILE.npz",
                        help="save every value as .npz (default: print a table)")


def _lengths(text):
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise GraphrnnError(f"--lengths takes whole numbers separated by commas, e.g. --lengths 5,3; "
                            f"got {text!r}") from None


def _data(rec, args):
    if args.data is None:
        if args.steps < 1 or args.batch < 1:
            raise GraphrnnError(f"--steps and --batch must be at least 1 (got {args.steps} and {args.batch})")
        return rec.random_inputs(args.steps, batch=args.batch, seed=args.seed)
    try:
        with np.load(args.data, allow_pickle=False) as found:
            return {name: found[name] for name in found.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the data file {args.data!r}: {exc}") from None


def collect(run, data: dict, params: dict) -> dict[str, np.ndarray]:
    """Every value of ``run`` (given ``data`` and ``params``) as arrays keyed as documented in this
    module (what ``-o`` saves)."""
    rec, T = run.rec, run.T
    out: dict[str, np.ndarray] = {}
    for name, var in rec.variables.items():
        if var.kind == "fed":  # free running's fed values (only in that mode), as class labels or columns
            if key(name, 1) in run.fed:
                out[name] = np.stack([np.asarray(run.fed[key(name, t)]) for t in range(1, T + 1)])
            continue
        if var.kind != "computed":
            continue
        if var.anchor == "tau":
            got = run.values.get(key(name, T))
            if got is not None:
                out[name] = np.asarray(got)
        else:
            out[name] = np.stack([np.asarray(run.values[key(name, t)]) for t in range(1, T + 1)])
    for name, value in data.items():
        out[f"data:{name}"] = np.asarray(value)
    for name, value in params.items():
        out[f"param:{name}"] = np.asarray(value)
    if len(run.grads):
        for name in rec.all_param_shapes():
            out[f"grad:{name}"] = np.asarray(run.grads[name])
        for name, var in rec.variables.items():
            if var.kind == "computed" and var.anchor == "t":
                out[f"grad:{name}"] = np.stack([np.asarray(run.grads[key(name, t)]) for t in range(1, T + 1)])
        out["loss"] = np.asarray(run.loss)
    return out


def _short(value) -> str:
    flat = np.asarray(value, dtype=float).ravel()
    text = " ".join(f"{v: .4f}" for v in flat[:SHOWN])
    return f"[{text}{' ...' if flat.size > SHOWN else ''}]"


def table(run, lengths=None) -> str:
    """A compact table: each computed variable at each step, for the first sequence of the batch."""
    rec, T = run.rec, run.T
    names = [n for n, v in rec.variables.items() if v.kind == "computed"]
    batch = next((np.shape(run.values[key(n, T)])[-1] for n in names
                  if rec.variables[n].rows is not None and key(n, T) in run.values), 1)
    what = f"loss {run.loss:.6g}" if rec.losses and len(run.grads) else (
        "forward only" + ("" if rec.losses else " (no loss)"))
    lines = [f"{rec.name}: {T} steps, batch {batch}, {run.mode} mode, {what}"
             + (f", lengths {list(lengths)}" if lengths is not None else ""),
             "values of sequence 0 (first column):"]
    width = max(len(key(n, T)) for n in names)
    for t in range(1, T + 1):
        for name in names:
            node = key(name, t)
            if node not in run.values:
                continue
            value = np.asarray(run.values[node])
            shown = f"{float(value):.6g} (summed over the batch)" if value.ndim == 0 else _short(
                value[..., 0] if value.ndim >= 1 else value)
            lines.append(f"  {node:<{width}}  {shown}")
    return "\n".join(lines)


def main(args) -> int:
    rec = load_arch(args)
    data = _data(rec, args)
    lengths = _lengths(args.lengths)
    options = {"backward": False} if args.forward_only else {}
    if lengths is not None:
        options["lengths"] = lengths
    params = rec.init_params(seed=args.seed)
    run = rec.run(data, params=params, mode=args.mode, seed=args.seed, **options)
    if not args.output:
        print(table(run, lengths))
        return 0
    arrays = collect(run, data, params)
    if lengths is not None:
        arrays["lengths"] = np.asarray(lengths)
    path = Path(args.output)
    try:
        with path.open("wb") as handle:
            np.savez(handle, **arrays)
    except OSError as exc:
        raise GraphrnnError(f"cannot write {path}: {exc.strerror or exc}") from None
    print(f"wrote {path}: {len(arrays)} arrays of {rec.name} over {run.T} steps "
          f"({'forward and backward' if len(run.grads) else 'forward only'})")
    return 0
