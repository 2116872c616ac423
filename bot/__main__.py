"""``python -m bot``: run the bot; ``sync``: push the slash commands now; ``check``: is all well?"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

import discord

from bot.app import VideoBot
from bot.catalog import CatalogError, load_catalog
from bot.check import render, run_check
from bot.config import ConfigError, check_default_model, load_secrets, load_settings
from bot.logs import setup_logging
from bot.store.database import DatabaseError

DISCORD_API_BASE = "DISCORD_API_BASE"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument("--config", type=Path, default=None,
                        help="settings file (default: config.toml here, or $BOT_CONFIG)")
    parser.add_argument("--simulate", action="store_true",
                        help="use the built-in RunComfy simulator: nothing is paid")
    parser.add_argument("--offline", action="store_true",
                        help="with check: do not call RunComfy")
    parser.add_argument("command", nargs="?", choices=["run", "sync", "check"], default="run",
                        help="run the bot (default), sync the slash commands, or check the set-up")
    args = parser.parse_args(argv)
    if args.command == "check":
        lines = asyncio.run(run_check(args.config, os.environ, offline=args.offline,
                                      simulate=args.simulate))
        print(render(lines))
        return 0 if all(line.ok for line in lines) else 1
    try:
        settings = load_settings(args.config)
        if args.simulate:
            settings = settings.model_copy(update={"simulation": settings.simulation.model_copy(
                update={"enabled": True})})
        secrets = load_secrets(need_runcomfy=not settings.simulation.enabled)
        catalog = load_catalog(*settings.bot.catalog_dirs).with_prices(settings.prices)
        check_default_model(settings, catalog)
    except (ConfigError, CatalogError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.bot.log_level, secrets.redacted)
    if os.environ.get(DISCORD_API_BASE):  # a proxy in front of Discord's API, or a stand-in
        discord.http.Route.BASE = os.environ[DISCORD_API_BASE].rstrip("/")
    bot = VideoBot(settings, catalog, secrets.runcomfy_token, database_url=secrets.database_url,
                   run_jobs=args.command == "run")
    try:
        if args.command == "sync":
            asyncio.run(_sync(bot, secrets.discord_token))
        else:
            bot.run(secrets.discord_token, log_handler=None)
    except discord.LoginFailure:
        print("error: Discord refused DISCORD_TOKEN (improper token)", file=sys.stderr)
        return 2
    except DatabaseError as exc:
        print(f"error: database: {exc}", file=sys.stderr)
        return 3
    return 0


async def _sync(bot: VideoBot, token: str) -> None:
    async with bot:
        await bot.login(token)
        await bot.sync_commands(force=True)


if __name__ == "__main__":
    logging.captureWarnings(True)
    sys.exit(main())
