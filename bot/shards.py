"""Which guilds a process serves when the bot is sharded: Discord's rule, a guild belongs to
shard ``(guild_id >> 22) % shard_count``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Shards:
    count: int
    ids: frozenset[int]

    def shard_of(self, guild_id: int) -> int:
        return (guild_id >> 22) % self.count

    def owns(self, guild_id: int) -> bool:
        return self.shard_of(guild_id) in self.ids

    @property
    def syncs_commands(self) -> bool:
        """One process syncs the application commands: the one with shard 0."""
        return 0 in self.ids

    def __str__(self) -> str:
        return f"shards {', '.join(map(str, sorted(self.ids)))} of {self.count}"
