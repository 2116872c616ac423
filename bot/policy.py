"""A guild's rules for who may make videos and how many: the moderators' settings.

Defaults come from the config file's ``[limits]``; what a moderator changes is stored per guild,
with an audit row for every change.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import regex
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from regex._main import Pattern

from bot.errors import UserError
from bot.store.database import Database, Tx
from bot.store.settings import Change, Edit, SettingsStore

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


class PolicyStore:
    """Each guild's policy: the config's ``[limits]`` with the guild's own settings over them."""

    def __init__(self, db: Database, defaults: Policy, clock: Callable[[], float]) -> None:
        self.db = db
        self.defaults = defaults
        self.settings = SettingsStore(db, clock)

    async def get(self, guild_id: int, *, tx: Tx | None = None) -> Policy:
        stored = await self.settings.values(guild_id, tx=tx)
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
            edits = [Edit(key, _json(getattr(current, key)), _json(getattr(updated, key)))
                     for key in KEYS]
            await self.settings.record(tx, guild_id, user_id,
                                       [edit for edit in edits if edit.old != edit.new])
        return updated

    async def audit(self, guild_id: int, limit: int = 15) -> list[Change]:
        return await self.settings.audit(guild_id, limit)


def _json(value: Any) -> str:
    return json.dumps(TypeAdapter(Any).dump_python(value, mode="json"))
