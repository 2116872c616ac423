"""A guild's rules as its moderators set them (``bot.policy``): what a blocklist rule refuses,
how a guild's stored settings sit over the config's ``[limits]``, and the audit of every change,
on both backends. No Discord: the domain alone (the commands are in tests/cogs/test_settings.py)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bot.blocklist import CHECK_SECONDS, PATTERN_MAX
from bot.errors import UserError
from bot.policy import BlockRule, Policy, PolicyStore
from bot.store.connect import open_database
from bot.store.database import Database
from bot.store.settings import Change
from tests.clocks import SetClock

GUILD, OTHER_GUILD = 1 << 22, 2 << 22
MOD, OTHER_MOD = 501, 502
START = 1_770_758_100.0  # 2026-02-10 21:15 UTC

Changer = Callable[[Policy], dict[str, Any]]


@pytest.fixture
def clock() -> SetClock:
    return SetClock(START)


def setting(**values: Any) -> Changer:
    return lambda _current: values


def adding(rule: BlockRule) -> Changer:
    return lambda current: {"prompt_blocklist": [*current.prompt_blocklist, rule]}


def word(pattern: str) -> BlockRule:
    return BlockRule(pattern=pattern)


def expression(pattern: str) -> BlockRule:
    return BlockRule(pattern=pattern, regex=True)


def refusing(*rules: BlockRule) -> Policy:
    return Policy(prompt_blocklist=rules)


# Policy and BlockRule: no database.

def test_no_list_means_no_restriction_and_a_list_means_only_those() -> None:
    open_ = Policy()
    assert (open_.enabled_models, open_.allowed_roles, open_.allowed_channels,
            open_.blocked_users, open_.prompt_blocklist) == ((), (), (), (), ())
    assert (open_.daily_quota, open_.max_concurrent, open_.cooldown_seconds,
            open_.monthly_budget_usd, open_.default_model) == (0, 2, 0, 0.0, None)
    assert open_.model_enabled("kling-2-1")
    assert open_.blocked_text("anything at all") is None
    some = Policy(enabled_models=("wan-2-2", "kling-3-0"))
    assert [some.model_enabled(c) for c in ("wan-2-2", "kling-3-0", "kling-2-1")] == [
        True, True, False]


@pytest.mark.parametrize(("pattern", "prompt", "found"), [
    ("gore", "A GORE scene", "GORE"),
    ("gore", "blood-and-gore!", "gore"),
    ("gore", "a gorenje fridge", None),  # a whole word only
    ("gore", "ungored", None),
    ("red wedding", "the Red Wedding again", "Red Wedding"),
    ("c++", "I write C++ daily", "C++"),  # taken literally, not as an expression
    ("a.b", "aXb", None),
    ("([a-z", "see ([a-z here", "([a-z"),  # not an expression either: nothing to compile
])
def test_a_word_matches_as_a_whole_word_in_any_case(pattern: str, prompt: str,
                                                    found: str | None) -> None:
    assert refusing(word(pattern)).blocked_text(prompt) == found


def test_a_regular_expression_gives_what_it_matched_in_any_case() -> None:
    policy = refusing(expression(r"blood\w*"), expression(r"\bkill(s|ed|ing)?\b"))
    assert policy.blocked_text("Bloodbath at dawn") == "Bloodbath"
    assert policy.blocked_text("nobody KILLED anyone") == "KILLED"
    assert policy.blocked_text("a skilled painter") is None
    assert policy.blocked_text("a calm sea") is None
    assert [r.label for r in policy.prompt_blocklist] == [r"/blood\w*/", r"/\bkill(s|ed|ing)?\b/"]
    assert word("gore").label == "gore"


def test_the_first_rule_that_matches_is_the_one_named() -> None:
    policy = refusing(word("cat"), expression("do+g"))
    assert policy.blocked_text("a dooog chases a cat") == "cat"
    assert policy.blocked_text("a dooog alone") == "dooog"


def test_a_bad_regular_expression_is_refused_with_its_reason() -> None:
    with pytest.raises(UserError) as raised:
        BlockRule.parse("([a-z", True)
    assert str(raised.value) == ("`([a-z` is not a valid regular expression: unterminated "
                                 "character set at position 5.")
    with pytest.raises(UserError) as raised:
        BlockRule.parse("*gore", True)
    assert str(raised.value) == ("`*gore` is not a valid regular expression: nothing to repeat "
                                 "at position 0.")
    with pytest.raises(UserError) as raised:
        BlockRule.parse("x*", True)
    assert str(raised.value) == "`x*` matches every prompt (even an empty one)."


def test_a_bad_rule_in_the_config_is_refused_when_it_is_read() -> None:
    """The config's ``[limits] prompt_blocklist`` is checked as a moderator's rule is: a broken
    expression never reaches a member's request."""
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        Policy.model_validate({"prompt_blocklist": [{"pattern": "([a-z", "regex": True}]})
    with pytest.raises(ValidationError, match="at most 50 items"):
        Policy.model_validate({"prompt_blocklist": [{"pattern": f"w{n}"} for n in range(51)]})


@pytest.mark.parametrize(("prompt", "found"), [
    ("g\u200bore everywhere", "gore"),  # a zero-width space
    ("blo\u00adod", "blood"),  # a soft hyphen
    ("\uff27\uff2f\uff32\uff25 fest", "gore"),  # full-width letters
    ("a g\u043ere scene", "gore"),  # a Cyrillic o among Latin letters
])
def test_spelling_tricks_do_not_slip_past_a_word(prompt: str, found: str) -> None:
    policy = refusing(word("gore"), word("blood"))
    assert policy.blocked_text(prompt) == found


def test_a_word_wholly_in_another_script_is_its_own() -> None:
    """Russian "\u0441\u043e\u0440" (litter) looks like "cop" but is not a disguise."""
    assert refusing(word("cop")).blocked_text("\u0441\u043e\u0440 on the floor") is None


def test_a_pattern_too_slow_to_check_counts_as_a_match() -> None:
    """A prompt that cannot be checked in time is not let through; the rule is named."""
    policy = refusing(expression("(a|a)+b"))
    began = time.monotonic()
    assert policy.blocked_text("a" * 50) == "/(a|a)+b/"
    assert time.monotonic() - began < 20 * CHECK_SECONDS  # given up on, not run to the end
    assert policy.blocked_text("aab") == "aab"  # quick to check: what it matched
    assert policy.blocked_text("aaa") is None  # quick to check, and clean


@pytest.mark.parametrize("values", [
    {"daily_quota": -1},
    {"max_concurrent": -2},
    {"cooldown_seconds": -30},
    {"monthly_budget_usd": -5.0},
    {"prompt_blocklist": [{"pattern": ""}]},
    {"prompt_blocklist": [{"pattern": "x" * (PATTERN_MAX + 1)}]},
    {"prompt_blocklist": [{"pattern": "gore", "flags": "i"}]},
    {"nsfw_filter": True},
], ids=["quota", "concurrent", "cooldown", "budget", "empty-pattern", "long-pattern",
        "rule-key", "unknown-key"])
def test_out_of_range_values_and_unknown_keys_are_refused(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Policy.model_validate(values)


# PolicyStore: the config's defaults, each guild's own settings over them, the audit log.

async def test_a_guild_that_changed_nothing_has_the_configs_defaults(db: Database,
                                                                    clock: SetClock) -> None:
    defaults = Policy(daily_quota=5, cooldown_seconds=30, enabled_models=("kling-2-1",),
                      prompt_blocklist=(word("gore"),))
    policies = PolicyStore(db, defaults, clock)
    assert await policies.get(GUILD) == defaults
    assert await policies.audit(GUILD) == []


async def test_stored_settings_sit_over_the_defaults_and_the_rest_follow_the_config(
        db: Database, clock: SetClock) -> None:
    before = Policy(daily_quota=5, cooldown_seconds=30, prompt_blocklist=(word("gore"),))
    policies = PolicyStore(db, before, clock)
    updated = await policies.update(GUILD, MOD, setting(daily_quota=2))
    assert updated == before.model_copy(update={"daily_quota": 2})
    updated = await policies.update(GUILD, MOD, adding(expression(r"blood\w*")))
    assert updated.prompt_blocklist == (word("gore"), expression(r"blood\w*"))
    assert await policies.get(GUILD) == updated
    assert (await policies.get(GUILD)).blocked_text("BLOODY hell") == "BLOODY"
    assert await policies.get(OTHER_GUILD) == before

    # A new config (after a restart): what the guild set stays, the rest follows the config.
    after = Policy(daily_quota=10, cooldown_seconds=60, max_concurrent=1,
                   prompt_blocklist=(word("gore"), word("war")))
    policies = PolicyStore(db, after, clock)
    now = await policies.get(GUILD)
    assert (now.daily_quota, now.cooldown_seconds, now.max_concurrent) == (2, 60, 1)
    assert now.prompt_blocklist == (word("gore"), expression(r"blood\w*"))
    assert await policies.get(OTHER_GUILD) == after


async def test_a_stored_key_this_version_does_not_know_is_ignored(db: Database,
                                                                  clock: SetClock) -> None:
    """A setting an older or newer version of the bot wrote does not break the guild."""
    await db.write("INSERT INTO guild_settings (guild_id, key, value) VALUES (?, ?, ?)",
                   GUILD, "nsfw_filter", "true")
    policies = PolicyStore(db, Policy(daily_quota=3), clock)
    assert await policies.get(GUILD) == Policy(daily_quota=3)
    updated = await policies.update(GUILD, MOD, setting(cooldown_seconds=20))
    assert updated == Policy(daily_quota=3, cooldown_seconds=20)
    assert [c.key for c in await policies.audit(GUILD)] == ["cooldown_seconds"]


async def test_every_change_is_audited_with_who_when_and_from_what_to_what(
        db: Database, clock: SetClock) -> None:
    policies = PolicyStore(db, Policy(), clock)
    clock.now = START + 10
    await policies.update(GUILD, MOD, setting(daily_quota=3, cooldown_seconds=45))
    clock.now = START + 20
    await policies.update(GUILD, OTHER_MOD, setting(blocked_users=[42], default_model="wan-2-2"))
    clock.now = START + 30
    await policies.update(GUILD, MOD, adding(word("gore")))
    clock.now = START + 40
    unchanged = await policies.update(GUILD, OTHER_MOD, setting(daily_quota=3, blocked_users=[42]))
    assert unchanged.daily_quota == 3
    clock.now = START + 50
    await policies.update(GUILD, MOD, setting(daily_quota=0, monthly_budget_usd=12.5))
    await PolicyStore(db, Policy(), clock).update(OTHER_GUILD, OTHER_MOD,
                                                  setting(daily_quota=9))
    assert await policies.audit(GUILD) == [
        Change("monthly_budget_usd", "0.0", "12.5", MOD, START + 50),
        Change("daily_quota", "3", "0", MOD, START + 50),
        Change("prompt_blocklist", "[]", '[{"pattern": "gore", "regex": false}]', MOD,
               START + 30),
        Change("default_model", "null", '"wan-2-2"', OTHER_MOD, START + 20),
        Change("blocked_users", "[]", "[42]", OTHER_MOD, START + 20),
        Change("cooldown_seconds", "0", "45", MOD, START + 10),
        Change("daily_quota", "0", "3", MOD, START + 10),
    ]  # newest first; the change that changed nothing left no row
    assert [c.key for c in await policies.audit(GUILD, limit=2)] == ["monthly_budget_usd",
                                                                    "daily_quota"]
    assert await policies.audit(OTHER_GUILD) == [Change("daily_quota", "0", "9", OTHER_MOD,
                                                        START + 50)]


async def test_a_refused_or_invalid_change_writes_nothing(db: Database, clock: SetClock) -> None:
    policies = PolicyStore(db, Policy(), clock)

    def no_such_model(_current: Policy) -> dict[str, Any]:
        raise UserError("There is no model `kling-9` here.")

    with pytest.raises(UserError) as raised:
        await policies.update(GUILD, MOD, no_such_model)
    assert str(raised.value) == "There is no model `kling-9` here."
    with pytest.raises(ValidationError):
        await policies.update(GUILD, MOD, setting(daily_quota=4, cooldown_seconds=-1))
    assert await policies.get(GUILD) == Policy()
    assert await policies.audit(GUILD) == []
    # Nothing was left holding the guild either.
    assert (await asyncio.wait_for(policies.update(GUILD, MOD, setting(daily_quota=4)),
                                   10)).daily_quota == 4


async def test_two_moderators_at_once_both_land(database_target: Path | str, db: Database,
                                                clock: SetClock) -> None:
    """Two moderators, each through a process of their own (a connection pool each), add
    rules to one guild's blocklist at the same moment: every rule lands, and the audit log
    is one chain, each change starting from what the one before left."""
    second = await open_database(database_target, clock=clock)
    try:
        stores = {MOD: PolicyStore(db, Policy(), clock),
                  OTHER_MOD: PolicyStore(second, Policy(), clock)}
        words = [f"word{n}" for n in range(10)]
        moderators = [MOD, OTHER_MOD] * 5
        await asyncio.gather(*(stores[mod].update(GUILD, mod, adding(word(w)))
                               for mod, w in zip(moderators, words, strict=True)))
        await asyncio.gather(stores[MOD].update(GUILD, MOD, setting(daily_quota=4)),
                             stores[OTHER_MOD].update(GUILD, OTHER_MOD,
                                                      setting(cooldown_seconds=90)))
        for store in stores.values():
            policy = await store.get(GUILD)
            assert sorted(r.pattern for r in policy.prompt_blocklist) == sorted(words)
            assert (policy.daily_quota, policy.cooldown_seconds) == (4, 90)
        audit = await stores[MOD].audit(GUILD, limit=100)
        chain = [c for c in reversed(audit) if c.key == "prompt_blocklist"]
        assert len(chain) == 10
        assert chain[0].old == "[]"
        assert all(later.old == earlier.new for earlier, later in itertools.pairwise(chain))
        assert sorted(c.user_id for c in chain) == sorted(moderators)
        assert {(c.key, c.user_id) for c in audit if c.key != "prompt_blocklist"} == {
            ("daily_quota", MOD), ("cooldown_seconds", OTHER_MOD)}
    finally:
        await second.close()
