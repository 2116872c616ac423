"""The import contracts cover the whole domain: every module of ``bot`` outside Discord's side
(``bot.discord``) and the command line is a source of the contract that forbids Discord, so a
new module cannot slip past the line by not being listed."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import bot

ROOT = Path(__file__).resolve().parents[1]
DISCORD_SIDE = {"discord", "__main__"}


def contracts() -> list[dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found: list[dict[str, Any]] = config["tool"]["importlinter"]["contracts"]
    return found


def test_every_domain_module_is_held_to_the_line() -> None:
    [domain] = [c for c in contracts() if str(c["name"]).startswith("The domain imports")]
    listed = set(domain["source_modules"])
    top = {f"bot.{m.name}" for m in pkgutil.iter_modules(bot.__path__)
           if m.name not in DISCORD_SIDE}
    assert listed == top
    assert {"discord", "bot.discord", "cogs"} <= set(domain["forbidden_modules"])


def test_every_cog_is_independent_of_the_others() -> None:
    [cogs] = [c for c in contracts() if c["type"] == "independence"]
    present = {f"cogs.{m.name}" for m in pkgutil.iter_modules([str(ROOT / "cogs")])}
    assert set(cogs["modules"]) == present


def test_the_domains_tests_need_no_discord() -> None:
    """Tests mirror the modules; those of the domain import nothing of Discord's side."""
    discord_side = ("discord", "simcord", "bot.discord", "cogs", "tests.discord_world",
                    "tests.discord_fixtures", "tests.discord_stand_in")
    for path in (ROOT / "tests" / "bot").rglob("*.py"):
        if "discord" in path.relative_to(ROOT / "tests" / "bot").parts[:1]:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            crossing = [n for n in names if n.split(".")[0] in discord_side
                        or n.startswith(discord_side)]
            assert not crossing, f"{path.relative_to(ROOT)} imports {crossing}"


def test_the_bot_loads_only_what_its_configuration_uses() -> None:
    """What ``python -m bot`` imports before it knows its configuration: not the simulator and
    its web server (``--simulate``), the endpoints' server and the metrics they serve
    (``[ops] listen``), PyAV (a video to fit or extend), Pillow (an image to read or a frame to
    encode) and the fitting's worker processes, the regex engine (a server's blocklist, the
    names of commands to sync), matplotlib (a chart), cryptography (``BOT_SECRET_KEY``),
    asyncpg (a PostgreSQL store), Babel's catalog tooling (a ``.po`` whose ``.mo`` is stale) or
    the other commands' modules (``check``, ``migrate-db``, ``messages``): each is loaded when
    first used."""
    optional = ("bot.simulator", "aiohttp.web", "bot.discord.ops", "bot.metrics",
                "prometheus_client", "av", "PIL", "multiprocessing", "regex", "matplotlib",
                "cryptography", "asyncpg", "bot.check", "bot.store.copy",
                "bot.discord.message_texts", "bot.message_files", "babel.messages.pofile",
                "babel.messages.extract")
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, bot.__main__, cogs; print(' '.join(sys.modules))"],
        cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert [name for name in optional if name in loaded] == []
