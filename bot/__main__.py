"""``python -m bot``: run the bot; ``python -m bot sync``: push the slash commands now."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

import discord

from bot.app import VideoBot
from bot.catalog import CatalogError, load_catalog
from bot.config import ConfigError, check_default_model, load_secrets, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument("--config", type=Path, default=None,
                        help="settings file (default: config.toml here, or $BOT_CONFIG)")
    parser.add_argument("command", nargs="?", choices=["run", "sync"], default="run",
                        help="run the bot (default), or sync the slash commands and exit")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
        secrets = load_secrets()
        catalog = load_catalog(*settings.bot.catalog_dirs).with_prices(settings.prices)
        check_default_model(settings, catalog)
    except (ConfigError, CatalogError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.bot.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    bot = VideoBot(settings, catalog, secrets.runcomfy_token, run_jobs=args.command == "run")
    try:
        if args.command == "sync":
            asyncio.run(_sync(bot, secrets.discord_token))
        else:
            bot.run(secrets.discord_token, log_handler=None)
    except discord.LoginFailure:
        print("error: Discord refused DISCORD_TOKEN (improper token)", file=sys.stderr)
        return 2
    return 0


async def _sync(bot: VideoBot, token: str) -> None:
    async with bot:
        await bot.login(token)
        await bot.sync_commands(force=True)


if __name__ == "__main__":
    sys.exit(main())
