"""The gateway: a real WebSocket speaking Discord's JSON protocol (no compression), one
connection per shard, events routed to the shard that owns the guild."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.discord_stand_in import payloads
from tests.discord_stand_in.ids import shard_of
from tests.discord_stand_in.model import JSON, Dispatch
from tests.discord_stand_in.state import State

log = logging.getLogger(__name__)
DISPATCH, HEARTBEAT, IDENTIFY, PRESENCE, RESUME, RECONNECT = 0, 1, 2, 3, 6, 7
REQUEST_MEMBERS, INVALID_SESSION, HELLO, HEARTBEAT_ACK = 8, 9, 10, 11
GUILDS, GUILD_MEMBERS, GUILD_MESSAGES = 1, 1 << 1, 1 << 9
DIRECT_MESSAGES, MESSAGE_CONTENT = 1 << 12, 1 << 15


@dataclass
class Connection:
    """One gateway connection (one shard of one bot process)."""

    id: int
    ws: web.WebSocketResponse
    opened_at: float = field(default_factory=time.monotonic)
    token: str | None = None
    shard_id: int = 0
    shard_count: int = 1
    intents: int = 0
    session_id: str | None = None
    identified_at: float | None = None
    refused_identifies: int = 0  # IDENTIFYs answered with an invalid session (too early)
    ready: bool = False  # READY and every GUILD_CREATE of its shard were sent
    closed: bool = False
    close_code: int | None = None
    heartbeats: int = 0
    resumes: int = 0
    seq: int = 0
    events: list[str] = field(default_factory=list)
    outbox: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)

    @property
    def live(self) -> bool:
        return not self.closed and self.identified_at is not None

    def owns(self, guild_id: int | None) -> bool:
        """Whether Discord would send this guild's events here (DMs go to shard 0)."""
        if guild_id is None:
            return self.shard_id == 0
        return shard_of(guild_id, self.shard_count) == self.shard_id

    def send(self, op: int, data: Any, event: str | None = None) -> None:
        frame: JSON = {"op": op, "d": data, "s": None, "t": event}
        if op == DISPATCH:
            self.seq += 1
            frame["s"] = self.seq
            assert event is not None
            self.events.append(event)
        self.outbox.put_nowait(json.dumps(frame))


class Gateway:
    def __init__(self, state: State, dispatches: list[Dispatch]) -> None:
        self.state = state
        self.dispatches = dispatches
        self.connections: list[Connection] = []
        self.heartbeat_ms = 41_250
        self.url = "ws://127.0.0.1:0/gateway"  # set when the server starts
        self.identify_delay = 0.0  # seconds before READY (a slow Discord)
        # Discord's pace: one IDENTIFY per ``identify_every`` seconds in each of
        # ``max_concurrency`` buckets (shard id % max_concurrency), across every connection of
        # the bot; an early one is answered with an invalid session (op 9, not resumable), as
        # Discord does. 0: every IDENTIFY is taken at once (the tests' speed).
        self.identify_every = 0.0
        self.max_concurrency = 1
        self.identified: dict[int, float] = {}  # bucket -> when its last IDENTIFY was taken
        self.refused_identifies = 0

    def live(self) -> list[Connection]:
        return [c for c in self.connections if c.live]

    def owner(self, guild_id: int | None) -> Connection | None:
        """The newest live connection of the shard that owns ``guild_id``."""
        owners = [c for c in self.live() if c.ready and c.owns(guild_id)]
        return max(owners, key=lambda c: c.identified_at or 0) if owners else None

    def dispatch(self, event: str, data: JSON, guild_id: int | None, *,
                 intent: int = 0) -> Connection | None:
        """Send ``event`` to the shard owning ``guild_id`` (if it asked for ``intent``)."""
        conn = self.owner(guild_id)
        if conn is None or (intent and not conn.intents & intent):
            return None
        self.send_to(conn, event, data, guild_id)
        return conn

    def send_to(self, conn: Connection, event: str, data: JSON, guild_id: int | None) -> None:
        conn.send(DISPATCH, data, event)
        self.dispatches.append(Dispatch(conn.id, conn.shard_id, event, guild_id))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        conn = Connection(len(self.connections) + 1, ws)
        self.connections.append(conn)
        writer = asyncio.create_task(self._write(conn))
        conn.send(HELLO, {"heartbeat_interval": self.heartbeat_ms, "_trace": ["stand-in"]})
        try:
            async for frame in ws:
                if frame.type is not WSMsgType.TEXT:
                    continue
                await self._receive(conn, json.loads(frame.data))
        finally:
            conn.closed = True
            conn.close_code = ws.close_code
            conn.outbox.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await writer
        return ws

    async def _write(self, conn: Connection) -> None:
        while (text := await conn.outbox.get()) is not None:
            try:
                await conn.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    async def _receive(self, conn: Connection, frame: JSON) -> None:
        op, data = frame.get("op"), frame.get("d")
        if op == HEARTBEAT:
            conn.heartbeats += 1
            conn.send(HEARTBEAT_ACK, None)
        elif op == IDENTIFY and isinstance(data, dict):
            await self._identify(conn, data)
        elif op == RESUME:
            conn.resumes += 1  # sessions are not kept: discord.py identifies again
            conn.send(INVALID_SESSION, False)
        elif op not in (PRESENCE, REQUEST_MEMBERS):
            log.warning("gateway: connection %d sent op %s", conn.id, op)

    async def _identify(self, conn: Connection, data: JSON) -> None:
        token = str(data.get("token", ""))
        valid = self.state.valid_tokens
        if valid is not None and token.removeprefix("Bot ") not in valid:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        shard = data.get("shard") or [0, 1]
        shard_id, shard_count = int(shard[0]), int(shard[1])
        if not 0 <= shard_id < shard_count:
            await conn.ws.close(code=4010, message=b"Invalid shard.")
            return
        if self.too_early(shard_id):
            conn.refused_identifies += 1
            self.refused_identifies += 1
            conn.send(INVALID_SESSION, False)
            return
        if self.identify_delay:
            await asyncio.sleep(self.identify_delay)
        conn.token, conn.shard_id, conn.shard_count = token, shard_id, shard_count
        conn.intents = int(data.get("intents", 0))
        conn.session_id = secrets.token_hex(16)
        conn.identified_at = time.monotonic()
        guilds = [g for g in self.state.guilds.values() if conn.owns(g.id)]
        self.send_to(conn, "READY", {
            "v": 10, "user": payloads.user(self.state.bot_user),
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": conn.session_id, "resume_gateway_url": self.url,
            "shard": [shard_id, shard_count],
            "application": {"id": str(self.state.application_id), "flags": 0},
            "private_channels": [], "relationships": [], "presences": [],
            "guild_join_requests": [], "geo_ordered_rtc_regions": [], "auth": {},
            "user_settings": {}, "session_type": "normal", "_trace": ["stand-in"],
        }, None)
        for guild in guilds:
            self.send_to(conn, "GUILD_CREATE", self.state.guild_payload(guild), guild.id)
        conn.ready = True

    def too_early(self, shard_id: int) -> bool:
        """Whether an IDENTIFY of ``shard_id`` now is too early for Discord's pace (if not, it
        is taken: the next one in its bucket waits ``identify_every`` from now)."""
        if not self.identify_every:
            return False
        bucket, now = shard_id % self.max_concurrency, time.monotonic()
        last = self.identified.get(bucket)
        if last is not None and now - last < self.identify_every:
            return True
        self.identified[bucket] = now
        return False

    async def close_all(self) -> None:
        for conn in self.connections:
            if not conn.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await conn.ws.close(code=1001, message=b"The stand-in is stopping.")
