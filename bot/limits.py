"""Enforcing a guild's policy before anything is paid for: access, quota, budget, and the
operator's caps on the whole account.

A budget counts each job of the period at its estimate while it runs (a reservation), at its
real cost (else the estimate) once made, and not at all when it failed or was cancelled.
"""

from __future__ import annotations

import asyncio
import calendar
import math
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.catalog import ModelSpec
from bot.errors import UserError
from bot.i18n import _, day_and_month, money, ngettext, number
from bot.policy import MEMBER_LIMITS, AccountCaps, Policy, PolicyStore
from bot.store.allowance import account_fits, account_spent, holdings
from bot.store.database import Database, Tx
from bot.store.keys import StoredKey
from bot.text import duration_text, hours_text

# Sums of prices in floats drift by far less than this: a video that costs exactly what is left
# fits ($21.00 - 4 x $4.20 is $4.199999999999999).
CENT_FRACTION = 1e-6
OPEN_HORIZON = 2 * 86400  # open jobs are younger than this (they time out long before)
# Blocklist checks run in threads of their own, one server's at a time: a server with hostile
# rules can't take every thread (nor the default pool others need), and the regex engine's
# time limit, counted in the process's CPU time, is not eaten by many checks at once.
BLOCKLIST_THREADS = 2


class LimitReached(UserError):
    """The member may not start this video now; the message says why and until when, and
    ``reason`` names the rule (for the metrics: a short fixed word)."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Who:
    guild_id: int
    user_id: int
    channel_ids: frozenset[int]  # the channel, and its parent when it is a thread
    role_ids: frozenset[int]


@dataclass(frozen=True)
class Standing:
    """A member's allowance right now, for ``/quota`` and the refusals."""

    policy: Policy
    today: int
    active: int
    next_allowed_at: float | None
    spent_this_month: float
    day_resets_at: float
    month_resets_at: float
    key: StoredKey | None = None  # the server's own RunComfy key, as stored

    @property
    def budget_left(self) -> float | None:
        budget = self.policy.monthly_budget_usd
        return max(budget - self.spent_this_month, 0.0) if budget else None


def set_by(policy: Policy, key: str) -> str:
    """Who set a limit, when not the server itself: " (the bot's ceiling)", " (the @role
    tier)"."""
    if key in policy.by_ceiling:
        return " " + _("(the bot's ceiling)")
    if policy.tier is not None and key in MEMBER_LIMITS:
        return " " + _("(the <@&{role}> tier)", role=policy.tier)
    return ""


class Limits:
    def __init__(self, db: Database, policies: PolicyStore, clock: Callable[[], float],
                 account: AccountCaps | None = None) -> None:
        self.db = db
        self.policies = policies
        self.clock = clock
        self.account = account or AccountCaps()
        self._checks = ThreadPoolExecutor(BLOCKLIST_THREADS, thread_name_prefix="blocklist")
        self._checking: weakref.WeakValueDictionary[int, asyncio.Lock] = \
            weakref.WeakValueDictionary()

    async def standing(self, guild_id: int, user_id: int, *,
                       roles: frozenset[int] = frozenset(), tx: Tx | None = None) -> Standing:
        """Inside ``tx`` when given: the admission that reads it then records the job."""
        now = self.clock()
        day, month, next_day, next_month = _boundaries(now)
        month_day = _iso(month)
        async with self.db.reading(tx) as reader:
            held = await holdings(reader, guild_id, user_id, day_start=day,
                                  since=min(day, now - OPEN_HORIZON), month_day=month_day,
                                  month_start=month)
        policy = self.policies.in_force(held.settings, roles=roles)
        use, cooldown = held.use, policy.cooldown_seconds
        return Standing(
            policy=policy, today=use.today, active=use.active,
            next_allowed_at=use.last_at + cooldown if use.last_at is not None and cooldown
            else None,
            spent_this_month=held.purse.spent, day_resets_at=next_day,
            month_resets_at=next_month, key=held.purse.key,
        )

    async def check(self, who: Who, model: ModelSpec, prompts: Sequence[str],
                    estimate: float | None, *, budgeted: bool = True,
                    tx: Tx | None = None) -> Standing:
        """Raise ``LimitReached`` with the first of the server's rules this request breaks,
        else the standing it was checked against (with the key the server pays with: the
        account's caps apply only to the operator's, ``check_account``). ``prompts`` are every
        text the model reads as a prompt (none: the blocklist is not checked);
        ``budgeted=False`` for simulated jobs, which never count against the budget."""
        standing = await self.standing(who.guild_id, who.user_id, roles=who.role_ids, tx=tx)
        policy = standing.policy
        await self._check_rules(who, model, prompts, policy)
        now = self.clock()
        if standing.next_allowed_at is not None and standing.next_allowed_at > now:
            raise LimitReached(_(
                "Please wait {wait} before your next video (cooldown {cooldown}{set_by}).",
                wait=duration_text(standing.next_allowed_at - now),
                cooldown=duration_text(policy.cooldown_seconds),
                set_by=set_by(policy, "cooldown_seconds")), reason="cooldown")
        if policy.max_concurrent and standing.active >= policy.max_concurrent:
            raise LimitReached(ngettext(
                "You already have {n} video in progress (limit {limit}{set_by}); wait for one "
                "to finish.",
                "You already have {n} videos in progress (limit {limit}{set_by}); wait for one "
                "to finish.", standing.active, limit=number(policy.max_concurrent),
                set_by=set_by(policy, "max_concurrent")), reason="concurrency")
        if policy.daily_quota and standing.today >= policy.daily_quota:
            raise LimitReached(_(
                "daily quota reached: {used} of {quota}{set_by}, resets in {reset}",
                used=number(standing.today), quota=number(policy.daily_quota),
                set_by=set_by(policy, "daily_quota"),
                reset=hours_text(standing.day_resets_at - now)), reason="daily_quota")
        if budgeted:
            self._check_budget(standing, model, estimate)
        return standing

    async def check_rules(self, who: Who, model: ModelSpec, prompts: Sequence[str]) -> None:
        """Only the rules that count nothing (who may ask, where, for which model, with which
        words): what a request that downloads nothing before its admission needs checked
        first, the blocklist off the event loop; the admission checks them all again."""
        policy = await self.policies.get(who.guild_id, roles=who.role_ids)
        await self._check_rules(who, model, prompts, policy)

    async def _check_rules(self, who: Who, model: ModelSpec, prompts: Sequence[str],
                           policy: Policy) -> None:
        if who.user_id in policy.blocked_users:
            raise LimitReached(_("You are not allowed to make videos on this server."),
                               reason="blocked_member")
        if policy.allowed_channels and not who.channel_ids & set(policy.allowed_channels):
            where = ", ".join(f"<#{c}>" for c in policy.allowed_channels)
            raise LimitReached(_("Videos can't be made in this channel; use {channels}.",
                                 channels=where), reason="channel")
        if policy.allowed_roles and not who.role_ids & set(policy.allowed_roles):
            roles = ", ".join(f"<@&{r}>" for r in policy.allowed_roles)
            raise LimitReached(_("Making videos needs one of these roles: {roles}.",
                                 roles=roles), reason="role")
        if not policy.model_enabled(model.command):
            raise LimitReached(_("`{command}` is turned off on this server.",
                                 command=model.command), reason="model_off")
        if prompts and policy.prompt_blocklist:  # bounded, and off the event loop
            blocked = await self._blocked(who.guild_id, policy, prompts)
            if blocked is not None:
                raise LimitReached(_("Your prompt contains “{blocked}”, which is not allowed "
                                     "here.", blocked=blocked), reason="blocklist")

    async def _blocked(self, guild_id: int, policy: Policy, prompts: Sequence[str]) -> str | None:
        lock = self._checking.get(guild_id)
        if lock is None:
            lock = self._checking[guild_id] = asyncio.Lock()
        async with lock:
            return await asyncio.get_running_loop().run_in_executor(
                self._checks, policy.blocked_text, *prompts)

    async def check_budget(self, guild_id: int, model: ModelSpec, estimate: float | None, *,
                           budgeted: bool = True, tx: Tx | None = None) -> Standing:
        """Only the server's budget (for a moderator's retry, which no member rule limits)."""
        standing = await self.standing(guild_id, 0, tx=tx)
        if budgeted:
            self._check_budget(standing, model, estimate)
        return standing

    async def account_standing(self, *, tx: Tx | None = None) -> tuple[float, float]:
        """What the operator's account spent (or reserved) today and this month."""
        now = self.clock()
        day, month, _, _ = _boundaries(now)
        async with self.db.reading(tx) as reader:
            return await account_spent(reader, day=_iso(day), day_start=day, month=_iso(month),
                                       month_start=month)

    async def check_account(self, model: ModelSpec, estimate: float | None, *,
                            tx: Tx | None = None) -> None:
        """The operator's caps on the whole account; the refusal never says whose spending
        reached them."""
        if not self.account.any:
            return
        estimate = self._account_priced(model, estimate)
        today, this_month = await self.account_standing(tx=tx)
        refusal = self._account_refusal(today, this_month, estimate)
        if refusal is not None:
            raise refusal

    def account_fits(self, model: ModelSpec, estimate: float | None
                     ) -> tuple[str, tuple[float | str, ...]] | None:
        """The account's caps as a condition on the statement that writes the job down
        (``JobStore.add_if``): the account's lock taken (on PostgreSQL), its sums read and the
        job added in one round trip, so that admissions on the operator's key, which take
        their turns with the account, each hold it for that statement and the commit only.
        ``None``: the account has no caps."""
        if not self.account.any:
            return None
        estimate = self._account_priced(model, estimate)
        day, month, _, _ = _boundaries(self.clock())
        return account_fits(self.db.dialect, day=_iso(day), day_start=day, month=_iso(month),
                            month_start=month, estimate=estimate,
                            daily=self.account.daily_budget_usd,
                            monthly=self.account.monthly_budget_usd, slack=CENT_FRACTION)

    async def account_refused(self, model: ModelSpec, estimate: float | None, *,
                              tx: Tx) -> LimitReached:
        """Why the account's caps refused a job that ``account_fits`` kept out."""
        estimate = self._account_priced(model, estimate)
        today, this_month = await self.account_standing(tx=tx)
        # The sums may have moved since (a job's cost settled): then the first cap there is.
        refusal = self._account_refusal(today, this_month, estimate) or \
            self._account_refusal(math.inf, math.inf, estimate)
        assert refusal is not None  # the account has a cap
        return refusal

    @staticmethod
    def _account_priced(model: ModelSpec, estimate: float | None) -> float:
        if estimate is None:
            raise LimitReached(_("`{command}` has no known price yet, so the bot's own "
                                 "spending limit can't be kept; the bot's operator can set "
                                 "`prices.{command}`.", command=model.command),
                               reason="unpriced")
        return estimate

    def _account_refusal(self, today: float, this_month: float,
                         estimate: float) -> LimitReached | None:
        caps, now = self.account, self.clock()
        *_starts, next_day, next_month = _boundaries(now)
        if caps.daily_budget_usd and estimate - (caps.daily_budget_usd - today) > CENT_FRACTION:
            return LimitReached(_("The bot's own spending limit for today is reached; it "
                                  "resets in {reset}.", reset=hours_text(next_day - now)),
                                reason="account_day")
        if caps.monthly_budget_usd and \
                estimate - (caps.monthly_budget_usd - this_month) > CENT_FRACTION:
            return LimitReached(_("The bot's own spending limit for this month is reached; "
                                  "it resets on {day}.", day=day_and_month(next_month)),
                                reason="account_month")
        return None

    @staticmethod
    def _check_budget(standing: Standing, model: ModelSpec, estimate: float | None) -> None:
        """A server with a budget refuses what it cannot price: an unknown price would let
        any number of videos through."""
        policy = standing.policy
        left = standing.budget_left
        if left is not None and estimate is None:
            raise LimitReached(_(
                "`{command}` has no known price yet, so this server's monthly video budget "
                "can't be kept; the bot's operator can set `prices.{command}`.",
                command=model.command), reason="unpriced")
        if left is not None and (left <= CENT_FRACTION or (estimate or 0) - left > CENT_FRACTION):
            spent = _("{spent} of {budget}{set_by} spent; it resets on {day}",
                      spent=money(standing.spent_this_month),
                      budget=money(policy.monthly_budget_usd),
                      set_by=set_by(policy, "monthly_budget_usd"),
                      day=day_and_month(standing.month_resets_at))
            if left <= CENT_FRACTION:
                raise LimitReached(_("This server's monthly video budget is used up: {spent}.",
                                     spent=spent), reason="server_budget")
            raise LimitReached(_("This video (about {cost}) would go over this server's "
                                 "monthly video budget: {spent}.", cost=money(estimate or 0),
                                 spent=spent), reason="server_budget")


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).date().isoformat()


def _boundaries(now: float) -> tuple[float, float, float, float]:
    """Start of today and of this month (UTC), and when each ends."""
    moment = datetime.fromtimestamp(now, UTC)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    days = calendar.monthrange(month.year, month.month)[1]
    return (day.timestamp(), month.timestamp(), (day + timedelta(days=1)).timestamp(),
            (month + timedelta(days=days)).timestamp())
