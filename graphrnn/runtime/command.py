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

An encoder-decoder (fig10_12; --steps TX,TY) saves each phase's arrays under its prefix (enc.h,
grad:enc.h, param:enc.W, param:dec.W, ...), the context C (and grad:C), its data and the loss.  A
recursive net (fig10_14, over --tree) saves each tree node's value under its key (h[1], h[1..2], o, L),
grad:KEY, param:W, grad:W, data:X and the loss.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..cli import (BOOK_TREE, add_arch_argument, load_arch, one_axis_steps, parse_steps, parse_tree, refuse_tree,
                   two_axis_steps)
from ..errors import DataError, GraphrnnError
from ..recurrence.unroll import key

#: at most this many numbers of one value are printed in the table
SHOWN = 6


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_arch_argument(parser)
    parser.add_argument("--steps", type=parse_steps, metavar="T",
                        help="number of steps (default 5); for an encoder-decoder TX,TY, its steps on each time "
                             "axis (default 4,3)")
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
    parser.add_argument("--tree", metavar="TREE",
                        help=f"a recursive net (fig10_14) runs over this tree: nested pairs of leaf numbers "
                             f"(default {BOOK_TREE!r})")
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


def _data(rec, args, steps=None):
    """``--data FILE.npz``, or random data of ``steps`` (T, (τx, τy) or a tree)."""
    if args.data is None:
        if isinstance(steps, int) and (steps < 1 or args.batch < 1):
            raise GraphrnnError(f"--steps and --batch must be at least 1 (got {steps} and {args.batch})")
        if args.batch < 1:
            raise GraphrnnError(f"--batch must be at least 1 (got {args.batch})")
        return rec.random_inputs(steps, batch=args.batch, seed=args.seed)
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


def _save(arrays: dict, args, what: str) -> int:
    path = Path(args.output)
    try:
        with path.open("wb") as handle:
            np.savez(handle, **arrays)
    except OSError as exc:
        raise GraphrnnError(f"cannot write {path}: {exc.strerror or exc}") from None
    print(f"wrote {path}: {len(arrays)} arrays of {what}")
    return 0


def _on_file(exc: DataError, args) -> DataError:
    """A data error of a run on ``--data FILE``, naming the model and the file (random data has none)."""
    where = f" of --data {args.data}" if args.data else ""
    return DataError(f"{args.arch}, the data{where}: {exc}")


def _refuse(args, what: str, extra: dict) -> None:
    given = [flag for flag, on in extra.items() if on]
    if given:
        raise GraphrnnError(f"{', '.join(given)}: for recurrences over one time axis; {args.arch} is {what}: "
                            f"leave {'them' if len(given) > 1 else 'it'} out")


def _prefixed(arrays: dict, prefix: str) -> dict:
    """``collect``'s keys of one phase, qualified: h -> enc.h, grad:W -> grad:enc.W (data keeps its name)."""
    out = {}
    for name, value in arrays.items():
        kind, sep, rest = name.partition(":")
        if name == "loss":
            continue
        if sep and kind == "data":
            out[name] = value
        elif sep:
            out[f"{kind}:{prefix}.{rest}"] = value
        else:
            out[f"{prefix}.{name}"] = value
    return out


def run_encdec_command(args) -> int:
    """``graphrnn run`` of an encoder-decoder: both phases, C, and (with the decoder's loss) every gradient."""
    from .. import zoo
    from ..cli import _sizes
    from .encdec import run_encdec

    _refuse(args, "an encoder-decoder", {"--lengths": args.lengths, "--tree": args.tree})
    model = zoo.load_encdec(args.arch, sizes=_sizes(args.size))
    data = _data(model, args, two_axis_steps(args, (4, 3)))
    params = model.init_params(seed=args.seed)
    try:
        run = run_encdec(model, data, params, mode=args.mode, seed=args.seed, backward=not args.forward_only)
    except DataError as exc:
        raise _on_file(exc, args) from None
    backward = bool(run.context_grads)
    if not args.output:
        what = f"loss {run.loss:.6g}" if backward else f"forward only, loss {run.loss:.6g}"
        lines = [f"{model.name}: tau_x = {run.T['enc']}, tau_y = {run.T['dec']}, batch {args.batch}, "
                 f"{run.mode} mode, {what}", "values of sequence 0 (first column):"]
        for phase, part in ((model.encoder, run.encoder), (model.decoder, run.decoder)):
            lines.append(f"{phase.role} over {phase.axis} (parameters {phase.prefix}.*):")
            lines += table(part).splitlines()[2:]
            if phase.role == "encoder":
                for name, link in model.links.items():
                    lines.append(f"link {link.text}:")
                    lines.append(f"  {name:<6}  {_short(np.asarray(run.values[name])[..., 0])}")
        print("\n".join(lines))
        return 0
    arrays: dict = {}
    for phase, part in ((model.encoder, run.encoder), (model.decoder, run.decoder)):
        mine = {n: v for n, v in data.items() if n in phase.data_names()}
        own = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(phase.prefix + ".")}
        got = collect(part, mine, own)
        if not backward:
            got = {k: v for k, v in got.items() if not k.startswith("grad:")}
        arrays.update(_prefixed(got, phase.prefix))
    for name in model.links:
        arrays[name] = np.asarray(run.values[name])
        if backward:
            arrays[f"grad:{name}"] = np.asarray(run.context_grads[name])
    arrays["loss"] = np.asarray(run.loss)
    return _save(arrays, args, f"{model.name} over tau_x = {run.T['enc']} and tau_y = {run.T['dec']} steps "
                               f"({'forward and backward' if backward else 'forward only'})")


def run_tree_command(args) -> int:
    """``graphrnn run`` of a recursive net over ``--tree``: every node's value, and its gradient."""
    from .. import zoo
    from ..cli import _sizes

    _refuse(args, "a recursive net (it runs over --tree)",
            {"--steps": args.steps is not None, "--lengths": args.lengths, "--mode": args.mode != "teacher"})
    rec = zoo.load_tree(args.arch, sizes=_sizes(args.size))
    tree = rec.tree_of(parse_tree(args.tree or BOOK_TREE))
    data = _data(rec, args, tree)
    params = rec.init_params(seed=args.seed)
    try:
        run = rec.run(tree, data, params, backward=not args.forward_only)
    except DataError as exc:
        raise _on_file(exc, args) from None
    if not args.output:
        what = "no loss" if run.loss is None else f"loss {run.loss:.6g}" + (
            ", forward only" if args.forward_only else "")
        lines = [f"{rec.name} over the tree {tree.nested} ({tree.n_leaves} leaves, depth {tree.depth}), "
                 f"batch {run.batch}, {what}", "values of tree 0 (first column), leaves first, the root last:"]
        width = max(len(k) for k in run.values)
        for k, value in run.values.items():
            value = np.asarray(value)
            shown = f"{float(value):.6g} (summed over the batch)" if value.ndim == 0 else _short(value[..., 0])
            lines.append(f"  {k:<{width}}  {shown}")
        print("\n".join(lines))
        return 0
    arrays = {k: np.asarray(v) for k, v in run.values.items()}
    arrays.update({f"grad:{k}": np.asarray(v) for k, v in run.node_grads.items()})
    arrays.update({f"data:{k}": np.asarray(v) for k, v in data.items()})
    arrays.update({f"param:{k}": np.asarray(v) for k, v in params.items()})
    arrays.update({f"grad:{k}": np.asarray(v) for k, v in run.grads.items()})
    if run.loss is not None:
        arrays["loss"] = np.asarray(run.loss)
    return _save(arrays, args, f"{rec.name} over the tree {tree.nested} "
                               f"({'forward and backward' if run.grads else 'forward only'})")


def main(args) -> int:
    from .. import zoo

    kind = zoo.kind_of(args.arch)
    if kind == "encdec":
        return run_encdec_command(args)
    if kind == "tree":
        return run_tree_command(args)
    refuse_tree(args)
    rec = load_arch(args)
    data = _data(rec, args, one_axis_steps(args, 5))
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
    return _save(arrays, args, f"{rec.name} over {run.T} steps "
                               f"({'forward and backward' if len(run.grads) else 'forward only'})")
