"""``python -m bot check``: is everything in place to run? Config, tokens, catalog, database,
and (unless ``--offline``) RunComfy itself, model by model, with its prices."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.catalog import Catalog, CatalogError, load_catalog
from bot.config import ConfigError, Settings, check_default_model, load_secrets, load_settings
from bot.pricing import PriceBook
from bot.runcomfy import RetryPolicy, RunComfyClient, Timeouts
from bot.store.access import ApprovedServers
from bot.store.connect import is_postgres_url, open_database
from bot.store.database import DatabaseError, migrations, redact
from bot.store.keys import GuildKeys

APPROVALS_SCHEMA = 8  # the migration that made the approved servers' table


@dataclass(frozen=True)
class Line:
    item: str
    ok: bool
    detail: str


async def run_check(config: Path | None, environ: Mapping[str, str], *, offline: bool,
                    simulate: bool = False) -> list[Line]:
    lines: list[Line] = []
    try:
        settings = load_settings(config, environ)
    except ConfigError as exc:
        return [Line("config", False, str(exc))]
    if simulate:
        settings = settings.model_copy(update={"simulation": settings.simulation.model_copy(
            update={"enabled": True})})
    source = config or Path(environ.get("BOT_CONFIG", "config.toml"))
    lines.append(Line("config", True, str(source) if source.exists() else "defaults"))
    simulated = settings.simulation.enabled
    token = database_url = None
    try:
        secrets = load_secrets(environ, need_runcomfy=not simulated)
        token, database_url = secrets.runcomfy_token, secrets.database_url
        names = "DISCORD_TOKEN" + ("" if simulated else ", RUNCOMFY_API_TOKEN")
        lines.append(Line("secrets", True, f"{names} set"))
    except ConfigError as exc:
        lines.append(Line("secrets", False, str(exc)))
    catalog = None
    try:
        catalog = load_catalog(*settings.bot.catalog_dirs).with_prices(settings.prices)
        check_default_model(settings, catalog)
        lines.append(Line("catalog", True, f"{len(catalog)} models"))
    except (CatalogError, ConfigError) as exc:
        lines.append(Line("catalog", False, str(exc)))
    lines.append(await _database(database_url or settings.bot.database))
    lines.append(await _access(settings, database_url or settings.bot.database))
    if simulated:
        lines.append(Line("runcomfy", True, "simulation mode: the built-in simulator"))
    elif not offline and token and catalog is not None:
        lines.extend(await _models(settings, catalog, token))
    return lines


async def _database(target: str | Path) -> Line:
    """Which backend, and its schema version; nothing is written (a missing SQLite file is
    created at start-up)."""
    latest = len(migrations("postgresql" if is_postgres_url(target) else "sqlite"))
    shown = redact(target) if isinstance(target, str) else str(target)
    if isinstance(target, Path) and not await asyncio.to_thread(target.exists):
        return Line("database", True, f"SQLite {shown}: not there yet; created at start-up "
                                      f"(schema {latest})")
    try:
        db = await open_database(target, migrate=False)
    except DatabaseError as exc:
        return Line("database", False, str(exc))
    try:
        version = await db.schema_version()
    finally:
        await db.close()
    name = "PostgreSQL" if db.dialect == "postgresql" else "SQLite"
    pending = f"; {latest - version} migrations to apply at start-up" if version < latest else ""
    return Line("database", True, f"{name} {db.where} (schema {version} of {latest}{pending})")


async def _access(settings: Settings, target: str | Path) -> Line:
    """Who may spend the operator's account, and the operator's caps on it."""
    access = settings.access
    caps = settings.account
    spend = ", ".join(f"${usd:g} a {period}" for usd, period in (
        (caps.daily_budget_usd, "day"), (caps.monthly_budget_usd, "month")) if usd)
    tail = f"; account caps: {spend}" if spend else ""
    if access.servers == "open":
        return Line("access", True, f"open: every server the bot is in may spend{tail}")
    stored: list[tuple[int, float]] = []
    own = 0
    if not (isinstance(target, Path) and not await asyncio.to_thread(target.exists)):
        try:
            db = await open_database(target, migrate=False)
        except DatabaseError as exc:
            return Line("access", False, str(exc))
        try:
            if await db.schema_version() >= APPROVALS_SCHEMA:
                stored = await ApprovedServers(db).listed()
                own = await GuildKeys(db).count()
        finally:
            await db.close()
    both = set(access.approved) | {guild for guild, _ in stored}
    keys = f", {own} with their own RunComfy key" if access.servers == "own_key" else ""
    return Line("access", True, f"{access.servers}: {len(both)} servers approved "
                                f"({len(access.approved)} in the config, {len(stored)} with "
                                f"`servers approve`){keys}{tail}")


async def _models(settings: Settings, catalog: Catalog, token: str) -> list[Line]:
    """Ask RunComfy about each enabled model: the token works, and what it costs (and the
    price the bot budgets it at, as the running bot would)."""
    enabled = [m for m in catalog if settings.limits.model_enabled(m.command)]
    book = PriceBook(catalog, settings.prices)
    async with RunComfyClient(token, settings.runcomfy.base_url,
                              retry=RetryPolicy(attempts=2, base_delay=0.5),
                              timeouts=Timeouts(read=settings.runcomfy.request_timeout)) as client:
        failed = await book.refresh(client, enabled)
    lines = []
    for model in enabled:
        if model.command in failed:
            lines.append(Line(model.command, False, str(failed[model.command])))
            continue
        known = book.published.get(model.id)
        published = f"${known.usd:g}/{known.unit}" if known else "no published price"
        used = book.price(model)
        uses = (f"${used.usd:g}/{used.unit}" if used.usd is not None
                else f"unknown: set prices.{model.command} to budget it")
        lines.append(Line(model.command, True, f"RunComfy: {published}; bot uses {uses}"))
    return lines


def render(lines: list[Line]) -> str:
    width = max(len(line.item) for line in lines)
    rows = [f"{'check':<{width}}  result  detail"]
    rows += [f"{line.item:<{width}}  {'ok' if line.ok else 'FAIL':<6}  {line.detail}"
             for line in lines]
    return "\n".join(rows)
