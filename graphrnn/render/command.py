"""Draw a recurrence as the book does: folded, unfolded or both; op level; gradient paths.

The format comes from the output's suffix: .svg, .png, .pdf (these need graphviz's
`dot` program) or .dot.

examples:
  graphrnn render fig10_3 --folded -o fig10_3_folded.svg
  graphrnn render fig10_3 --both -o fig10_3.png
  graphrnn render fig10_5 --unrolled -o fig10_5.svg
  graphrnn render fig10_3 --unrolled --steps 10000 --window 6 -o long.svg
  graphrnn render fig10_6 --teacher-forcing -o fig10_6.pdf
  graphrnn render fig10_3 --unrolled --steps 3 --level op -o ops.svg
  graphrnn render fig10_3 --unrolled --steps 8 --grad-path 'L[8]:h[1]' --scale W=0.5 -o vanishing.png
  graphrnn render fig10_12 --folded -o fig10_12.svg          # an encoder-decoder as fig. 10.12 prints it
  graphrnn render fig10_12 --unrolled --steps 4,3 -o seq2seq.svg   # tau_x = 4 encoder, tau_y = 3 decoder steps
  graphrnn render fig10_14 --unrolled --tree '(((1, 2), 3), (4, 5))' -o tree.svg
"""

from __future__ import annotations

import argparse

from ..cli import add_arch_argument, load_arch, one_axis_steps, parse_steps, two_axis_steps
from ..errors import RenderError
from .figures import draw_fold_unfold, draw_folded, draw_teacher_forcing, draw_unfolded
from .gradpath import draw_grad_path
from .ops import draw_ops
from .output import FORMATS, save

DEFAULT_RUN_STEPS = 4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_arch_argument(parser)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--folded", action="store_true", help="the folded graph: circles, weights, delay squares "
                                                            "(an encoder-decoder: fig. 10.12's layout, as printed)")
    what.add_argument("--unrolled", "--unfolded", action="store_true",
                      help="the graph unfolded in time (an encoder-decoder: on its two time axes, --steps TX,TY; "
                           "a recursive net: over --tree)")
    what.add_argument("--both", action="store_true", help="folded, an arrow labelled Unfold, unfolded (figs 10.2-10.3)")
    what.add_argument("--teacher-forcing", action="store_true",
                      help="fig 10.6: train time (true y fed back) beside test time (the model's output fed back)")
    parser.add_argument("--steps", "-T", type=parse_steps, metavar="T",
                        help="unfold T concrete steps (default: the book's symbolic t-1, t, t+1); for an "
                             "encoder-decoder TX,TY, its steps on each time axis (default 3,2)")
    parser.add_argument("--window", "-k", type=int, metavar="K",
                        help="show K steps: the first and last ones around an ellipsis (default 6 when T > 8)")
    parser.add_argument("--start", type=int, metavar="S", help="show the window of K steps from step S on")
    parser.add_argument("--level", choices=("variable", "op"), default="variable",
                        help="variable: as the book draws it; op: every engine op of a run, with data and gradient")
    parser.add_argument("--grad-path", metavar="FROM:TO",
                        help="after a run, highlight every path from FROM (L or L[t]) back to TO (h[1], W^(3), W, ...), "
                             "edges as wide and red as the gradient they carry")
    parser.add_argument("--mode", choices=("teacher", "free", "scheduled"), default="teacher",
                        help="teacher forcing (the spec as written) or free-running (test time)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random data and parameters of a run")
    parser.add_argument("--batch", type=int, default=2, help="sequences in the random batch of a run")
    parser.add_argument("--scale", action="append", metavar="PARAM=FACTOR",
                        help="multiply a parameter of the run, e.g. --scale W=0.5 (vanishing) or W=3 (repeatable)")
    parser.add_argument("--tree", metavar="TREE",
                        help="a recursive network (fig10_14, a .tree spec) is unrolled over this tree: nested pairs "
                             "of leaf numbers, e.g. '((1, 2), (3, 4))' (the default, as printed)")
    parser.add_argument("--unnamed", action="store_true",
                        help="with a tree: leave the tree's circles unnamed, as fig. 10.14 prints them")
    parser.add_argument("-o", "--output", required=True, metavar="FILE",
                        help=f"where to write the drawing ({', '.join(FORMATS)})")


def _scales(items, rec) -> dict:
    out = {}
    for item in items or []:
        name, eq, value = item.partition("=")
        try:
            factor = float(value)
        except ValueError:
            factor = None
        if not eq or factor is None:
            raise RenderError(f"--scale takes PARAM=FACTOR, e.g. --scale W=0.5; got {item!r}")
        name = name.strip()
        if name not in rec.all_param_shapes():
            raise RenderError(f"--scale: {name!r} is not a parameter of {rec.name} "
                              f"(those are: {', '.join(rec.all_param_shapes())})")
        out[name] = factor
    return out


def make_run(rec, steps, mode="teacher", seed=0, batch=2, scales=None):
    """A run of ``rec`` on random data (for the op level and gradient paths)."""
    if batch < 1:
        raise RenderError(f"--batch must be at least 1, not {batch}")
    params = rec.init_params(seed=seed)
    for name, factor in (scales or {}).items():
        params[name] = params[name] * factor
    return rec.run(rec.random_inputs(steps, batch=batch, seed=seed), params=params, T=steps, mode=mode)


def _is_tree(arch: str) -> bool:
    from .. import zoo
    return arch in zoo.tree_names() or str(arch).endswith(".tree")


def parse_tree(text: str):
    """``'((1, 2), (3, 4))'`` -> nested tuples (read as a Python literal, nothing evaluated)."""
    import ast
    try:
        tree = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise RenderError(f"--tree takes nested pairs of leaf numbers, e.g. '((1, 2), (3, 4))'; got {text!r}") \
            from None
    return tree


def build_tree(args):
    """The drawing of a recursive network (fig. 10.14)."""
    from .. import zoo
    from ..cli import _sizes
    from .tree import BOOK_TREE, draw_tree

    if not args.unrolled:
        raise RenderError(f"{args.arch} is a recursive network: it has no folded drawing or time steps; draw it "
                          f"unrolled over a tree with --unrolled (and --tree)")
    if args.steps or args.window or args.start or args.grad_path or args.level != "variable" or args.scale:
        raise RenderError(f"{args.arch} is a recursive network, drawn over a tree (--tree), not over steps: "
                          f"leave out --steps, --window, --start, --grad-path, --level op and --scale (they are for "
                          f"recurrences)")
    if isinstance(args.steps, tuple):
        raise RenderError(f"{args.arch} is a recursive network, drawn over a tree (--tree '((1, 2), (3, 4))'), not "
                          f"over steps: leave out --steps")
    rec = zoo.load_tree(args.arch, sizes=_sizes(args.size))
    return draw_tree(rec, parse_tree(args.tree) if args.tree else BOOK_TREE, names=not args.unnamed)


def build_encdec(args):
    """The drawing of an encoder-decoder (fig. 10.12): folded as the book prints it, or unrolled on two axes."""
    from .. import zoo
    from ..cli import _sizes
    from .encdec import draw_encdec, draw_encdec_unrolled

    name = args.arch
    if args.both or args.teacher_forcing:
        raise RenderError(f"{name} is an encoder-decoder: draw it --folded (fig. 10.12 as printed) or --unrolled "
                          f"(both time axes, e.g. --steps 4,3); --both and --teacher-forcing are for recurrences "
                          f"over one time axis")
    if args.window or args.start or args.grad_path or args.level != "variable" or args.scale or args.mode != "teacher":
        raise RenderError(f"{name} is an encoder-decoder: --window, --start, --grad-path, --level op, --scale and "
                          f"--mode are for recurrences over one time axis; draw it --folded or --unrolled "
                          f"[--steps TX,TY]")
    if args.tree or args.unnamed:
        raise RenderError(f"--tree and --unnamed are for recursive networks (fig10_14, a .tree spec); {name} is an "
                          f"encoder-decoder: draw it --folded or --unrolled [--steps TX,TY]")
    model = zoo.load_encdec(name, sizes=_sizes(args.size))
    if args.folded:
        if args.steps:
            raise RenderError(f"--steps chooses the steps of the unrolled graph; fig. 10.12's folded drawing of {name} "
                              f"has none (use --unrolled --steps TX,TY)")
        return draw_encdec(model)
    return draw_encdec_unrolled(model, two_axis_steps(args))


def build(args):
    """The drawing the arguments ask for."""
    from .. import zoo

    if _is_tree(args.arch):
        return build_tree(args)
    if zoo.kind_of(args.arch) == "encdec":
        return build_encdec(args)
    one_axis_steps(args)  # TX,TY is for an encoder-decoder
    if args.tree or args.unnamed:
        raise RenderError(f"--tree and --unnamed are for recursive networks (fig10_14, a .tree spec); "
                          f"{args.arch} unrolls in time")
    rec = load_arch(args)
    needs_run = args.level == "op" or args.grad_path
    if needs_run:
        if not args.unrolled:
            raise RenderError("the op level and gradient paths are drawn on a run unrolled in time: use --unrolled "
                              "(with --steps T)")
        steps = args.steps or DEFAULT_RUN_STEPS
        if steps < 1:
            raise RenderError(f"--steps must be at least 1, not {steps}")
        run = make_run(rec, steps, args.mode, args.seed, args.batch, _scales(args.scale, rec))
        if args.grad_path:
            source, sep, target = args.grad_path.partition(":")
            if not sep or not source.strip() or not target.strip():
                raise RenderError(f"--grad-path takes FROM:TO, e.g. 'L[3]:h[1]' or L:W; got {args.grad_path!r}")
            return draw_grad_path(run, source.strip(), target.strip(), window=args.window, level=args.level)
        return draw_ops(run)
    if args.scale:
        raise RenderError("--scale changes the parameters of a run: use it with --level op or --grad-path")
    if args.folded:
        if args.steps or args.window or args.start:
            raise RenderError("--steps, --window and --start choose steps of the unfolded graph; the folded graph "
                              "has none (use --unrolled or --both)")
        return draw_folded(rec, args.mode)
    if args.teacher_forcing:
        return draw_teacher_forcing(rec, window=args.window or 2)
    if args.both:
        return draw_fold_unfold(rec, args.steps, args.window, args.mode, args.start)
    return draw_unfolded(rec, args.steps, args.window, args.mode, args.start)


def main(args) -> int:
    path = save(build(args), args.output)
    print(f"wrote {path}")
    return 0
