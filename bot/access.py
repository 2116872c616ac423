"""Who may use the operator's RunComfy account (``[access]``): every server ("open", the
default), or only the servers the operator approved ("approved": the config's list and
``python -m bot servers approve``, read at each request so an approval or a revocation holds at
once, on every process)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from bot.errors import UserError
from bot.store.access import ApprovedServers

Mode = Literal["open", "approved"]
NOT_APPROVED = ("This bot makes videos only in servers its operator has approved, and this one "
                "is not approved yet: ask the bot's operator to approve server {guild_id}.")


class NoAccess(UserError):
    """This server may not spend the operator's account."""


class Access:
    def __init__(self, mode: Mode, approved: Iterable[int], store: ApprovedServers) -> None:
        self.mode = mode
        self.configured = frozenset(approved)
        self.store = store

    async def allows(self, guild_id: int) -> bool:
        return (self.mode == "open" or guild_id in self.configured
                or await self.store.is_approved(guild_id))

    async def check(self, guild_id: int) -> None:
        """Raise ``NoAccess`` (one line on how to get access) unless the server may spend."""
        if not await self.allows(guild_id):
            raise NoAccess(NOT_APPROVED.format(guild_id=guild_id))

    async def approved(self) -> set[int]:
        """Every approved server: the config's and the database's."""
        return set(self.configured) | {guild for guild, _ in await self.store.listed()}
