"""``python -m bot``: run the bot; ``sync``: push the slash commands now; ``check``: is all well?
``migrate-db --to postgresql://...``: copy the SQLite store into an empty PostgreSQL database.
``servers approve|revoke ID`` and ``servers list``: the servers that may spend the operator's
account when ``[access] servers = "approved"`` (the database settings only; works while the bot
runs). ``new-secret-key``: a key for ``BOT_SECRET_KEY``, which seals servers' own RunComfy keys.
``messages [--add LANG]``: list the texts to translate in ``bot/locales/bot.pot`` and bring every
language's catalog in line with it (with ``--add``, start a new language's catalog first).

The command line is the composition root, on Discord's side of the line (it starts the client):
the domain never imports it."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from bot.catalog import CatalogError, load_catalog
from bot.config import ConfigError, Settings, check_default_model, load_secrets, load_settings
from bot.discord import startup
from bot.discord.client import VideoBot
from bot.keys import KeyBox, KeyBoxError, new_secret_key
from bot.logs import setup_logging
from bot.store.access import ApprovedServers
from bot.store.connect import is_postgres_url, open_database
from bot.store.database import DatabaseError, redact


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument("--config", type=Path, default=None,
                        help="settings file (default: config.toml here, or $BOT_CONFIG)")
    parser.add_argument("--simulate", action="store_true",
                        help="use the built-in RunComfy simulator: nothing is paid")
    parser.add_argument("--offline", action="store_true",
                        help="with check: do not call RunComfy")
    parser.add_argument("--add", metavar="LANG",
                        help="with messages: start a catalog for this language (e.g. it, pt_BR)")
    parser.add_argument("--to", metavar="POSTGRESQL_URL",
                        help="with migrate-db: the empty PostgreSQL database to copy into")
    parser.add_argument("command", nargs="?",
                        choices=["run", "sync", "check", "migrate-db", "servers",
                                 "new-secret-key", "health", "messages"],
                        default="run", help="run the bot (default), sync the slash commands, "
                        "check the set-up, copy the SQLite store into PostgreSQL, or approve, "
                        "revoke and list servers")
    parser.add_argument("action", nargs="*", help="with servers: approve ID, revoke ID, list")
    args = parser.parse_args(argv)
    if args.command == "migrate-db":
        return migrate_db(args.config, args.to)
    if args.command == "servers":
        return servers(args.config, args.action)
    if args.command == "new-secret-key":
        print(new_secret_key())
        return 0
    if args.command == "health":
        return health(args.config)
    if args.command == "messages":
        return messages(args.add)
    if args.command == "check":
        from bot.check import render, run_check  # each command's own modules: for it only

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
        api_base = startup.discord_api_base(os.environ)  # a proxy in front of Discord, a stand-in
        key_box = KeyBox.from_env(secrets.secret_key)
    except (ConfigError, CatalogError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return startup.SETUP
    except KeyBoxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return startup.SECRET_KEY
    setup_logging(settings.bot.log_level, secrets.redacted, settings.bot.log_format)
    bot = VideoBot(settings, catalog, secrets.runcomfy_token, database_url=secrets.database_url,
                   run_jobs=args.command == "run", key_box=key_box)
    return startup.run(bot, secrets.discord_token, sync=args.command == "sync",
                       api_base=api_base)


def messages(add: str | None) -> int:
    """Write the texts to translate and update every catalog; one line per language."""
    from bot.discord.message_texts import listed_texts
    from bot.message_files import add_language, template, update_catalogs

    entries = asyncio.run(listed_texts(Settings(), load_catalog()))
    catalog = template(entries)
    if add:
        try:
            print(f"started {add_language(add, catalog)}")
        except (FileExistsError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return startup.SETUP
    print("\n".join(update_catalogs(catalog)))
    return 0


def health(config: Path | None) -> int:
    """Ask the running process's ``/readyz`` (``[ops] listen``): 0 when ready; 1 with one line
    saying what is not (the Docker image's health check)."""
    try:
        listen = load_settings(config).ops.listen
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return startup.SETUP
    if not listen:
        print("not ready: [ops] listen is not set, so the process has no /readyz")
        return 1
    url = f"http://{listen.replace('0.0.0.0:', '127.0.0.1:')}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            body = json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
    except (OSError, ValueError):
        print(f"not ready: nothing answers at {url}")
        return 1
    if body.get("ready"):
        print("ready")
        return 0
    print(f"not ready: {', '.join(body.get('failing', [])) or 'unknown'}")
    return 1


def servers(config: Path | None, action: list[str]) -> int:
    """Approve, revoke or list the servers that may spend; one line each."""
    try:
        settings = load_settings(config)
        verb, *rest = action or ["list"]
        if verb not in ("approve", "revoke", "list") or (verb != "list") != (len(rest) == 1) \
                or (rest and not rest[0].isdigit()):
            raise ConfigError("usage: python -m bot servers approve ID | revoke ID | list")
        database_url = os.environ.get("DATABASE_URL", "").strip() or None
        lines = asyncio.run(_servers(database_url or settings.bot.database, verb,
                                     int(rest[0]) if rest else 0, settings.access.approved))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return startup.SETUP
    except DatabaseError as exc:
        print(f"error: database: {exc}", file=sys.stderr)
        return startup.DATABASE
    print("\n".join(lines))
    return 0


async def _servers(target: str | Path, verb: str, guild_id: int,
                   configured: tuple[int, ...]) -> list[str]:
    db = await open_database(target)
    try:
        store = ApprovedServers(db)
        if verb == "approve":
            new = await store.approve(guild_id, time.time())
            return [f"server {guild_id} {'is now' if new else 'was already'} approved"]
        if verb == "revoke":
            gone = await store.revoke(guild_id)
            kept = " (it stays approved in the config's [access] approved)" \
                if guild_id in configured else ""
            return [f"server {guild_id} {'is no longer' if gone else 'was not'} approved{kept}"]
        listed = [f"{guild} approved {datetime.fromtimestamp(at, UTC):%Y-%m-%d %H:%M} UTC"
                  for guild, at in await store.listed()]
        listed += [f"{guild} approved in the config" for guild in configured]
        return listed or ["no server is approved"]
    finally:
        await db.close()


def migrate_db(config: Path | None, target: str | None) -> int:
    """Copy the SQLite file of ``bot.database`` into PostgreSQL; one line either way."""
    try:
        settings = load_settings(config)
        if not target or not is_postgres_url(target):
            raise ConfigError("migrate-db needs --to postgresql://user:password@host:port/db")
        copied = asyncio.run(_copy(settings.bot.database, target))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return startup.SETUP
    except DatabaseError as exc:
        print(f"error: database: {exc}", file=sys.stderr)
        return startup.DATABASE
    rows = ", ".join(f"{n} {table}" for table, n in copied.items())
    print(f"copied {settings.bot.database} into {redact(target)}: {rows}")
    return 0


async def _copy(source_path: Path, target_url: str) -> dict[str, int]:
    from bot.store.copy import copy_store

    if not await asyncio.to_thread(source_path.exists):
        raise DatabaseError(f"{source_path}: no such database file")
    source = await open_database(source_path)
    try:
        target = await open_database(target_url)
        try:
            return await copy_store(source, target)
        finally:
            await target.close()
    finally:
        await source.close()


if __name__ == "__main__":
    logging.captureWarnings(True)
    sys.exit(main())
