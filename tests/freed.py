"""Memory as a burst of commands leaves it: 64 MiB of objects CPython frees with ``free`` (2 KiB
each), every eighth kept so that the heap cannot just shrink from its top."""

from __future__ import annotations

import gc


def burst() -> list[bytes]:
    """The burst; what it keeps (8 MiB), to be held while the rest is given back."""
    blocks = [bytes(2048) for _ in range(32 * 1024)]
    kept = blocks[::8]
    del blocks
    gc.collect()
    return kept
