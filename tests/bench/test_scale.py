"""The scale bench's own arithmetic: the base's allowance and the report's ratios."""

from __future__ import annotations

import subprocess
import sys

from bench.scale import _RSS, REFERENCE_IMPORTS, import_cost_mb, ratio


def test_the_allowance_counts_pydantic_as_the_bot_uses_it() -> None:
    """``import pydantic`` alone defers its modules until ``BaseModel`` is asked for: the
    allowance imports it as used, a megabyte or more above the bare import."""
    bare = subprocess.run(  # noqa: S603
        [sys.executable, "-c", f"{_RSS}import {', '.join(REFERENCE_IMPORTS)}\nbefore = rss()\n"
                               "import pydantic\nprint(rss() - before)"],
        capture_output=True, text=True, check=True).stdout
    assert import_cost_mb(REFERENCE_IMPORTS, ("pydantic",)) > float(bare) + 1.0


def test_a_reference_that_did_not_grow_has_no_ratio() -> None:
    assert ratio(2.4, 1.2) == "2.00x"
    assert ratio(2.4, 0.0) == "n/a (minimal +0.00)"
