"""Notices a member could not be given (a video link whose DM failed), kept until their next
command in that guild: on both backends, oldest first, and shown once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store.connect import open_database
from bot.store.database import Database
from bot.store.notices import NoticeStore

GUILD, OTHER_GUILD = 7 << 22, 8 << 22
ALICE, BOB = 100, 101


def clock() -> float:
    return 1_767_225_600.0


@pytest.fixture
async def db(database_target: Path | str) -> AsyncIterator[Database]:
    db = await open_database(database_target, clock=clock)
    yield db
    await db.close()


async def test_a_member_without_notices_gets_none(db: Database) -> None:
    assert await NoticeStore(db, clock).take(GUILD, ALICE) == []


async def test_notices_come_oldest_first_and_only_once(db: Database) -> None:
    notices = NoticeStore(db, clock)
    texts = [f"Job #{n}'s video could not be posted: https://cdn.example/{n}.mp4"
             for n in (12, 3, 40, 7, 25, 1, 19, 8, 33, 2, 11)]  # more than ten, not sorted
    for text in texts:
        await notices.add(GUILD, ALICE, text)
    assert await notices.take(GUILD, ALICE) == texts
    assert await notices.take(GUILD, ALICE) == []
    [[left]] = await db.fetch("SELECT COUNT(*) FROM notices")
    assert left == 0


async def test_notices_are_the_members_own_in_that_guild(db: Database) -> None:
    notices = NoticeStore(db, clock)
    await notices.add(GUILD, ALICE, "for Alice here")
    await notices.add(GUILD, BOB, "for Bob")
    await notices.add(OTHER_GUILD, ALICE, "for Alice elsewhere")
    await notices.add(GUILD, ALICE, "for Alice here, later")
    assert await notices.take(GUILD, ALICE) == ["for Alice here", "for Alice here, later"]
    assert await notices.take(OTHER_GUILD, BOB) == []
    assert await notices.take(GUILD, BOB) == ["for Bob"]
    assert await notices.take(OTHER_GUILD, ALICE) == ["for Alice elsewhere"]


async def test_a_notice_added_after_taking_waits_for_the_next_command(db: Database) -> None:
    notices = NoticeStore(db, clock)
    await notices.add(GUILD, ALICE, "first")
    assert await notices.take(GUILD, ALICE) == ["first"]
    await notices.add(GUILD, ALICE, "second")
    assert await notices.take(GUILD, ALICE) == ["second"]


async def test_two_commands_at_once_never_both_show_a_notice(db: Database) -> None:
    notices = NoticeStore(db, clock)
    texts = [f"notice {n}" for n in range(5)]
    for text in texts:
        await notices.add(GUILD, ALICE, text)
    taken = await asyncio.gather(*(notices.take(GUILD, ALICE) for _ in range(4)))
    assert sorted(taken, key=len) == [[], [], [], texts]


async def test_a_notice_is_kept_as_written(db: Database) -> None:
    notices = NoticeStore(db, clock)
    text = "Ton vidéo 🎬 n'a pas pu être postée:\n<https://cdn.example/a b.mp4?x=1&y='2'>"
    await notices.add(GUILD, ALICE, text)
    rows = await db.fetch("SELECT guild_id, user_id, created_at FROM notices")
    assert [tuple(row) for row in rows] == [(GUILD, ALICE, clock())]
    assert await notices.take(GUILD, ALICE) == [text]
