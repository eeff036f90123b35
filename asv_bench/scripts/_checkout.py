"""Make ``import icechunk_fast`` work for a script run from an uninstalled checkout.

``python asv_bench/scripts/X.py`` puts only ``asv_bench/scripts/`` on ``sys.path``.
Importing this module (each script does, before ``import icechunk_fast``) adds the
checkout these scripts live in (``ROOT``, two levels up) when ``icechunk_fast`` is not
importable otherwise, with a note on stderr. An installed ``icechunk_fast`` (editable
or not) always wins, so a built wheel's compiled kernels are the ones measured;
``PYTHONPATH=.`` from the repository root chooses the checkout explicitly.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

if importlib.util.find_spec("icechunk_fast") is None and (
    (ROOT / "icechunk_fast" / "__init__.py").is_file()
):
    sys.path.insert(0, str(ROOT))
    print(f"asv_bench/scripts: icechunk_fast is not installed; importing {ROOT}", file=sys.stderr)
