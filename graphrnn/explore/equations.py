"""The derived equation behind each gradient of the page, from :mod:`graphrnn.derive`, when it is there.

:func:`attach_derivation` fills each check of a :class:`~.trace.Trace` with the
equation that produced its gradient and its number for the checked entry; when
``graphrnn.derive`` cannot be imported, the trace says so (``derive_note``) and the
page shows the engine against finite differences only.
"""

from __future__ import annotations

import importlib

NOT_BUILT = ("graphrnn.derive (the symbolic derivation of BPTT) is not part of this build, so no derived "
             "equation is shown; the check is the engine against a finite difference.")


def attach_derivation(trace) -> None:
    try:
        importlib.import_module("graphrnn.derive")
    except ModuleNotFoundError as exc:
        if exc.name and "graphrnn.derive".startswith(exc.name):
            trace.derive_note = NOT_BUILT
            return
        raise
    trace.derive_note = NOT_BUILT
