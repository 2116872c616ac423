"""Prompt blocklists (``bot.blocklist``): a server's hostile rules cost a bounded time, off the
event loop, so another server's requests go on meanwhile; what the rules match is matched
however it is spelt (the spelling tricks themselves: tests/bot/test_policy.py)."""

from __future__ import annotations

import asyncio
import gc
import time
from pathlib import Path

from bot.blocklist import CHECK_SECONDS, MAX_RULES, PATTERN_MAX, first_blocked, normalise
from bot.catalog import Catalog
from bot.limits import LimitReached, Limits, Who
from bot.policy import BlockRule, Policy, PolicyStore
from bot.store.connect import open_database

HOSTILE, CALM = 1 << 22, 2 << 22
# Each a tuned catastrophic pattern: every prompt text makes it run until stopped.
HOSTILE_RULES = [BlockRule(pattern=f"(a|aa|a{n % 7})+{'b' * 3}" + "x" * (n % 5), regex=True)
                 for n in range(MAX_RULES)]
TEXTS = ["a" * 60 + str(n) for n in range(7)]  # prompt, negative prompt, five shots


def test_one_request_costs_one_time_budget_however_many_rules_and_texts() -> None:
    began = time.monotonic()
    assert first_blocked(HOSTILE_RULES, TEXTS) == HOSTILE_RULES[0].label
    # One budget, not 50 rules x 7 texts x a timeout each (17.5 s before); generous for a
    # loaded machine.
    assert time.monotonic() - began < 40 * CHECK_SECONDS


def test_normalised_text() -> None:
    assert normalise("\uff27\uff2f\uff32\uff25\u200b in\u00adside, \u01c4") == \
        "gore inside, d\u017e"
    assert PATTERN_MAX == 200


async def test_a_hostile_server_does_not_stall_another(tmp_path: Path, catalog: Catalog) -> None:
    """Twenty requests in a server with 50 tuned rules, each with 7 prompt texts, while
    another server asks 50 times: the other server's checks all end within 3 s, and the event
    loop never waits more than 100 ms (measured by a task that wakes every 10 ms)."""
    db = await open_database(tmp_path / "bot.sqlite3")
    try:
        policies = PolicyStore(db, Policy(max_concurrent=0), time.time)
        limits = Limits(db, policies, time.time)
        await policies.update(HOSTILE, 1, lambda _: {
            "prompt_blocklist": [r.model_dump() for r in HOSTILE_RULES]})
        model = catalog.by_command("kling-3-0")
        lags: list[float] = []

        async def ticker() -> None:
            while True:
                before = time.monotonic()
                await asyncio.sleep(0.01)
                lags.append(time.monotonic() - before - 0.01)

        async def hostile(user: int) -> None:
            try:
                await limits.check(Who(HOSTILE, user, frozenset({1}), frozenset()), model, TEXTS,
                                   None, budgeted=False)
            except LimitReached:
                return
            raise AssertionError("a prompt that could not be checked was let through")

        async def calm(user: int) -> float:
            began = time.monotonic()
            await limits.check(Who(CALM, user, frozenset({2}), frozenset()), model,
                               ["a calm sea"], None, budgeted=False)
            return time.monotonic() - began

        # A full collection of the garbage hundreds of earlier tests left in this process
        # (0.3 s in CI) is not the blocklist's doing: collected before the loop is measured.
        gc.collect()
        ticking = asyncio.create_task(ticker())
        began = time.monotonic()
        _, answered = await asyncio.gather(
            asyncio.gather(*(hostile(user) for user in range(20))),
            asyncio.gather(*(calm(user) for user in range(50))))
        ticking.cancel()
        assert max(answered) < 3.0, max(answered)
        assert time.monotonic() - began < 10.0
        assert max(lags) < 0.1, max(lags)
    finally:
        await db.close()


async def test_hostile_servers_never_get_another_servers_prompt_refused(
        tmp_path: Path, catalog: Catalog) -> None:
    """Five servers with hostile rules asking at once, while a sixth with an honest blocklist
    of 50 plain words asks 20 times: its clean prompts are never refused as "too slow to
    check" (the regex engine's limit counts the process's CPU time: many hostile checks at
    once ate the honest one's), and one server's checks run one at a time."""
    db = await open_database(tmp_path / "bot.sqlite3")
    try:
        policies = PolicyStore(db, Policy(max_concurrent=0), time.time)
        limits = Limits(db, policies, time.time)
        hostile_servers = [HOSTILE + n for n in range(5)]
        for guild in hostile_servers:
            await policies.update(guild, 1, lambda _: {
                "prompt_blocklist": [r.model_dump() for r in HOSTILE_RULES]})
        honest = [BlockRule(pattern=f"forbidden{n}") for n in range(MAX_RULES)]
        await policies.update(CALM, 1, lambda _: {
            "prompt_blocklist": [r.model_dump() for r in honest]})
        model = catalog.by_command("kling-3-0")
        refused: list[str] = []

        async def hostile(guild: int, user: int) -> None:
            for _ in range(4):
                try:
                    await limits.check(Who(guild, user, frozenset({1}), frozenset()), model,
                                       TEXTS, None, budgeted=False)
                except LimitReached:
                    continue

        async def calm(user: int) -> None:
            try:
                await limits.check(Who(CALM, user, frozenset({2}), frozenset()), model,
                                   ["a calm sea " * 100] * 5, None, budgeted=False)
            except LimitReached as exc:
                refused.append(str(exc))

        await asyncio.gather(
            *(hostile(guild, user) for guild in hostile_servers for user in range(3)),
            *(calm(user) for user in range(20)))
        assert refused == []
    finally:
        await db.close()
