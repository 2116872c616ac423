"""Every benchmark, one after the other, each in a fresh process (about 21 minutes):

    .venv/bin/python -m bench
"""

from __future__ import annotations

import subprocess
import sys

SCRIPTS = ("acknowledge", "acknowledge_languages", "delivery", "poll_laws", "footprint",
           "report_usage", "store_lifecycle", "shards", "admission", "fitting",
           "fitting_load")


def main() -> int:
    for name in SCRIPTS:
        print(f"\n# bench.{name}", flush=True)
        code = subprocess.call([sys.executable, "-m", f"bench.{name}"])  # noqa: S603
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
