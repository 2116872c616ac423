"""The Discord stand-in: a real HTTP API and gateway on 127.0.0.1, driven from a test.

    async with StandIn() as discord:
        guild = discord.guild("Studio")
        channel = discord.channel(guild, "videos")
        alice = discord.member(guild, "alice")
        ...start ``python -m bot`` with DISCORD_API_BASE=discord.api_base (see process.py)...
        run = await discord.slash(alice, channel, "kling-2-1", prompt="a cat",
                                  image=("cat.png", png))
        await discord.wait_for(lambda: run.acknowledged, timeout=10)
"""

from __future__ import annotations

import asyncio
import inspect
import re
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.discord_stand_in import interactions, payloads
from tests.discord_stand_in.gateway import GUILD_MEMBERS, GUILDS, Connection, Gateway
from tests.discord_stand_in.model import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE,
    COMPONENT,
    GUILD_TEXT,
    JSON,
    MODAL_SUBMIT,
    Channel,
    Dispatch,
    Guild,
    InteractionHandle,
    Member,
    Message,
    Overwrite,
    RequestRecord,
    Role,
    User,
)
from tests.discord_stand_in.rest import Rest
from tests.discord_stand_in.routing import API_PREFIX, Fault, Hold, Router
from tests.discord_stand_in.state import BOT_INVITE, DEFAULT_EVERYONE, State
from tests.discord_stand_in.webhooks import Webhooks

Who = Member | User
Where = Channel | int


class NoShardConnected(AssertionError):
    """No bot connection owns the guild an event is for."""


class StandIn:
    def __init__(self, *, shards: int = 1, heartbeat_ms: int = 41_250,
                 host: str = "127.0.0.1", port: int = 0, identify_every: float = 0.0) -> None:
        """``shards``: what ``GET /gateway/bot`` recommends (an AutoShardedClient uses it);
        ``identify_every``: Discord's pace of IDENTIFYs (5 s; 0: none, the tests' speed)."""
        self.state = State()
        self.dispatches: list[Dispatch] = []
        self.gateway = Gateway(self.state, self.dispatches)
        self.gateway.heartbeat_ms = heartbeat_ms
        self.gateway.identify_every = identify_every
        self.router = Router(self.state)
        self.rest = Rest(self.state, self.gateway, self.router)
        self.rest.shards = shards
        self.webhooks = Webhooks(self.state, self.rest, self.router)
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ---- life ----------------------------------------------------------------------------

    async def start(self) -> StandIn:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/gateway/", self.gateway.handle)
        app.router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", self._cdn)
        app.router.add_get("/media/attachments/{channel_id}/{attachment_id}/{filename}",
                           self._cdn)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self.router.handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        self.state.base_url = self.url
        self.gateway.url = f"ws://{host}:{port}/gateway"
        return self

    async def stop(self) -> None:
        for hold in self.router.holds:
            hold.release()
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> StandIn:
        return await self.start()

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    @property
    def api_base(self) -> str:
        """For the bot's ``DISCORD_API_BASE``."""
        return self.url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return self.gateway.url

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        found = self.state.attachments.get(int(request.match_info["attachment_id"]))
        if found is None or str(found.channel_id) != request.match_info["channel_id"]:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=found.data, content_type=found.content_type
                            or "application/octet-stream")

    # ---- building the world ----------------------------------------------------------------

    @property
    def bot_user(self) -> User:
        return self.state.bot_user

    @property
    def application_id(self) -> int:
        return self.state.application_id

    def user(self, name: str, *, accepts_dms: bool = True) -> User:
        made = self.state.add_user(name)
        made.accepts_dms = accepts_dms
        return made

    def guild(self, name: str = "Stand-in guild", *, owner: User | None = None,
              shard: tuple[int, int] | None = None, id: int | None = None,
              everyone: int = DEFAULT_EVERYONE, bot_permissions: int = BOT_INVITE) -> Guild:
        """A guild the bot is in; ``shard=(shard_id, shard_count)`` picks an id that shard
        owns. Sent to a connected shard at once (GUILD_CREATE), as when the bot joins."""
        if id is None:
            id = self.state.ids.for_shard(*shard) if shard else self.state.ids.next()
        made = self.state.add_guild(name, id, owner or self.user(f"{name} owner"), everyone,
                                    bot_permissions)
        self.gateway.dispatch("GUILD_CREATE", self.state.guild_payload(made), made.id)
        return made

    def channel(self, guild: Guild, name: str, *, parent: Channel | None = None,
                type: int = GUILD_TEXT) -> Channel:
        made = self.state.add_channel(guild, name, type=type,
                                      parent_id=None if parent is None else parent.id)
        event = "THREAD_CREATE" if made.is_thread else "CHANNEL_CREATE"
        self.gateway.dispatch(event, self.state.channel_payload(made), guild.id, intent=GUILDS)
        return made

    def role(self, guild: Guild, name: str, permissions: int | Any = 0) -> Role:
        """``permissions``: an int or a ``discord.Permissions``."""
        made = self.state.add_role(guild, name, int(getattr(permissions, "value", permissions)))
        self.gateway.dispatch("GUILD_ROLE_CREATE", {"guild_id": str(guild.id),
                                                    "role": payloads.role(made)},
                              guild.id, intent=GUILDS)
        return made

    def member(self, guild: Guild, who: str | User, *, roles: list[Role] | None = None,
               accepts_dms: bool = True) -> Member:
        user = self.user(who, accepts_dms=accepts_dms) if isinstance(who, str) else who
        made = self.state.add_member(guild, user, roles)
        self.gateway.dispatch("GUILD_MEMBER_ADD", {**payloads.member(made),
                                                   "guild_id": str(guild.id)},
                              guild.id, intent=GUILD_MEMBERS)
        return made

    def overwrite(self, channel: Channel, target: Role | Member, *, allow: int | Any = 0,
                  deny: int | Any = 0) -> None:
        """A permission overwrite on ``channel`` (ints or ``discord.Permissions``)."""
        kind = 0 if isinstance(target, Role) else 1
        channel.overwrites = [o for o in channel.overwrites
                              if (o.kind, o.target_id) != (kind, target.id)]
        channel.overwrites.append(Overwrite(target.id, kind, int(getattr(allow, "value", allow)),
                                            int(getattr(deny, "value", deny))))
        if channel.guild_id is not None:
            self.gateway.dispatch("CHANNEL_UPDATE", self.state.channel_payload(channel),
                                  channel.guild_id, intent=GUILDS)

    def delete_channel(self, channel: Channel) -> None:
        """Gone, as when a moderator deletes it: the bot gets 404 Unknown Channel."""
        payload = self.state.channel_payload(channel)
        self.state.channels.pop(channel.id, None)
        guild = self.state.guild_of(channel)
        if guild is not None:
            for listed in (guild.channel_ids, guild.thread_ids):
                if channel.id in listed:
                    listed.remove(channel.id)
            self.gateway.dispatch("CHANNEL_DELETE", payload, guild.id, intent=GUILDS)

    # ---- what members see, and what the bot did --------------------------------------------

    def messages(self, channel: Where) -> list[Message]:
        """The channel's messages, oldest first (ephemeral ones are not in any channel)."""
        return list(self.state.history.get(_id(channel), []))

    def bot_messages(self, channel: Where) -> list[Message]:
        return [m for m in self.messages(channel) if m.author_id == self.state.bot_user.id]

    def videos(self, channel: Where) -> list[str]:
        """The texts of the bot's video posts in ``channel``."""
        return [m.content for m in self.bot_messages(channel)
                if "your video is ready" in m.content]

    def message(self, message_id: int) -> Message:
        return self.state.by_id[message_id]

    def dm_messages(self, user: Who) -> list[Message]:
        user_id = user.id
        return [m for c in self.state.channels.values() if c.recipient_ids == [user_id]
                for m in self.state.history.get(c.id, [])]

    def file_bytes(self, message: Message, index: int = 0) -> bytes:
        return message.attachments[index].data

    def requests(self, method: str | None = None, path: str | None = None) -> list[RequestRecord]:
        """The REST requests made so far; ``path`` is a regular expression searched for."""
        return [r for r in self.state.requests
                if (method is None or r.method == method)
                and (path is None or re.search(path, r.path))]

    @property
    def unhandled(self) -> list[RequestRecord]:
        """Requests to routes the stand-in does not have (each was answered 404)."""
        return list(self.router.unhandled)

    @property
    def failures(self) -> list[RequestRecord]:
        """Requests the stand-in could not handle (answered 400, with the error in ``note``)."""
        return list(self.router.failures)

    @property
    def command_syncs(self) -> int:
        """How many bulk overwrites (``PUT .../commands``) the bot made."""
        return len(self.state.command_puts)

    def commands(self, guild: Guild | None = None) -> list[JSON]:
        scope = None if guild is None else guild.id
        return [dict(c.data, id=str(c.id)) for c in self.state.commands if c.guild_id == scope]

    @property
    def connections(self) -> list[Connection]:
        return list(self.gateway.connections)

    def live_connections(self, token: str | None = None) -> list[Connection]:
        return [c for c in self.gateway.live() if token is None or c.token == token]

    def interactions(self) -> list[InteractionHandle]:
        return list(self.state.interactions.values())

    # ---- faults ------------------------------------------------------------------------------

    def fail(self, method: str, path: str, status: int, *, code: int = 0,
             message: str = "injected by the test", times: int | None = 1,
             retry_after: float | None = None,
             when: Callable[[RequestRecord], bool] | None = None) -> Fault:
        """Answer requests matching ``method`` ("*" for any), the ``path`` regex (searched)
        and ``when`` with an error, ``times`` times (None: always); a 429 carries
        ``retry_after`` and the headers discord.py needs to retry it."""
        fault = Fault(method, re.compile(path), status, code, message, times, retry_after, when)
        self.router.faults.append(fault)
        return fault

    def hold(self, method: str, path: str, *, after: bool = True, times: int | None = 1,
             when: Callable[[RequestRecord], bool] | None = None) -> Hold:
        """Keep matching requests unanswered until ``hold.release()``; ``after``: once they
        took effect (the message exists, the bot has not heard so): crash tests.
        ``await hold.wait_arrived()`` waits for the first one."""
        made = Hold(method, re.compile(path), after, times, when)
        self.router.holds.append(made)
        return made

    def set_interaction_deadline(self, seconds: float | None) -> None:
        """Refuse (10062 Unknown interaction) a first callback later than ``seconds``."""
        self.webhooks.deadline = seconds

    def reconnect(self, connection: Connection) -> None:
        """Ask a shard to reconnect (op 7), as Discord does now and then."""
        connection.send(7, None)

    # ---- members acting ----------------------------------------------------------------------

    async def slash(self, member: Who, channel: Channel, command: str,
                    **options: Any) -> InteractionHandle:
        """``member`` runs ``/command`` (``"group sub"`` for subcommands) in ``channel``.
        Attachments are ``(filename, bytes)``; users, roles and channels are their objects."""
        name, *path = command.split()
        found = interactions.find_command(self.state, channel.guild_id, name)
        data = interactions.command_data(self.state, found, path, options, channel)
        return await self._dispatch(APPLICATION_COMMAND, member, channel, data, command)

    async def autocomplete(self, member: Who, channel: Channel, command: str, focused: str,
                           **options: Any) -> InteractionHandle:
        """``member`` is typing ``focused`` (its current text in ``options``)."""
        name, *path = command.split()
        found = interactions.find_command(self.state, channel.guild_id, name)
        data = interactions.command_data(self.state, found, path, options, channel,
                                         focused=focused)
        return await self._dispatch(AUTOCOMPLETE, member, channel, data, command)

    async def message_command(self, member: Who, message: Message,
                              name: str) -> InteractionHandle:
        """Apps > ``name`` on ``message`` (a message context menu command)."""
        channel = self.state.channel(message.channel_id)
        found = interactions.find_command(self.state, channel.guild_id, name, kind=3)
        data = interactions.message_command_data(self.state, found, message)
        return await self._dispatch(APPLICATION_COMMAND, member, channel, data, name)

    async def click(self, member: Who, message: Message, custom_id: str, *,
                    values: list[str] | None = None) -> InteractionHandle:
        """``member`` presses a button (or picks ``values`` in a select) on ``message``."""
        channel = self.state.channel(message.channel_id)
        data = interactions.component_data(message, custom_id, values)
        extra = {"message": self.state.message_payload(message)}
        handle = await self._dispatch(COMPONENT, member, channel, data, custom_id, extra)
        handle.source_message_id = message.id
        return handle

    async def submit_modal(self, member: Who, opened: InteractionHandle,
                           **values: Any) -> InteractionHandle:
        """``member`` fills in and submits the modal the bot answered ``opened`` with: text
        inputs take str, selects a str or a list, file uploads ``(filename, bytes)``."""
        if opened.modal is None:
            raise interactions.BadInteraction("the bot did not answer with a modal")
        channel = self.state.channel(opened.channel_id)
        data = interactions.modal_data(self.state, opened.modal, values, channel.id)
        extra: JSON = {}
        if opened.source_message_id is not None:
            source = self.state.by_id[opened.source_message_id]
            extra["message"] = self.state.message_payload(source)
        handle = await self._dispatch(MODAL_SUBMIT, member, channel, data,
                                      str(data["custom_id"]), extra)
        handle.source_message_id = opened.source_message_id
        return handle

    async def say(self, member: Who, channel: Channel, content: str, *,
                  files: list[tuple[str, bytes]] | None = None,
                  reply_to: Message | None = None) -> Message:
        """``member`` posts a message (MESSAGE_CREATE goes to the bot's shard)."""
        message = Message(id=self.state.ids.next(), channel_id=channel.id, author_id=member.id,
                          content=content, type=19 if reply_to else 0,
                          timestamp=payloads.now_iso())
        message.attachments = [self.state.add_attachment(channel.id, name, data)
                               for name, data in files or []]
        if reply_to is not None:
            message.reference = {"message_id": reply_to.id, "channel_id": channel.id}
        message.mention_ids = self.state.mentions(
            content, None, None if reply_to is None else reply_to.author_id)
        self.rest.publish(message)
        return message

    async def _dispatch(self, kind: int, member: Who, channel: Channel, data: JSON,
                        name: str, extra: JSON | None = None,
                        wait: float = 15.0) -> InteractionHandle:
        user = member.user if isinstance(member, Member) else member
        payload = interactions.base(self.state, kind, user, channel, data,
                                    self.rest.upload_limit_of(channel))
        payload.update(extra or {})
        conn = await self._owner(channel.guild_id, wait)
        handle = InteractionHandle(
            id=int(payload["id"]), token=str(payload["token"]), type=kind,
            guild_id=channel.guild_id, channel_id=channel.id, user_id=user.id, name=name,
            connection_id=conn.id, shard_id=conn.shard_id, payload=payload)
        self.state.interactions[handle.token] = handle
        handle.dispatched_at = time.monotonic()
        self.gateway.send_to(conn, "INTERACTION_CREATE", payload, channel.guild_id)
        return handle

    async def _owner(self, guild_id: int | None, wait: float) -> Connection:
        deadline = time.monotonic() + wait
        while (conn := self.gateway.owner(guild_id)) is None:
            if time.monotonic() > deadline:
                live = [(c.id, c.shard_id, c.shard_count) for c in self.gateway.live()]
                raise NoShardConnected(f"no live shard owns guild {guild_id}; live "
                                       f"connections (id, shard, count): {live}")
            await asyncio.sleep(0.05)
        return conn

    # ---- waiting -----------------------------------------------------------------------------

    async def wait_for(self, predicate: Callable[[], object | Awaitable[object]],
                       timeout: float = 30.0, *,  # noqa: ASYNC109 - real time, polled
                       what: str = "the condition",
                       interval: float = 0.05) -> None:
        """Poll ``predicate`` (real time) until it is true; fail with what the bot did."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not come true within {timeout} s\n"
                                     + self.report())
            await asyncio.sleep(interval)

    def report(self, last: int = 15) -> str:
        """What happened lately, for a failing test's message."""
        lines = [f"  {r.method} {r.path} -> {r.status} {r.note}".rstrip()
                 for r in self.state.requests[-last:]]
        missed = sorted({f"{r.method} {r.path}" for r in self.router.unhandled})
        missed += [f"{r.method} {r.path}: {r.note}" for r in self.router.failures]
        live = [(c.id, c.shard_id, c.shard_count, c.token) for c in self.gateway.live()]
        return ("last requests:\n" + "\n".join(lines) + f"\nunhandled routes: {missed}"
                + f"\nlive connections (id, shard, count, token): {live}")


def _id(channel: Where) -> int:
    return channel if isinstance(channel, int) else channel.id
