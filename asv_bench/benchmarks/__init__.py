"""asv benchmarks: icechunk_fast, the real icechunk and zarr's LocalStore side by side.

Every benchmark class is parametrized over ``impl`` (see ``_common.IMPLS``). A
combination that cannot run here (icechunk not importable) or means nothing for an
implementation (a commit on a LocalStore) raises ``NotImplementedError`` in ``setup``,
which asv reports as skipped. ``ICECHUNK_FAST_BENCH_SCALE`` (default 1.0) scales every
workload size; ``tests/test_asv_smoke.py`` runs the suite at a tiny scale.
"""

from __future__ import annotations

import importlib.util
import os
import sys


def _source_tree_fallback() -> None:
    """Let ``asv run --python=same`` import a source checkout that is not installed.

    asv drops ``PYTHONPATH`` from its benchmark processes (it passes ``ASV_PYTHONPATH``
    on instead), so ``PYTHONPATH=.. asv run --python=same`` alone would not find an
    uninstalled checkout. When ``icechunk_fast`` is not importable, the checkout this
    suite lives in (two levels up: ``"repo": ".."`` of ``asv.conf.json``) goes first on
    ``sys.path``, with a note on stderr. An installed ``icechunk_fast`` (every
    environment asv builds has one) always wins.
    """
    if importlib.util.find_spec("icechunk_fast") is not None:
        return
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if os.path.isfile(os.path.join(root, "icechunk_fast", "__init__.py")):
        sys.path.insert(0, root)
        print(f"asv_bench: icechunk_fast is not installed; importing {root}", file=sys.stderr)


_source_tree_fallback()
