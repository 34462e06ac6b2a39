"""The error type of :mod:`graphrnn.train`."""

from __future__ import annotations

from ..errors import GraphrnnError


class TrainError(GraphrnnError, ValueError):
    """A training setting or file that cannot be used (names the setting and the fix)."""
