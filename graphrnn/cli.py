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
    "render": ("graphrnn.render.command", "draw the folded or unfolded graph (svg, png, pdf, dot)"),
    "verify": ("graphrnn.verify.command",
               "check BPTT step by step: engine vs derived equations (and the book) vs finite differences"),
    "derive": ("graphrnn.derive.command", "print the BPTT equations of a recurrence, derived symbolically"),
    "export": ("graphrnn.export.command", "write a recurrence as standalone PyTorch or JAX code"),
    "explore": ("graphrnn.explore.command", "a browser page stepping through BPTT node by node (self-contained HTML)"),
    "run": ("graphrnn.runtime.command", "run a recurrence on (random) data and print or save every value (npz)"),
    "train": ("graphrnn.train.command", "train on the adding, copy, Reber or a text task; params, history, curves"),
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
    parser.add_argument("arch", metavar="ARCH", help="a zoo name (see `graphrnn list`) or the path of a .rnn spec file")
    parser.add_argument("--size", action="append", metavar="NAME=N",
                        help="override a size declared in the spec, e.g. --size H=16 (repeatable)")


def load_arch(args):
    return zoo.load(args.arch, sizes=_sizes(args.size))


def _cmd_list(args) -> int:
    for name in zoo.names():
        rec = zoo.load(name)
        print(f"{name:<10} {rec.title or ''}")
    return 0


def _cmd_show(args) -> int:
    print(load_arch(args).describe())
    return 0


def _check_mode(args) -> None:
    """``--mode free`` (or ``scheduled``) on a spec without a ``feedback`` line is an error, whatever the command."""
    if getattr(args, "mode", None) in ("free", "scheduled") and getattr(args, "arch", None) is not None:
        from .runtime.runner import check_mode

        try:
            rec = load_arch(args)
        except GraphrnnError:
            return  # the command itself reports it
        check_mode(rec, args.mode)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphrnn",
        description="See and check how recurrent networks learn (Deep Learning, chapter 10).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("list", help="the zoo of architectures, one line each")
    p.set_defaults(func=_cmd_list)
    p = sub.add_parser("show", help="equations, declarations, parameter shapes and the folded graph's edges")
    add_arch_argument(p)
    p.set_defaults(func=_cmd_show)
    for name, (module_name, help_text) in _COMMAND_MODULES.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # that part of graphrnn is not built yet
            raise
        p = sub.add_parser(name, help=help_text, description=module.__doc__)
        module.add_arguments(p)
        p.set_defaults(func=module.main)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
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
