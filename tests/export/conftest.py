"""Make the shared helpers of the export tests (``_export_testlib``) of the recurrence tests and of the runtime tests
(the random-recurrence generator) importable."""

from __future__ import annotations

import sys
from pathlib import Path

for folder in (Path(__file__).parent, Path(__file__).parent.parent / "recurrence",
               Path(__file__).parent.parent / "runtime"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
