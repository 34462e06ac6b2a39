"""The ``graphrnn`` command line: thin — it parses, calls the library, prints.

Every command reports a :class:`~graphrnn.errors.GraphrnnError` on stderr with a
non-zero exit code and no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import zoo
from .errors import GraphrnnError

#: commands implemented in their own module: name -> module with add_arguments(p) and main(args) -> int
_COMMAND_MODULES = {
    "render": ("graphrnn.render.command", "draw the folded or unfolded graph (svg, png, pdf, dot); an encoder-decoder "
                                          "on two time axes, a recursive net over a tree"),
    "verify": ("graphrnn.verify.command",
               "check BPTT step by step: engine vs derived equations (and the book) vs finite differences; "
               "encoder-decoders and recursive nets too"),
    "derive": ("graphrnn.derive.command", "print the BPTT equations of a recurrence, an encoder-decoder or a recursive net, derived "
                                          "symbolically"),
    "export": ("graphrnn.export.command", "write standalone PyTorch or JAX code (a recurrence over one time axis)"),
    "explore": ("graphrnn.explore.command", "a browser page stepping through BPTT node by node (self-contained HTML; "
                                            "recurrences over one time axis)"),
    "run": ("graphrnn.runtime.command", "run a model (any kind) on (random) data and print or save every value "
                                        "(npz)"),
    "train": ("graphrnn.train.command", "train a recurrence over one time axis on the adding, copy, Reber or a "
                                        "text task; params, history, curves"),
    "demo": ("graphrnn.demo", "the bundled example: draw fig. 10.3 and verify its BPTT"),
}


def _sizes(items) -> dict[str, int]:
    sizes = {}
    for item in items or []:
        name, eq, value = item.partition("=")
        if not eq or not value.strip().isdigit():
            raise GraphrnnError(f"--size takes NAME=NUMBER, e.g. --size H=16; got {item!r}")
        sizes[name.strip()] = int(value)
    return sizes


def add_arch_argument(parser: argparse.ArgumentParser) -> None:
    """The ARCH argument and --size overrides, shared by every command that loads a spec."""
    parser.add_argument("arch", metavar="ARCH",
                        help="a zoo name (see `graphrnn list`) or the path of a spec file (.rnn, or .tree for a "
                             "recursive net)")
    parser.add_argument("--size", action="append", metavar="NAME=N",
                        help="override a size declared in the spec, e.g. --size H=16 (repeatable)")


def load_arch(args):
    """The recurrence over one time axis that ARCH names (an encoder-decoder or a tree: a clear error)."""
    kind = zoo.kind_of(args.arch)
    if kind != "sequence":
        raise refusal(args, kind)
    return zoo.load(args.arch, sizes=_sizes(args.size))


def refuse_tree(args, error=GraphrnnError) -> None:
    """``--tree`` given to a recurrence over one time axis: ``error``, saying what to give instead."""
    if args.tree:
        raise error(f"--tree is for recursive nets (fig10_14, a .tree spec); {args.arch} unrolls in time: "
                    f"give --steps T")


def load_model(args):
    """``(kind, model)``: ARCH as a :class:`Recurrence` (``"sequence"``), an encoder-decoder (``"encdec"``)
    or a recursive net (``"tree"``)."""
    kind = zoo.kind_of(args.arch)
    loader = {"sequence": zoo.load, "encdec": zoo.load_encdec, "tree": zoo.load_tree}[kind]
    return kind, loader(args.arch, sizes=_sizes(args.size))


#: what each kind of model can do on the command line (the refusals name these)
SUPPORTED = {
    "encdec": ("show", "render", "verify", "derive", "run"),
    "tree": ("show", "render", "verify", "derive", "run"),
}


def refusal(args, kind: str, fix: str | None = None) -> GraphrnnError:
    """The one-line error for a command that a kind of model does not support: the model, the command,
    what works instead."""
    command = getattr(args, "command", None) or "this command"
    arch = getattr(args, "arch", "?")
    if fix is None:
        fix = (f"for {arch} use {', '.join(f'`graphrnn {c}`' for c in SUPPORTED[kind])}"
               if kind in SUPPORTED else "")
    plural = {"encdec": "encoder-decoders", "tree": "recursive nets"}.get(kind, "these models")
    return GraphrnnError(f"{arch} is {zoo.describe_kind(kind)}, and `graphrnn {command}` does not take "
                         f"{plural} (it works on recurrences over one time axis); {fix}")


def parse_steps(text: str):
    """``--steps``: ``T`` (a whole number) or ``TX,TY`` (an encoder-decoder's steps on its two time axes)."""
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected T (a whole number) or, for an encoder-decoder, TX,TY (its steps "
                                         f"on each time axis, e.g. 4,3); got {text!r}")
    return values[0] if len(values) == 1 else tuple(values)


def one_axis_steps(args, default=None):
    """``args.steps`` for a recurrence over one time axis: a pair ``TX,TY`` is an error."""
    steps = getattr(args, "steps", None)
    if isinstance(steps, tuple):
        raise GraphrnnError(f"--steps {steps[0]},{steps[1]} gives steps on two time axes, for an encoder-decoder; "
                            f"{args.arch} has one: give --steps T")
    return default if steps is None else steps


def two_axis_steps(args, default=(3, 2)) -> tuple[int, int]:
    """``args.steps`` for an encoder-decoder: ``(τx, τy)``; a single T means both."""
    steps = getattr(args, "steps", None)
    if steps is None:
        return tuple(default)
    steps = steps if isinstance(steps, tuple) else (steps, steps)
    if min(steps) < 1:
        raise GraphrnnError(f"--steps {steps[0]},{steps[1]}: {args.arch} needs at least 1 step on each time axis, "
                            f"e.g. --steps 4,3")
    return steps


#: the tree fig. 10.14 prints, the default of --tree
BOOK_TREE = "((1, 2), (3, 4))"


def parse_tree(text: str):
    """``--tree '((1, 2), (3, 4))'``: nested pairs of leaf numbers, read as a Python literal (nothing is
    evaluated)."""
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        raise GraphrnnError(f"--tree takes nested pairs of leaf numbers, e.g. '{BOOK_TREE}'; got {text!r}") from None


def describe_tree(rec) -> str:
    """What ``graphrnn show`` prints for a recursive net: its equations by place, declarations and parameters."""
    spec = rec.spec
    lines = [f"{rec.name}: {spec.title}" if spec.title else rec.name, "",
             "a recursive net (§10.6): the same weights at every node of a tree; run it over a tree given as nested "
             "pairs of leaf numbers, e.g. ((1, 2), (3, 4))", "", "equations:"]
    for place in ("leaf", "node", "root"):
        for eq in rec.order(place):
            lines.append(f"  {eq.text:<50} at {'the root' if place == 'root' else 'every ' + place}")
    lines += ["", "declarations:"]
    lines += [f"  input  {n}: {rec.var_shapes[n][0]} rows at each leaf" for n in spec.inputs]
    lines += [f"  target {n}: " + (f"class of {rec.classes[n]}" if kind == "class" else f"{rec.var_shapes[n][0]} rows")
              + " per tree" for n, (kind, _) in spec.targets.items()]
    lines += [f"  hidden {n}: {rec.var_shapes[n][0]} rows" for n in spec.hidden]
    lines += [f"  loss   {n}" for n in rec.losses]
    lines += ["", "parameters (shared by every node):"]
    lines += [f"  {n:<10} {r} x {c}" for n, (r, c) in rec.param_shapes.items()]
    lines.append(f"  total: {rec.parameter_count} numbers, for a tree of any size")
    return "\n".join(lines)


def _cmd_list(args) -> int:
    entries = zoo.catalog()
    width = max(len(e.name) for e in entries)
    for e in entries:
        print(f"{e.name:<{width}}  {zoo.KINDS[e.kind]:<15}  {e.title}")
    return 0


def _cmd_show(args) -> int:
    kind, model = load_model(args)
    print(describe_tree(model) if kind == "tree" else model.describe())
    return 0


def _check_mode(args) -> None:
    """``--mode free`` (or ``scheduled``) on a spec without a ``feedback`` line is an error, whatever the command."""
    if getattr(args, "mode", None) in ("free", "scheduled") and getattr(args, "arch", None) is not None:
        from .runtime.runner import check_mode

        if zoo.kind_of(args.arch) != "sequence":
            return  # the command says what it supports
        try:
            rec = load_arch(args)
        except GraphrnnError:
            return  # the command itself reports it
        check_mode(rec, args.mode)


def _check_kind(args) -> None:
    """A command that a kind of model does not support stops here, with one line naming the fix."""
    arch = getattr(args, "arch", None)
    if arch is None or args.command in ("list", "show"):
        return
    kind = zoo.kind_of(arch)
    if kind == "sequence" or args.command in SUPPORTED[kind]:
        return
    raise refusal(args, kind)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphrnn",
        description="See and check how recurrent networks learn (Deep Learning, chapter 10).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("list", help="the zoo: every model, one line each, with its kind (sequence model, "
                       "encoder-decoder, recursive net), in the book's order")
    p.set_defaults(func=_cmd_list)
    p = sub.add_parser("show", help="equations, declarations, parameter shapes and the folded graph's edges (of "
                       "each phase of an encoder-decoder; by place in the tree of a recursive net)")
    add_arch_argument(p)
    p.set_defaults(func=_cmd_show)
    for name, (module_name, help_text) in _COMMAND_MODULES.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # that part of graphrnn is not built yet
            raise
        p = sub.add_parser(name, help=help_text, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)  # the docstring as written
        module.add_arguments(p)
        p.set_defaults(func=module.main)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _check_kind(args)
        _check_mode(args)
        return int(args.func(args) or 0)
    except GraphrnnError as exc:
        print(f"graphrnn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `graphrnn verify ... | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
