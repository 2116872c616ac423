"""A guild's settings as stored, and the audit log a moderator reads, on both backends: values
written with their audit rows in the caller's transaction, all or nothing, newest change
first."""

from __future__ import annotations

import pytest

from bot.store.database import Database
from bot.store.settings import Change, Edit, SettingsStore
from tests.clocks import SetClock

GUILD, OTHER_GUILD = 7 << 22, 8 << 22
MOD, OTHER_MOD = 501, 502


async def record(db: Database, store: SettingsStore, guild_id: int, user_id: int,
                 *edits: Edit) -> None:
    async with db.transaction() as tx:
        await store.record(tx, guild_id, user_id, list(edits))


async def test_a_guild_that_changed_nothing_has_no_values(db: Database, clock: SetClock) -> None:
    assert await SettingsStore(db, clock).values(GUILD) == {}
    assert await SettingsStore(db, clock).audit(GUILD) == []


async def test_values_are_kept_as_json_per_guild(db: Database, clock: SetClock) -> None:
    store = SettingsStore(db, clock)
    await record(db, store, GUILD, MOD, Edit("daily_quota", "3", "5"),
                 Edit("blocked_users", "[]", "[555, 556]"),
                 Edit("monthly_budget_usd", "null", "20.5"),
                 Edit("blocklist", "[]", '["gore", "\\u00e9clat"]'))
    await record(db, store, OTHER_GUILD, MOD, Edit("daily_quota", "3", "0"))
    assert await store.values(GUILD) == {
        "daily_quota": 5, "blocked_users": [555, 556], "monthly_budget_usd": 20.5,
        "blocklist": ["gore", "éclat"]}
    assert await store.values(OTHER_GUILD) == {"daily_quota": 0}


async def test_a_new_value_replaces_the_old(db: Database, clock: SetClock) -> None:
    store = SettingsStore(db, clock)
    await record(db, store, GUILD, MOD, Edit("daily_quota", "3", "5"))
    await record(db, store, GUILD, OTHER_MOD, Edit("daily_quota", "5", "null"))
    assert await store.values(GUILD) == {"daily_quota": None}
    [[count]] = await db.fetch("SELECT COUNT(*) FROM guild_settings")
    assert count == 1


async def test_a_change_is_seen_by_others_once_committed(db: Database, clock: SetClock) -> None:
    store = SettingsStore(db, clock)
    async with db.transaction() as tx:
        await store.record(tx, GUILD, MOD, [Edit("cooldown_seconds", "0", "60")])
        assert await store.values(GUILD, tx=tx) == {"cooldown_seconds": 60}  # inside: yes
        assert await store.values(GUILD) == {}  # outside: not yet
        assert await store.audit(GUILD) == []
    assert await store.values(GUILD) == {"cooldown_seconds": 60}


async def test_a_failed_change_leaves_neither_values_nor_audit(db: Database,
                                                               clock: SetClock) -> None:
    """The settings and their audit rows hold together: a change that fails half-way (the
    second value refused, say) leaves no trace."""
    store = SettingsStore(db, clock)
    await record(db, store, GUILD, MOD, Edit("daily_quota", "3", "4"))

    async def change_then_fail() -> None:
        async with db.transaction() as tx:
            await store.record(tx, GUILD, OTHER_MOD, [Edit("daily_quota", "4", "9"),
                                                      Edit("cooldown_seconds", "0", "30")])
            raise RuntimeError("refused")

    with pytest.raises(RuntimeError, match="refused"):
        await change_then_fail()
    assert await store.values(GUILD) == {"daily_quota": 4}
    assert [(c.key, c.new, c.user_id) for c in await store.audit(GUILD)] == [
        ("daily_quota", "4", MOD)]


async def test_the_audit_says_who_changed_what_when_newest_first(db: Database,
                                                                  clock: SetClock) -> None:
    store = SettingsStore(db, clock)
    start = clock.now
    await record(db, store, GUILD, MOD, Edit("daily_quota", "3", "5"),
                 Edit("max_concurrent", "2", "1"))
    clock.now += 3600
    await record(db, store, OTHER_GUILD, OTHER_MOD, Edit("daily_quota", "3", "1"))
    clock.now += 60.25
    await record(db, store, GUILD, OTHER_MOD, Edit("daily_quota", "5", "10"))
    assert await store.audit(GUILD) == [
        Change("daily_quota", "5", "10", OTHER_MOD, start + 3660.25),
        Change("max_concurrent", "2", "1", MOD, start),  # one change, in the order given
        Change("daily_quota", "3", "5", MOD, start),
    ]
    assert await store.audit(OTHER_GUILD) == [
        Change("daily_quota", "3", "1", OTHER_MOD, start + 3600)]


async def test_the_audit_shows_the_latest_changes_up_to_its_limit(db: Database,
                                                                   clock: SetClock) -> None:
    store = SettingsStore(db, clock)
    for quota in range(1, 21):
        clock.now += 1
        await record(db, store, GUILD, MOD, Edit("daily_quota", str(quota - 1), str(quota)))
    latest = await store.audit(GUILD)
    assert [c.new for c in latest] == [str(q) for q in range(20, 5, -1)]  # 15 by default
    assert [c.new for c in await store.audit(GUILD, limit=3)] == ["20", "19", "18"]
    assert len(await store.audit(GUILD, limit=100)) == 20
    assert isinstance(latest[0].user_id, int) and isinstance(latest[0].at, float)


async def test_nothing_to_change_writes_nothing(db: Database, clock: SetClock) -> None:
    store = SettingsStore(db, clock)
    await record(db, store, GUILD, MOD)
    assert await store.values(GUILD) == {} and await store.audit(GUILD) == []
