"""``python -m bot servers approve|revoke|list``: the database settings only (no token), one
line each, on the store a running bot reads at each request."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bot.store.access import ApprovedServers
from bot.store.connect import open_database


def servers(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BOT_", "DATABASE_URL", "DISCORD_TOKEN", "RUNCOMFY"))}
    env |= {"BOT_BOT__DATABASE": str(tmp_path / "bot.sqlite3"), "BOT_ACCESS__APPROVED": "7"}
    return subprocess.run([sys.executable, "-m", "bot", "servers", *args],  # noqa: S603
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
                          check=False)


async def test_approve_list_and_revoke(tmp_path: Path) -> None:
    done = servers(tmp_path, "approve", "123")
    assert (done.returncode, done.stdout, done.stderr) == (0, "server 123 is now approved\n", "")
    assert servers(tmp_path, "approve", "123").stdout == "server 123 was already approved\n"
    db = await open_database(tmp_path / "bot.sqlite3")
    assert [guild for guild, _ in await ApprovedServers(db).listed()] == [123]
    await db.close()
    listed = servers(tmp_path, "list").stdout.splitlines()
    assert listed[0].startswith("123 approved ") and listed[1] == "7 approved in the config"
    assert servers(tmp_path, "revoke", "123").stdout == "server 123 is no longer approved\n"
    assert servers(tmp_path, "revoke", "7").stdout == (
        "server 7 was not approved (it stays approved in the config's [access] approved)\n")
    wrong = servers(tmp_path, "approve", "abc")
    assert (wrong.returncode, wrong.stdout) == (2, "")
    assert wrong.stderr == "error: usage: python -m bot servers approve ID | revoke ID | list\n"
