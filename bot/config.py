"""Settings: ``config.toml`` (or ``--config``/``BOT_CONFIG``), then ``BOT_*`` environment overrides.

Secrets never come from the file: ``DISCORD_TOKEN``, ``RUNCOMFY_API_TOKEN``, ``DATABASE_URL`` and
``BOT_SECRET_KEY`` are read from the environment only, and a token written into the file is
refused as an unknown setting.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.access import Mode
from bot.catalog import Catalog, PriceSpec
from bot.policy import AccountCaps, Ceilings, Policy
from bot.runcomfy import DEFAULT_BASE_URL
from bot.shards import Shards
from bot.store.connect import is_postgres_url
from bot.store.database import url_secrets

ENV_PREFIX = "BOT_"
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class ConfigError(Exception):
    """A setting that is missing or malformed; the message is one line naming it."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _id_list(value: object) -> object:
    """A list of ids from the environment's text ("1,2" or "[1, 2]"); anything else as is."""
    if isinstance(value, str):
        return [part for part in value.strip("[] ").replace(",", " ").split() if part]
    return value


class BotSection(_Section):
    database: Path = Path("data/bot.sqlite3")
    catalog_dirs: tuple[Path, ...] = ()
    log_level: LogLevel = "INFO"
    log_format: Literal["text", "json"] = "text"  # json: one object a line, a job's fields
    # The model of Apps > Animate image, /animate and mentions when none is picked.
    default_model: str = "kling-2-1"
    # Turn on only if the bot's Message Content intent is enabled in the developer portal:
    # then replying to someone else's image with a mention works too.
    message_content_intent: bool = False
    # Where images are fetched from by URL (an embed's image, a video's images again for
    # Again and Vary): Discord's CDN and media proxy; "*." also matches subdomains. A URL (or a
    # redirect) anywhere else is refused before any connection is made.
    image_hosts: tuple[str, ...] = ("cdn.discordapp.com", "media.discordapp.net",
                                    "*.discordapp.net")
    # Sharding (see "Scaling out" in the README): unset, one process connects Discord's
    # recommended number of shards; set, this process connects ``shard_ids`` of ``shard_count``
    # and serves only their guilds' jobs.
    shard_count: int | None = Field(default=None, ge=1)
    shard_ids: tuple[int, ...] | None = None

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _ids_from_text(cls, value: object) -> object:
        """``BOT_BOT__SHARD_IDS=0,1`` (or ``[0, 1]``) from the environment."""
        return _id_list(value)

    @model_validator(mode="after")
    def _shards_fit(self) -> BotSection:
        if self.shard_ids is not None:
            if self.shard_count is None:
                raise ValueError("shard_ids needs shard_count")
            if not self.shard_ids or len(set(self.shard_ids)) != len(self.shard_ids):
                raise ValueError("shard_ids must list each shard once")
            if any(not 0 <= i < self.shard_count for i in self.shard_ids):
                raise ValueError(f"shard_ids must be between 0 and {self.shard_count - 1}")
        return self

    @property
    def shards(self) -> Shards | None:
        """This process's share of the guilds, when sharding is set."""
        if self.shard_count is None:
            return None
        ids = self.shard_ids if self.shard_ids is not None else range(self.shard_count)
        return Shards(self.shard_count, frozenset(ids))


class RunComfySection(_Section):
    base_url: str = DEFAULT_BASE_URL
    submit_timeout: float = Field(default=60.0, gt=0)
    request_timeout: float = Field(default=20.0, gt=0)
    retry_attempts: int = Field(default=4, ge=1, le=10)
    retry_base_delay: float = Field(default=1.0, gt=0)
    retry_max_delay: float = Field(default=30.0, gt=0)


class JobsSection(_Section):
    poll_interval: float = Field(default=3.0, gt=0)
    # "planned": each running job is polled from what the bot learned of its kind's run time
    # (rarely while far from its likely finish, densely inside that window); "economy": the
    # same plan with about half the calls; "fixed": every poll_interval (the reference).
    poll_strategy: Literal["planned", "economy", "fixed"] = "planned"
    max_concurrent_polls: int = Field(default=8, ge=1)
    timeout_minutes: float = Field(default=30.0, gt=0)
    card_edit_interval: float = Field(default=5.0, ge=0)
    max_download_mb: float = Field(default=500.0, gt=0)
    # How long a process holds its jobs without renewing (renewed every poll interval): how
    # soon, after a process dies, another process with other shards takes its guilds' jobs.
    lease_seconds: float = Field(default=30.0, gt=0)


class DeliverySection(_Section):
    """Videos larger than a server's upload limit are re-encoded to fit it (``bot.fitting``)
    in ``encode_workers`` processes (0: never; the link is posted), each for at most
    ``encode_time_limit`` seconds."""

    encode_workers: int = Field(default=1, ge=0, le=16)
    encode_time_limit: float = Field(default=300.0, gt=0)


class OpsSection(_Section):
    """The process's own HTTP endpoints for its operator: ``/healthz``, ``/readyz`` and
    ``/metrics`` (Prometheus), on ``listen`` ("host:port"; unset: none)."""

    listen: str | None = None

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is not None:
            host, _, port = value.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError("must be host:port, e.g. 127.0.0.1:9100")
        return value


class SimulationSection(_Section):
    """The built-in RunComfy simulator instead of RunComfy: try the bot without paying."""

    enabled: bool = False
    run_seconds: float = Field(default=20.0, ge=0)
    queue_seconds: float = Field(default=3.0, ge=0)
    workers: int = Field(default=2, ge=1)


class AccessSection(_Section):
    """Which servers may spend the operator's RunComfy account."""

    servers: Mode = "open"
    approved: tuple[int, ...] = ()  # with servers = "approved"; also `python -m bot servers`

    @field_validator("approved", mode="before")
    @classmethod
    def _ids_from_text(cls, value: object) -> object:
        """``BOT_ACCESS__APPROVED=1,2`` (or ``[1, 2]``) from the environment."""
        return _id_list(value)


class Settings(_Section):
    bot: BotSection = BotSection()
    runcomfy: RunComfySection = RunComfySection()
    jobs: JobsSection = JobsSection()
    delivery: DeliverySection = DeliverySection()
    ops: OpsSection = OpsSection()
    simulation: SimulationSection = SimulationSection()
    limits: Policy = Policy()  # every guild's defaults; moderators change them with /settings
    ceilings: Ceilings = Ceilings()  # what no server may loosen
    account: AccountCaps = AccountCaps()  # the operator's account, across every server
    access: AccessSection = AccessSection()
    prices: dict[str, PriceSpec] = {}


@dataclass(frozen=True)
class Secrets:
    discord_token: str
    runcomfy_token: str
    database_url: str | None = None  # PostgreSQL instead of the SQLite file; has a password
    secret_key: str | None = None  # BOT_SECRET_KEY: seals servers' own RunComfy keys

    def __repr__(self) -> str:
        return "Secrets(discord_token=***, runcomfy_token=***, database_url=***, key=***)"

    @property
    def redacted(self) -> list[str]:
        """What must never appear in a log line."""
        database = url_secrets(self.database_url) if self.database_url else []
        keys = [k.strip() for k in (self.secret_key or "").split(",") if k.strip()]
        return [self.discord_token, self.runcomfy_token, *database, *keys]


def load_settings(path: Path | None, environ: Mapping[str, str] | None = None) -> Settings:
    """The settings from ``path`` (when it exists or was named) and the environment."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    named = path is not None or "BOT_CONFIG" in env
    file = path or Path(env.get("BOT_CONFIG", "config.toml"))
    if file.exists():
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{file}: not a readable TOML file: {exc}") from None
    elif named:
        raise ConfigError(f"{file}: config file not found")
    _apply_env(data, env)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        source = f" (in {file})" if file.exists() else ""
        raise ConfigError(f"setting {where}: {error['msg']}{source}") from None


def check_default_model(settings: Settings, catalog: Catalog) -> None:
    name = settings.bot.default_model
    try:
        model = catalog.by_command(name)
    except KeyError:
        raise ConfigError(f"setting bot.default_model: no model {name!r} in the catalog") from None
    if model.kind != "image-to-video":
        raise ConfigError(f"setting bot.default_model: {name!r} does not animate images")


def load_secrets(environ: Mapping[str, str] | None = None, *, need_runcomfy: bool = True
                 ) -> Secrets:
    """The tokens; in simulation mode no RunComfy token is needed (a made-up one is used)."""
    env = os.environ if environ is None else environ
    wanted = ["DISCORD_TOKEN"] + (["RUNCOMFY_API_TOKEN"] if need_runcomfy else [])
    missing = [name for name in wanted if not env.get(name, "").strip()]
    if missing:
        raise ConfigError(f"{' and '.join(missing)} must be set in the environment")
    runcomfy = env.get("RUNCOMFY_API_TOKEN", "").strip() or secrets.token_urlsafe(16)
    database_url = env.get("DATABASE_URL", "").strip() or None
    if database_url and not is_postgres_url(database_url):
        raise ConfigError("DATABASE_URL must be a postgresql://user:password@host:port/db URL"
                          " (without it, the SQLite file of bot.database is used)")
    return Secrets(env["DISCORD_TOKEN"].strip(), runcomfy, database_url,
                   env.get("BOT_SECRET_KEY", "").strip() or None)


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    """``BOT_JOBS__POLL_INTERVAL=2`` sets ``jobs.poll_interval``; ``RUNCOMFY_BASE_URL`` and
    ``LOG_LEVEL`` are the usual names for two of them."""
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX) or "__" not in key:
            continue
        *sections, name = key[len(ENV_PREFIX):].lower().split("__")
        node = data
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = value
    if env.get("RUNCOMFY_BASE_URL"):
        data.setdefault("runcomfy", {})["base_url"] = env["RUNCOMFY_BASE_URL"]
    if env.get("LOG_LEVEL"):
        data.setdefault("bot", {})["log_level"] = env["LOG_LEVEL"].upper()
