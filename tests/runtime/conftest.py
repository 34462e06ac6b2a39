"""Make the shared helpers of the recurrence tests (``tests/recurrence/_rec_testlib``) importable."""

from __future__ import annotations

import sys
from pathlib import Path

HELPERS = str(Path(__file__).parent.parent / "recurrence")
if HELPERS not in sys.path:
    sys.path.insert(0, HELPERS)
