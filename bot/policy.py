"""A guild's rules for who may make videos and how many: the moderators' settings.

Defaults come from the config file's ``[limits]``; what a moderator changes is stored per guild,
with an audit row for every change. The operator's ``[ceilings]`` bound what is in force: a
server can tighten them, never loosen them. A role's tier replaces the server's member limits
for the members who have it (the most generous of a member's tiers), still under the ceilings.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.blocklist import MAX_RULES, PATTERN_MAX, compiled, first_blocked
from bot.errors import UserError
from bot.i18n import LANGUAGES, _
from bot.store.database import Database, Tx
from bot.store.settings import Change, Edit, SettingsStore

if TYPE_CHECKING:
    from regex._main import Pattern


class BlockRule(BaseModel):
    """A word (matched as a whole word, any case) or a regular expression
    (``bot.blocklist`` matches them)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pattern: str = Field(min_length=1, max_length=PATTERN_MAX)
    regex: bool = False

    @model_validator(mode="after")
    def _valid(self) -> BlockRule:
        """A rule that cannot be compiled, or that matches every prompt (it matches empty
        text), is refused wherever it comes from: the config file or ``/settings``."""
        try:
            pattern = self.compiled()
        except UserError as exc:
            raise ValueError(str(exc)) from None
        if pattern.fullmatch(""):
            raise ValueError(_("`{pattern}` matches every prompt (even an empty one).",
                               pattern=self.pattern))
        return self

    @classmethod
    def parse(cls, pattern: str, is_regex: bool) -> BlockRule:
        """A rule from a moderator's input; a ``UserError`` saying what is wrong with it."""
        try:
            return cls(pattern=pattern, regex=is_regex)
        except ValidationError as exc:
            error = exc.errors()[0]
            reason = error["msg"].removeprefix("Value error, ")
            # A value error is one of ``_valid``'s whole sentences (in the member's language);
            # anything else is pydantic's own words (in English), said after the rule.
            raise UserError(reason if error["type"] == "value_error" else
                            _("`{pattern}` can't be a blocklist rule: {reason}.",
                              pattern=pattern, reason=reason)) from None

    def compiled(self) -> Pattern[str]:
        return compiled(self.pattern, self.regex)

    @property
    def label(self) -> str:
        return f"/{self.pattern}/" if self.regex else self.pattern


class Tier(BaseModel):
    """A role's own member limits (0: no limit), instead of the server's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role_id: int
    daily_quota: int = Field(default=0, ge=0)
    max_concurrent: int = Field(default=0, ge=0)
    cooldown_seconds: int = Field(default=0, ge=0)

    def generosity(self) -> tuple[float, float, float]:
        """Bigger is more generous: more videos a day, more at once, shorter waits."""
        return (self.daily_quota or math.inf, self.max_concurrent or math.inf,
                -self.cooldown_seconds)


class Ceilings(BaseModel):
    """The operator's bounds on every server (0: none): no server may allow more videos a
    day, more at once or a bigger budget, nor a shorter cooldown."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    monthly_budget_usd: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    daily_quota: int = Field(default=0, ge=0)
    max_concurrent: int = Field(default=0, ge=0)
    cooldown_seconds: int = Field(default=0, ge=0)

    def bound(self, policy: Policy) -> Policy:
        """``policy`` as it is in force: each limit at most its ceiling (a server's 0, "no
        limit", is the ceiling), the cooldown at least the ceiling's; which ones the ceiling
        set is kept in ``by_ceiling``."""
        values: dict[str, Any] = {}
        for key in UPPER:
            ceiling, own = getattr(self, key), getattr(policy, key)
            if ceiling and (not own or own > ceiling):
                values[key] = ceiling
        if self.cooldown_seconds > policy.cooldown_seconds:
            values["cooldown_seconds"] = self.cooldown_seconds
        return policy.model_copy(update=values | {"by_ceiling": frozenset(values)})


class AccountCaps(BaseModel):
    """What the operator's RunComfy account may spend across every server (0: no cap)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    daily_budget_usd: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    monthly_budget_usd: float = Field(default=0.0, ge=0, allow_inf_nan=False)

    @property
    def any(self) -> bool:
        return bool(self.daily_budget_usd or self.monthly_budget_usd)


UPPER = ("monthly_budget_usd", "daily_quota", "max_concurrent")
MEMBER_LIMITS = ("daily_quota", "max_concurrent", "cooldown_seconds")
MAX_TIERS = 25


class Policy(BaseModel):
    """Everything a moderator can set. Empty lists mean "no restriction"; 0 means "no limit".
    ``by_ceiling`` and ``tier`` are not settings: which limits the operator's ceilings set,
    and the role whose tier applies (``PolicyStore.get``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled_models: tuple[str, ...] = ()
    allowed_roles: tuple[int, ...] = ()
    allowed_channels: tuple[int, ...] = ()
    blocked_users: tuple[int, ...] = ()
    prompt_blocklist: tuple[BlockRule, ...] = Field(default=(), max_length=MAX_RULES)
    daily_quota: int = Field(default=0, ge=0)
    max_concurrent: int = Field(default=2, ge=0)
    cooldown_seconds: int = Field(default=0, ge=0)
    monthly_budget_usd: float = Field(default=0.0, ge=0, allow_inf_nan=False)
    default_model: str | None = None
    language: str | None = None  # Discord's locale for the channels; None: the server's own
    tiers: tuple[Tier, ...] = Field(default=(), max_length=MAX_TIERS)
    by_ceiling: frozenset[str] = Field(default=frozenset(), exclude=True)
    tier: int | None = Field(default=None, exclude=True)

    @field_validator("language")
    @classmethod
    def _spoken(cls, language: str | None) -> str | None:
        if language is not None and language not in LANGUAGES:
            raise ValueError(f"the bot does not speak {language!r}; it speaks "
                             f"{', '.join(LANGUAGES)}")
        return language

    def for_roles(self, role_ids: frozenset[int]) -> Policy:
        """The member limits of the most generous tier among ``role_ids``, if any."""
        mine = [t for t in self.tiers if t.role_id in role_ids]
        if not mine:
            return self
        best = max(mine, key=Tier.generosity)
        return self.model_copy(update={key: getattr(best, key) for key in MEMBER_LIMITS}
                               | {"tier": best.role_id})

    def model_enabled(self, command: str) -> bool:
        return not self.enabled_models or command in self.enabled_models

    def blocked_text(self, *texts: str) -> str | None:
        """What the blocklist found in ``texts`` (or the rule that could not be checked in
        time: a prompt that cannot be checked is not let through), or ``None``. Up to
        ``bot.blocklist.CHECK_SECONDS`` of work: call it off the event loop."""
        return first_blocked(self.prompt_blocklist, texts) if self.prompt_blocklist else None


KEYS = tuple(k for k, f in Policy.model_fields.items() if not f.exclude)


class PolicyStore:
    """Each guild's policy: the config's ``[limits]`` with the guild's own settings over them."""

    def __init__(self, db: Database, defaults: Policy, clock: Callable[[], float],
                 ceilings: Ceilings | None = None) -> None:
        self.db = db
        self.defaults = defaults
        self.ceilings = ceilings or Ceilings()
        self.settings = SettingsStore(db, clock)

    async def get(self, guild_id: int, *, roles: frozenset[int] = frozenset(),
                  tx: Tx | None = None) -> Policy:
        """What is in force in the guild (for a member with ``roles``: their tier's limits),
        under the operator's ceilings."""
        return self.in_force(await self.settings.values(guild_id, tx=tx), roles=roles)

    def in_force(self, stored: dict[str, Any], *, roles: frozenset[int] = frozenset()) -> Policy:
        """``get`` from the guild's stored settings (``SettingsStore.values``), read already."""
        return self.ceilings.bound(self._chosen(stored).for_roles(roles))

    async def chosen(self, guild_id: int, *, tx: Tx | None = None) -> Policy:
        """The server's own settings over the config's defaults, before the ceilings."""
        return self._chosen(await self.settings.values(guild_id, tx=tx))

    def _chosen(self, stored: dict[str, Any]) -> Policy:
        merged = self.defaults.model_dump() | {k: v for k, v in stored.items() if k in KEYS}
        return Policy.model_validate(merged)

    async def update(self, guild_id: int, user_id: int,
                     change: Callable[[Policy], dict[str, Any]]) -> Policy:
        """Change settings from what they are now: ``change`` gets the current policy and
        answers the new values by key (or raises ``UserError``). Validated, and recorded in
        the audit log (who, from what, to what), in one transaction that no other change of
        the guild's settings interleaves with, so two moderators at once both land."""
        async with self.db.transaction(guild=guild_id) as tx:
            current = await self.chosen(guild_id, tx=tx)
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
