"""Who may make videos (``[access]``): every server ("open", the default); only the servers
the operator approved ("approved": the config's list and ``python -m bot servers approve``,
read at each request so an approval or a revocation holds at once, on every process); or the
servers that pay with their own RunComfy key, and the approved ones ("own_key")."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Literal

from bot.errors import UserError
from bot.i18n import N_, _
from bot.store.access import ApprovedServers

Mode = Literal["open", "approved", "own_key"]
NOT_APPROVED = N_("This bot makes videos only in servers its operator has approved, and this "
                  "one is not approved yet: ask the bot's operator to approve server "
                  "{guild_id}.")
NO_OWN_KEY = N_("This bot makes videos with each server's own RunComfy key, and this server "
                "has none yet: someone with Manage Server can add one with "
                "`/settings runcomfy-key`.")


class NoAccess(UserError):
    """This server may not spend the operator's account."""


class Access:
    def __init__(self, mode: Mode, approved: Iterable[int], store: ApprovedServers,
                 has_key: Callable[[int], Awaitable[bool]] | None = None) -> None:
        """``has_key``: whether a server has its own RunComfy key (for "own_key")."""
        self.mode = mode
        self.configured = frozenset(approved)
        self.store = store
        self.has_key = has_key

    async def allows(self, guild_id: int) -> bool:
        if self.mode == "open" or guild_id in self.configured:
            return True
        if self.mode == "own_key" and self.has_key is not None and await self.has_key(guild_id):
            return True
        return await self.store.is_approved(guild_id)

    async def check(self, guild_id: int) -> None:
        """Raise ``NoAccess`` (one line on how to get access) unless the server may spend."""
        if not await self.allows(guild_id):
            raise NoAccess(_(NO_OWN_KEY) if self.mode == "own_key"
                           else _(NOT_APPROVED, guild_id=guild_id))

    async def approved(self) -> set[int]:
        """Every approved server: the config's and the database's."""
        return set(self.configured) | {guild for guild, _when in await self.store.listed()}
