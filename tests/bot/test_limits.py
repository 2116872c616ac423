"""A guild's rules enforced before anything is paid for (``bot.limits``): who may make videos
and where, what they may ask, and how many and how much, from the jobs in a real store on both
backends. Time is a manual clock, so the day and the month turn when the test says. No Discord
(the commands are in tests/cogs/test_settings.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.catalog import Catalog, ModelSpec, PriceSpec
from bot.jobs import Job, JobState
from bot.limits import LimitReached, Limits, Who
from bot.policy import AccountCaps, BlockRule, Ceilings, Policy, PolicyStore
from bot.pricing import PriceBook
from bot.store.connect import open_database
from bot.store.database import Database
from bot.store.jobs import JobStore, NewJob

GUILD, OTHER_GUILD = 1 << 22, 2 << 22
CHANNEL, THREAD = 77, 78
ALICE, BOB, MOD = 1001, 1002, 1003
ARTISTS, PATRONS = 5, 6
JANUARY = 1_768_910_400.0  # 2026-01-20 12:00 UTC
START = 1_770_758_100.0  # 2026-02-10 21:15 UTC
TOMORROW = 1_770_768_000.0  # 2026-02-11 00:00 UTC
MARCH = 1_772_323_200.0  # 2026-03-01 00:00 UTC
PATHS = {
    JobState.QUEUED: (JobState.QUEUED,),
    JobState.RUNNING: (JobState.QUEUED, JobState.RUNNING),
    JobState.DELIVERED: (JobState.QUEUED, JobState.RUNNING, JobState.FETCHED,
                         JobState.DELIVERING, JobState.DELIVERED),
    JobState.FAILED: (JobState.QUEUED, JobState.RUNNING, JobState.FAILED),
    JobState.CANCELLED: (JobState.QUEUED, JobState.CANCELLED),
    JobState.OUTCOME_UNKNOWN: (JobState.OUTCOME_UNKNOWN,),
}


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@dataclass
class Guilds:
    """The store and the rules, as bot/discord/client.py wires them."""

    db: Database
    store: JobStore
    policies: PolicyStore
    limits: Limits
    prices: PriceBook
    clock: Clock
    catalog: Catalog

    def model(self, command: str = "kling-3-0-4k") -> ModelSpec:
        return self.catalog.by_command(command)

    async def set(self, guild: int = GUILD, **values: Any) -> None:
        """A moderator's change of the guild's settings."""
        await self.policies.update(guild, MOD, lambda _current: values)

    async def job(self, state: JobState = JobState.QUEUED, *, user: int = ALICE,
                  guild: int = GUILD, command: str = "kling-3-0-4k",
                  estimate: float | None = 2.1, cost: float | None = None,
                  simulated: bool = False) -> Job:
        """A job asked for now, moved the way the service and the poller move it."""
        model = self.model(command)
        job = await self.store.add(NewJob(
            guild_id=guild, channel_id=CHANNEL, user_id=user, model_id=model.id,
            command=model.command, prompt="a comet", body={"prompt": "a comet", "duration": 5},
            estimated_usd=estimate, seconds=5.0, simulated=simulated))
        moved = await self.store.move(job.id, JobState.SUBMITTING)
        for step in PATHS[state]:
            fields: dict[str, Any] = {}
            if step is JobState.QUEUED:
                fields["request_id"] = f"req-{job.id}"
            if step is JobState.FETCHED:
                fields["cost_usd"] = cost
            if step.is_terminal:
                fields["finished_at"] = self.clock()
            moved = await self.store.move(job.id, step, **fields)
        assert moved is not None and moved.state is state
        return moved

    async def refusal(self, who: Who | None = None, command: str = "kling-3-0-4k",
                      prompts: Sequence[str] = ("a comet",), estimate: float | None = 2.1,
                      *, budgeted: bool = True) -> str | None:
        """What the member is told (``None``: nothing stops them)."""
        try:
            await self.limits.check(who or member(), self.model(command), prompts, estimate,
                                    budgeted=budgeted)
        except LimitReached as exc:
            return str(exc)
        return None

    async def budget_refusal(self, command: str = "kling-3-0-4k",
                             estimate: float | None = 2.1) -> str | None:
        try:
            await self.limits.check_budget(GUILD, self.model(command), estimate)
        except LimitReached as exc:
            return str(exc)
        return None


def member(user: int = ALICE, channels: Sequence[int] = (CHANNEL,),
           roles: Sequence[int] = ()) -> Who:
    return Who(GUILD, user, frozenset(channels), frozenset(roles))


@pytest.fixture
async def guilds(database_target: Path | str, catalog: Catalog) -> AsyncIterator[Guilds]:
    clock = Clock()
    db = await open_database(database_target, clock=clock)
    policies = PolicyStore(db, Policy(), clock)
    yield Guilds(db, JobStore(db, clock), policies, Limits(db, policies, clock),
                 PriceBook(catalog, {}), clock, catalog)
    await db.close()


async def test_a_new_members_standing(guilds: Guilds) -> None:
    standing = await guilds.limits.standing(GUILD, ALICE)
    assert (standing.today, standing.active, standing.next_allowed_at,
            standing.spent_this_month) == (0, 0, None, 0.0)
    assert (standing.day_resets_at, standing.month_resets_at) == (TOMORROW, MARCH)
    assert standing.policy == Policy()
    assert standing.budget_left is None  # no budget: nothing to keep
    assert await guilds.refusal() is None


async def test_a_blocked_member_is_refused_before_any_other_rule(guilds: Guilds) -> None:
    await guilds.set(blocked_users=[ALICE], allowed_channels=[CHANNEL + 1],
                     enabled_models=["wan-2-2"], daily_quota=1)
    await guilds.job(JobState.DELIVERED)
    assert await guilds.refusal() == "You are not allowed to make videos on this server."
    assert await guilds.refusal(member(BOB)) == (
        f"Videos can't be made in this channel; use <#{CHANNEL + 1}>.")


async def test_channels_count_a_threads_parent(guilds: Guilds) -> None:
    await guilds.set(allowed_channels=[CHANNEL, 90])
    assert await guilds.refusal(member(channels=[91])) == (
        f"Videos can't be made in this channel; use <#{CHANNEL}>, <#90>.")
    assert await guilds.refusal(member(channels=[90])) is None
    assert await guilds.refusal(member(channels=[THREAD, CHANNEL])) is None  # a thread in it
    assert await guilds.refusal(member(channels=[THREAD, 91])) is not None


async def test_roles_then_the_model_then_the_prompt(guilds: Guilds) -> None:
    await guilds.set(allowed_roles=[ARTISTS, PATRONS], enabled_models=["wan-2-2", "kling-3-0"],
                     prompt_blocklist=[BlockRule(pattern="gore")])
    assert await guilds.refusal(member(roles=[99]), prompts=["gore"]) == (
        f"Making videos needs one of these roles: <@&{ARTISTS}>, <@&{PATRONS}>.")
    artist = member(roles=[99, PATRONS])
    assert await guilds.refusal(artist, prompts=["gore"]) == (
        "`kling-3-0-4k` is turned off on this server.")
    assert await guilds.refusal(artist, "wan-2-2", ["a calm sea", "no GORE please"]) == (
        "Your prompt contains “GORE”, which is not allowed here.")  # every prompt is read
    assert await guilds.refusal(artist, "wan-2-2", ["a calm sea", "gorenje"]) is None
    assert await guilds.refusal(artist, "kling-3-0", []) is None


async def test_the_cooldown_counts_from_the_last_video_asked_for(guilds: Guilds) -> None:
    await guilds.set(cooldown_seconds=600, max_concurrent=0)
    await guilds.job(JobState.DELIVERED)
    guilds.clock.now = START + 100
    assert await guilds.refusal() == (
        "Please wait 8 min 20 s before your next video (cooldown 10 min 0 s).")
    assert (await guilds.limits.standing(GUILD, ALICE)).next_allowed_at == START + 600
    assert await guilds.refusal(member(BOB)) is None  # each member has their own
    guilds.clock.now = START + 599
    assert await guilds.refusal() == (
        "Please wait 1 s before your next video (cooldown 10 min 0 s).")
    guilds.clock.now = START + 600
    assert await guilds.refusal() is None


async def test_open_jobs_count_against_concurrency_even_from_yesterday(guilds: Guilds) -> None:
    await guilds.set(max_concurrent=2)
    guilds.clock.now = TOMORROW - 60  # 23:59
    running = await guilds.job(JobState.RUNNING)
    await guilds.job(JobState.DELIVERED)
    guilds.clock.now = TOMORROW + 60  # 00:01, another day
    await guilds.job(JobState.QUEUED)
    await guilds.job(JobState.OUTCOME_UNKNOWN)  # over: no longer in progress
    await guilds.job(JobState.QUEUED, user=BOB)
    await guilds.job(JobState.QUEUED, guild=OTHER_GUILD)
    assert (await guilds.limits.standing(GUILD, ALICE)).active == 2
    assert await guilds.refusal() == ("You already have 2 videos in progress (limit 2); wait "
                                      "for one to finish.")
    await guilds.store.move(running.id, JobState.FETCHED)  # finished, still being posted
    assert await guilds.refusal() is not None
    await guilds.store.move(running.id, JobState.UNDELIVERABLE)
    assert await guilds.refusal() is None
    await guilds.set(max_concurrent=1)
    assert await guilds.refusal() == ("You already have 1 video in progress (limit 1); wait "
                                      "for one to finish.")
    await guilds.set(max_concurrent=0)  # no limit
    assert await guilds.refusal() is None


async def test_the_daily_quota_counts_todays_videos_but_not_failed_or_cancelled_ones(
        guilds: Guilds) -> None:
    await guilds.set(daily_quota=2, max_concurrent=0)
    guilds.clock.now = START - 86400  # yesterday: not today's
    await guilds.job(JobState.DELIVERED)
    guilds.clock.now = START
    await guilds.job(JobState.FAILED)
    await guilds.job(JobState.CANCELLED)
    await guilds.job(JobState.DELIVERED, user=BOB)
    await guilds.job(JobState.DELIVERED, guild=OTHER_GUILD)
    await guilds.job(JobState.DELIVERED)
    assert await guilds.refusal() is None
    await guilds.job(JobState.QUEUED)
    assert (await guilds.limits.standing(GUILD, ALICE)).today == 2
    assert await guilds.refusal() == "daily quota reached: 2 of 2, resets in 2 h 45 min"
    assert await guilds.refusal(member(BOB)) is None
    guilds.clock.now = TOMORROW - 30
    assert await guilds.refusal() == "daily quota reached: 2 of 2, resets in 1 min"
    guilds.clock.now = TOMORROW
    assert (await guilds.limits.standing(GUILD, ALICE)).today == 0
    assert await guilds.refusal() is None


async def test_the_budget_counts_open_jobs_at_their_estimate_and_made_ones_at_their_cost(
        guilds: Guilds) -> None:
    await guilds.set(monthly_budget_usd=5.0, max_concurrent=0)
    guilds.clock.now = JANUARY
    await guilds.job(JobState.DELIVERED, cost=2.0)  # last month's
    guilds.clock.now = START
    await guilds.job(JobState.DELIVERED, estimate=2.1, cost=1.3)  # RunComfy's cost
    await guilds.job(JobState.RUNNING, estimate=2.1, user=BOB)  # reserved at its estimate
    await guilds.job(JobState.FAILED, estimate=2.1)  # given back
    await guilds.job(JobState.CANCELLED, estimate=2.1)
    await guilds.job(JobState.DELIVERED, cost=2.0, simulated=True)  # never budgeted
    await guilds.job(JobState.QUEUED, simulated=True)
    await guilds.job(JobState.DELIVERED, cost=2.0, guild=OTHER_GUILD)
    standing = await guilds.limits.standing(GUILD, ALICE)
    assert standing.spent_this_month == pytest.approx(3.4)
    assert standing.budget_left == pytest.approx(1.6)
    over = ("This video (about $2.10) would go over this server's monthly video budget: $3.40 "
            "of $5.00 spent; it resets on 1 March.")
    assert await guilds.refusal(estimate=2.1) == over
    assert await guilds.budget_refusal(estimate=2.1) == over
    assert await guilds.refusal(estimate=1.59) is None
    assert await guilds.refusal(estimate=2.1, budgeted=False) is None  # a simulated job

    # A job whose outcome is unknown may have been charged: it counts at its estimate.
    await guilds.job(JobState.OUTCOME_UNKNOWN, estimate=1.6)
    used_up = ("This server's monthly video budget is used up: $5.00 of $5.00 spent; it "
               "resets on 1 March.")
    assert await guilds.refusal(estimate=0.42) == used_up
    assert await guilds.budget_refusal(estimate=0.0) == used_up
    assert (await guilds.limits.standing(GUILD, ALICE)).budget_left == 0.0
    guilds.clock.now = MARCH  # a new month
    assert (await guilds.limits.standing(GUILD, ALICE)).spent_this_month == 0.0
    assert await guilds.refusal(estimate=2.1) is None


async def test_a_budget_refuses_what_it_cannot_price(guilds: Guilds) -> None:
    wan = guilds.model("wan-2-2")
    body = {"prompt": "a comet", "duration": 5}
    assert guilds.prices.estimate(wan, body) is None  # no price in the catalog or from RunComfy
    assert await guilds.refusal(command="wan-2-2", estimate=None) is None  # no budget to keep
    await guilds.set(monthly_budget_usd=50.0)
    unknown = ("`wan-2-2` has no known price yet, so this server's monthly video budget can't "
               "be kept; the bot's operator can set `prices.wan-2-2`.")
    assert await guilds.refusal(command="wan-2-2", estimate=None) == unknown
    assert await guilds.budget_refusal("wan-2-2", None) == unknown
    assert await guilds.refusal(command="wan-2-2", estimate=None, budgeted=False) is None
    priced = PriceBook(guilds.catalog, {"wan-2-2": PriceSpec(unit="second", usd=0.05)})
    estimate = priced.estimate(wan, body)
    assert estimate == pytest.approx(0.25)
    assert await guilds.refusal(command="wan-2-2", estimate=estimate) is None


async def test_simulated_jobs_are_never_budgeted_but_are_videos(guilds: Guilds) -> None:
    await guilds.set(monthly_budget_usd=1.0, daily_quota=3, max_concurrent=0)
    await guilds.job(JobState.DELIVERED, cost=2.1, simulated=True)
    await guilds.job(JobState.RUNNING, simulated=True)
    assert (await guilds.limits.standing(GUILD, ALICE)).spent_this_month == 0.0
    assert await guilds.refusal(estimate=0.84) is None
    assert await guilds.refusal(estimate=100.0, budgeted=False) is None
    await guilds.job(JobState.QUEUED, simulated=True)
    assert await guilds.refusal(estimate=0.0, budgeted=False) == (
        "daily quota reached: 3 of 3, resets in 2 h 45 min")


async def test_only_the_budget_holds_a_moderators_retry(guilds: Guilds) -> None:
    """``check_budget`` (a moderator's ``/retry``): the member's own rules do not apply."""
    await guilds.set(blocked_users=[ALICE], daily_quota=1, max_concurrent=1,
                     cooldown_seconds=3600, enabled_models=["wan-2-2"], monthly_budget_usd=3.0)
    await guilds.job(JobState.RUNNING, estimate=2.1)
    assert await guilds.refusal() == "You are not allowed to make videos on this server."
    assert await guilds.budget_refusal(estimate=0.89) is None
    assert await guilds.budget_refusal(estimate=0.91) == (
        "This video (about $0.91) would go over this server's monthly video budget: $2.10 of "
        "$3.00 spent; it resets on 1 March.")


async def test_a_video_that_takes_exactly_what_is_left_is_let_through(guilds: Guilds) -> None:
    """Four 10-second Kling 3.0 4K videos ($0.42/s: $4.20 each) reserved of a $21.00 budget:
    a fifth fits exactly. The refusal would read "about $4.20 ... $16.80 of $21.00 spent"."""
    await guilds.set(monthly_budget_usd=21.0, max_concurrent=0)
    for _ in range(4):
        await guilds.job(JobState.QUEUED, estimate=4.2)
    assert await guilds.refusal(estimate=4.2) is None


# The operator's ceilings, role tiers and the account's caps.

async def test_a_servers_no_limit_is_the_ceiling_and_a_tighter_limit_its_own(
        guilds: Guilds) -> None:
    ceilings = Ceilings(daily_quota=2, max_concurrent=1, cooldown_seconds=60,
                        monthly_budget_usd=3.0)
    policies = PolicyStore(guilds.db, Policy(), guilds.clock, ceilings)
    limits = Limits(guilds.db, policies, guilds.clock)
    await guilds.set(daily_quota=0, max_concurrent=5, cooldown_seconds=0, monthly_budget_usd=0)
    policy = await policies.get(GUILD)
    assert (policy.daily_quota, policy.max_concurrent, policy.cooldown_seconds,
            policy.monthly_budget_usd) == (2, 1, 60, 3.0)
    assert policy.by_ceiling == {"daily_quota", "max_concurrent", "cooldown_seconds",
                                 "monthly_budget_usd"}
    assert (await policies.chosen(GUILD)).daily_quota == 0  # the server's own, kept
    await guilds.set(daily_quota=1, cooldown_seconds=600)
    tighter = await policies.get(GUILD)
    assert (tighter.daily_quota, tighter.cooldown_seconds) == (1, 600)
    assert "daily_quota" not in tighter.by_ceiling
    await guilds.job(JobState.RUNNING, estimate=2.5)
    with pytest.raises(LimitReached) as refused:
        await limits.check(member(BOB), guilds.model(), (), 1.0)
    assert str(refused.value) == (
        "This video (about $1.00) would go over this server's monthly video budget: $2.50 of "
        "$3.00 (the bot's ceiling) spent; it resets on 1 March.")


async def test_the_most_generous_tier_applies_still_under_the_ceiling(guilds: Guilds) -> None:
    policies = PolicyStore(guilds.db, Policy(), guilds.clock, Ceilings(daily_quota=8))
    await guilds.set(daily_quota=1, tiers=[
        {"role_id": ARTISTS, "daily_quota": 5, "max_concurrent": 2},
        {"role_id": PATRONS, "daily_quota": 0, "max_concurrent": 1, "cooldown_seconds": 30}])
    plain = await policies.get(GUILD, roles=frozenset({99}))
    assert (plain.daily_quota, plain.tier) == (1, None)
    artist = await policies.get(GUILD, roles=frozenset({ARTISTS}))
    assert (artist.daily_quota, artist.max_concurrent, artist.tier) == (5, 2, ARTISTS)
    both = await policies.get(GUILD, roles=frozenset({ARTISTS, PATRONS}))
    # The patrons' "no daily limit" is the more generous, held to the ceiling of 8.
    assert (both.daily_quota, both.max_concurrent, both.cooldown_seconds, both.tier) == (
        8, 1, 30, PATRONS)
    assert "daily_quota" in both.by_ceiling
    limits = Limits(guilds.db, policies, guilds.clock)
    await guilds.job(JobState.RUNNING, user=BOB)
    await guilds.job(JobState.RUNNING, user=BOB)
    with pytest.raises(LimitReached) as refused:
        await limits.check(member(BOB, roles=[ARTISTS]), guilds.model(), (), 2.1)
    assert str(refused.value) == (f"You already have 2 videos in progress (limit 2 (the <@&"
                                  f"{ARTISTS}> tier)); wait for one to finish.")


async def test_the_account_cap_counts_every_server_and_names_none(guilds: Guilds) -> None:
    limits = Limits(guilds.db, guilds.policies, guilds.clock,
                    AccountCaps(daily_budget_usd=5.0, monthly_budget_usd=9.0))
    await guilds.set(max_concurrent=0)
    await guilds.set(OTHER_GUILD, max_concurrent=0)
    guilds.clock.now = START - 86_400  # yesterday: the month's, not the day's
    await guilds.job(JobState.DELIVERED, guild=OTHER_GUILD, cost=3.0)
    guilds.clock.now = START
    await guilds.job(JobState.DELIVERED, cost=1.5, estimate=2.1)
    await guilds.job(JobState.RUNNING, guild=OTHER_GUILD, estimate=2.1)  # reserved
    await guilds.job(JobState.FAILED, estimate=2.1)  # given back
    await guilds.job(JobState.DELIVERED, simulated=True, cost=9.0)  # never counted
    today, month = await limits.account_standing()
    assert today == pytest.approx(3.6)
    assert month == pytest.approx(6.6)
    await limits.check_account(guilds.model(), 1.4)
    with pytest.raises(LimitReached) as daily:
        await limits.check_account(guilds.model(), 1.5)
    assert str(daily.value) == ("The bot's own spending limit for today is reached; it resets "
                                "in 2 h 45 min.")
    await limits.check(member(), guilds.model(), (), 1.5)  # the server's own rules let it be
    guilds.clock.now = TOMORROW
    with pytest.raises(LimitReached) as monthly:
        await limits.check_account(guilds.model(), 2.5)
    assert str(monthly.value) == ("The bot's own spending limit for this month is reached; it "
                                  "resets on 1 March.")
    with pytest.raises(LimitReached) as unpriced:
        await limits.check_account(guilds.model(), None)
    assert "no known price" in str(unpriced.value)


async def test_the_statement_that_adds_a_job_keeps_the_account_caps_as_check_account_does(
        guilds: Guilds) -> None:
    """The admission takes the account's lock and reads its sums in the statement that writes
    the job down (``account_fits``): it lets through and keeps out exactly what
    ``check_account`` does, to the cent, and says which cap kept it out."""
    limits = Limits(guilds.db, guilds.policies, guilds.clock,
                    AccountCaps(daily_budget_usd=5.0, monthly_budget_usd=9.0))
    guilds.clock.now = START - 86_400
    await guilds.job(JobState.DELIVERED, guild=OTHER_GUILD, cost=3.0)
    guilds.clock.now = START
    await guilds.job(JobState.DELIVERED, cost=1.5, estimate=2.1)
    await guilds.job(JobState.RUNNING, guild=OTHER_GUILD, estimate=2.1)
    model = guilds.model()

    async def add(estimate: float) -> tuple[Job | None, str | None]:
        new = NewJob(guild_id=GUILD, channel_id=CHANNEL, user_id=ALICE, model_id=model.id,
                     command=model.command, prompt="", body={}, estimated_usd=estimate)
        async with guilds.db.transaction() as tx:
            fits = limits.account_fits(model, estimate)
            assert fits is not None
            added = await guilds.store.add_if(tx, new, *fits)
            refused = None if added else str(await limits.account_refused(model, estimate,
                                                                          tx=tx))
        return added, refused

    assert (await add(5.0 - 3.6 + 1e-7))[0] is not None  # what is left, give or take a cent's
    assert await limits.account_standing() == pytest.approx((5.0, 8.0))
    added, refused = await add(0.01)
    assert added is None
    assert refused == ("The bot's own spending limit for today is reached; it resets in "
                       "2 h 45 min.")
    guilds.clock.now = TOMORROW
    assert await add(1.01) == (None, "The bot's own spending limit for this month is reached; "
                                     "it resets on 1 March.")
    assert (await add(1.0))[0] is not None
    assert len(await guilds.db.fetch("SELECT id FROM jobs")) == 5
    with pytest.raises(LimitReached, match="no known price"):
        limits.account_fits(model, None)
    assert Limits(guilds.db, guilds.policies, guilds.clock).account_fits(model, 1.0) is None
