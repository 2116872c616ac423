"""A guild's rules for who may make videos and how many: the moderators' settings.

Defaults come from the config file's ``[limits]``; what a moderator changes is stored per guild,
with an audit row for every change.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import regex
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from regex._main import Pattern

from bot.errors import UserError
from bot.store.database import Database, Tx

PATTERN_MAX = 200
MATCH_TIMEOUT = 0.05  # seconds a blocklist regular expression may spend on one prompt


class BlockRule(BaseModel):
    """A word (matched as a whole word, any case) or a regular expression."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pattern: str = Field(min_length=1, max_length=PATTERN_MAX)
    regex: bool = False

    def compiled(self) -> Pattern[str]:
        source = self.pattern if self.regex else rf"(?<!\w){regex.escape(self.pattern)}(?!\w)"
        try:
            return regex.compile(source, regex.IGNORECASE | regex.V1)
        except regex.error as exc:
            raise UserError(f"`{self.pattern}` is not a valid regular expression: {exc}.") \
                from None

    @property
    def label(self) -> str:
        return f"/{self.pattern}/" if self.regex else self.pattern


class Policy(BaseModel):
    """Everything a moderator can set. Empty lists mean "no restriction"; 0 means "no limit"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled_models: tuple[str, ...] = ()
    allowed_roles: tuple[int, ...] = ()
    allowed_channels: tuple[int, ...] = ()
    blocked_users: tuple[int, ...] = ()
    prompt_blocklist: tuple[BlockRule, ...] = ()
    daily_quota: int = Field(default=0, ge=0)
    max_concurrent: int = Field(default=2, ge=0)
    cooldown_seconds: int = Field(default=0, ge=0)
    monthly_budget_usd: float = Field(default=0.0, ge=0)
    default_model: str | None = None

    def model_enabled(self, command: str) -> bool:
        return not self.enabled_models or command in self.enabled_models

    def blocked_text(self, prompt: str) -> str | None:
        """The part of ``prompt`` a blocklist rule matches, if any (slow patterns count as
        matches: a prompt that cannot be checked is not let through)."""
        for rule in self.prompt_blocklist:
            try:
                found = rule.compiled().search(prompt, timeout=MATCH_TIMEOUT)
            except TimeoutError:
                return rule.label
            if found:
                return str(found.group(0))
        return None


KEYS = tuple(Policy.model_fields)


@dataclass(frozen=True)
class Change:
    key: str
    old: str | None
    new: str
    user_id: int
    at: float


class PolicyStore:
    def __init__(self, db: Database, defaults: Policy, clock: Callable[[], float]) -> None:
        self.db = db
        self.defaults = defaults
        self.clock = clock

    async def get(self, guild_id: int, *, tx: Tx | None = None) -> Policy:
        async with self.db.reading(tx) as reader:
            rows = await reader.fetch("SELECT key, value FROM guild_settings WHERE guild_id = ?",
                                      guild_id)
        stored = {row[0]: json.loads(row[1]) for row in rows}
        merged = self.defaults.model_dump() | {k: v for k, v in stored.items() if k in KEYS}
        return Policy.model_validate(merged)

    async def update(self, guild_id: int, user_id: int,
                     change: Callable[[Policy], dict[str, Any]]) -> Policy:
        """Change settings from what they are now: ``change`` gets the current policy and
        answers the new values by key (or raises ``UserError``). Validated, and recorded in
        the audit log (who, from what, to what), in one transaction that no other change of
        the guild's settings interleaves with, so two moderators at once both land."""
        async with self.db.transaction() as tx:
            await tx.lock_guild(guild_id)
            current = await self.get(guild_id, tx=tx)
            updated = Policy.model_validate(current.model_dump() | change(current))
            for key in KEYS:
                old = json.dumps(_plain(getattr(current, key)))
                new = json.dumps(_plain(getattr(updated, key)))
                if old == new:
                    continue
                await tx.execute("INSERT INTO guild_settings (guild_id, key, value)"
                                 " VALUES (?, ?, ?) ON CONFLICT (guild_id, key)"
                                 " DO UPDATE SET value = excluded.value", guild_id, key, new)
                await tx.execute("INSERT INTO settings_audit (guild_id, user_id, key, old_value,"
                                 " new_value, at) VALUES (?, ?, ?, ?, ?, ?)",
                                 guild_id, user_id, key, old, new, self.clock())
        return updated

    async def audit(self, guild_id: int, limit: int = 15) -> list[Change]:
        rows = await self.db.fetch(
            "SELECT key, old_value, new_value, user_id, at FROM settings_audit"
            " WHERE guild_id = ? ORDER BY id DESC LIMIT ?", guild_id, limit)
        return [Change(row[0], row[1], row[2], int(row[3]), float(row[4])) for row in rows]


def _plain(value: Any) -> Any:
    return TypeAdapter(Any).dump_python(value, mode="json")
