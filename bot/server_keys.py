"""Servers that bring their own RunComfy key: proven with RunComfy before it is kept, sealed
with ``BOT_SECRET_KEY`` (``bot.keys``), used for every call about a job sent with it (each job
keeps the key it was sent with), and never shown but for its ending.

Which account a call goes to is decided here, once: ``client_for(job.runcomfy_key)``."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.catalog import Catalog
from bot.errors import UserError
from bot.i18n import N_, _, kept
from bot.keys import KeyBox, KeyBoxError, key_ending
from bot.runcomfy import AuthError, InsufficientBalance, RunComfyClient, RunComfyError
from bot.store.keys import GuildKeys, StoredKey
from bot.store.settings import Edit, SettingsStore

log = logging.getLogger(__name__)
AUDIT_KEY = "runcomfy_key"
UNSET = ("servers' own RunComfy keys are stored but BOT_SECRET_KEY is not set: set it to the "
         "key they were sealed with")
KEY_MAX = 512
CLIENTS_KEPT = 256
# Said to the member refused (in their language), and kept as a job's error (in English: it is
# stored, and said in the language of whoever reads it).
REFUSED = kept(N_("This server's RunComfy key ({ending}) was refused by RunComfy: {reason} Someone "
             "with Manage Server can set a new one with `/settings runcomfy-key`."))
NOT_ACCEPTED = N_("it is not valid (any more).")
NO_CREDITS = N_("its account has run out of credits.")
EARLIER_KEY = N_("an earlier key")


class KeyRefused(UserError):
    """The server's own key no longer works; the message says so and how to fix it."""


class ServerKeys:
    def __init__(self, keys: GuildKeys, settings: SettingsStore, box: KeyBox | None,
                 operator: RunComfyClient, catalog: Catalog,
                 clock: Callable[[], float]) -> None:
        self.keys = keys
        self.settings = settings
        self.box = box
        self.operator = operator
        self.catalog = catalog
        self.clock = clock
        self._clients: dict[str, RunComfyClient] = {}

    async def check_secret(self) -> None:
        """At start-up: the stored keys can be opened (a clear ``KeyBoxError`` if not), and
        any sealed with an older key of a rotation are sealed again with the first."""
        sealed = await self.keys.any_sealed()
        if sealed is None:
            return
        if self.box is None:
            raise KeyBoxError(UNSET)
        self.box.open(sealed)
        if self.box.key_count > 1:
            log.info("BOT_SECRET_KEY rotation: %d stored keys sealed again with its first key",
                     await self.keys.reseal(self.box.rotate))

    def client_for(self, sealed: str | None) -> RunComfyClient:
        """The client of the account a job was sent with: the operator's, or a server's."""
        if sealed is None:
            return self.operator
        client = self._clients.get(sealed)
        if client is None:
            if self.box is None:
                raise KeyBoxError(UNSET)
            if len(self._clients) >= CLIENTS_KEPT:
                self._clients.pop(next(iter(self._clients)))
            client = self._clients[sealed] = self.operator.with_token(self.box.open(sealed))
        return client

    @staticmethod
    def sealed_of(stored: StoredKey | None) -> str | None:
        """The server's key for a new job, from what is stored (``None``: the operator's);
        ``KeyRefused`` while the server's key is known not to work."""
        if stored is None:
            return None
        if stored.refused_at is not None:
            raise KeyRefused(_(REFUSED, ending=stored.ending,
                               reason=_("it was refused earlier.")))
        return stored.sealed

    async def has_key(self, guild_id: int) -> bool:
        return await self.keys.get(guild_id) is not None

    async def ending(self, guild_id: int) -> str | None:
        stored = await self.keys.get(guild_id)
        return None if stored is None else stored.ending

    async def set(self, guild_id: int, user_id: int, key: str) -> str:
        """Prove ``key`` with RunComfy (reading a model's entry: no job is started), then keep
        it sealed, with an audit row naming only its ending. Its ending; a ``UserError`` saying
        why when RunComfy does not take it (then nothing is kept)."""
        key = key.strip()
        if not key or len(key) > KEY_MAX or any(c.isspace() for c in key):
            raise UserError(_("That is not a RunComfy API key; copy it again from your "
                              "RunComfy account's API page."))
        if self.box is None:
            raise UserError(_("This bot can't keep servers' own keys: its operator has not "
                              "set BOT_SECRET_KEY."))
        model = next(iter(self.catalog))
        try:
            await self.operator.with_token(key).model_info(model.id)
        except (AuthError, InsufficientBalance) as exc:
            raise UserError(_("RunComfy did not accept that key ({reason}); it was not kept.",
                              reason=exc.detail or _("refused"))) from None
        except RunComfyError as exc:
            raise UserError(_("The key could not be checked with RunComfy ({error}); it was "
                              "not kept. Try again later.", error=exc)) from None
        ending = key_ending(key)
        async with self.settings.db.transaction(guild=guild_id) as tx:
            old = await self.keys.get(guild_id, tx=tx)
            await self.keys.put(tx, guild_id, self.box.seal(key), ending, self.clock())
            await self.settings.record(tx, guild_id, user_id, [Edit(
                AUDIT_KEY, _said(old.ending if old else None), _said(ending))], store=False)
        return ending

    async def remove(self, guild_id: int, user_id: int) -> str | None:
        """Forget the server's key (jobs sent with it keep it until they end); its ending, or
        ``None`` when it had none."""
        async with self.settings.db.transaction(guild=guild_id) as tx:
            old = await self.keys.delete(tx, guild_id)
            if old is not None:
                await self.settings.record(tx, guild_id, user_id, [Edit(
                    AUDIT_KEY, _said(old.ending), _said(None))], store=False)
        return None if old is None else old.ending

    async def refused(self, guild_id: int, sealed: str, error: RunComfyError) -> str:
        """RunComfy refused a server's key (401/403, no balance): marked, so the next jobs are
        refused before anything is sent; the sentence for the job's card."""
        stored = await self.keys.get(guild_id)
        ending = stored.ending if stored and stored.sealed == sealed else EARLIER_KEY
        if await self.keys.refused(guild_id, sealed, self.clock()):
            log.warning("guild %d: RunComfy refused the server's own key (%s)", guild_id,
                        type(error).__name__)
        reason = NO_CREDITS if isinstance(error, InsufficientBalance) else NOT_ACCEPTED
        return REFUSED.format(ending=ending, reason=reason)  # kept in English (see REFUSED)


def _said(ending: str | None) -> str:
    """The audit's words for a key: never the key."""
    return f'"RunComfy key set, ends {ending}"' if ending else '"no RunComfy key"'
