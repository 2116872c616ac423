"""Real-looking Discord snowflakes: ``(milliseconds since 2015) << 22 | worker | counter``."""

from __future__ import annotations

import itertools
import time

DISCORD_EPOCH_MS = 1_420_070_400_000
_DAY_MS = 86_400_000


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard Discord sends a guild's events to."""
    return (guild_id >> 22) % max(shard_count, 1)


def created_at(snowflake: int) -> float:
    """The Unix time (seconds) a snowflake was made at."""
    return ((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000


class Snowflakes:
    """Strictly increasing ids from the wall clock (messages sort by id, as on Discord)."""

    def __init__(self, worker: int = 1) -> None:
        self._worker = worker & 0x1F
        self._last_ms = 0
        self._counter = 0
        self._spare = itertools.count(1)

    def next(self) -> int:
        now = int(time.time() * 1000) - DISCORD_EPOCH_MS
        if now > self._last_ms:
            self._last_ms, self._counter = now, 0
        else:
            self._counter += 1
            if self._counter >= 4096:
                self._last_ms, self._counter = self._last_ms + 1, 0
        return (self._last_ms << 22) | (self._worker << 17) | self._counter

    def for_shard(self, shard_id: int, shard_count: int) -> int:
        """An id a day old whose guild would live on ``shard_id`` of ``shard_count``."""
        if not 0 <= shard_id < shard_count:
            raise ValueError(f"shard {shard_id} is not in 0..{shard_count - 1}")
        base = int(time.time() * 1000) - DISCORD_EPOCH_MS - _DAY_MS
        stamp = base - (base - shard_id) % shard_count
        spare = next(self._spare) & 0xFFF
        snowflake = (stamp << 22) | (((self._worker + 1) & 0x1F) << 17) | spare
        assert shard_of(snowflake, shard_count) == shard_id
        return snowflake
