"""Everything the stand-in knows, and the rules Discord applies to it (permissions, mentions,
nonces). Kept in the test process, so it outlives every bot process."""

from __future__ import annotations

import io
import mimetypes
import re
import secrets
import time
from typing import Any
from urllib.parse import quote

from PIL import Image

from tests.discord_stand_in import payloads
from tests.discord_stand_in.ids import Snowflakes
from tests.discord_stand_in.model import (
    DM,
    GUILD_TEXT,
    JSON,
    Attachment,
    Channel,
    Command,
    Guild,
    InteractionHandle,
    Member,
    Message,
    RequestRecord,
    Role,
    User,
)

ALL_PERMISSIONS = (1 << 53) - 1
ADMINISTRATOR = 1 << 3
VIEW_CHANNEL, SEND_MESSAGES, READ_MESSAGE_HISTORY = 1 << 10, 1 << 11, 1 << 16
ATTACH_FILES, SEND_MESSAGES_IN_THREADS = 1 << 15, 1 << 38
# @everyone by default: view, send, embed, attach, history, reactions, app commands, threads.
DEFAULT_EVERYONE = (VIEW_CHANNEL | SEND_MESSAGES | (1 << 14) | ATTACH_FILES
                    | READ_MESSAGE_HISTORY | (1 << 6) | (1 << 31) | (1 << 35)
                    | SEND_MESSAGES_IN_THREADS)
# What the bot's invite asks for (README): 309237763072.
BOT_INVITE = 309237763072
_MENTION = re.compile(r"<@!?(\d+)>")


class DiscordError(Exception):
    """An error Discord answers with: HTTP status, JSON error code and message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def unknown(kind: str, code: int) -> DiscordError:
    return DiscordError(404, code, f"Unknown {kind}")


class State:
    def __init__(self) -> None:
        self.ids = Snowflakes()
        self.base_url = "http://127.0.0.1:0"  # set when the server starts
        self.users: dict[int, User] = {}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.history: dict[int, list[Message]] = {}  # per channel, oldest first, visible ones
        self.by_id: dict[int, Message] = {}  # every message, ephemeral ones too
        self.attachments: dict[int, Attachment] = {}
        self.commands: list[Command] = []
        self.command_puts: list[tuple[int | None, list[JSON]]] = []
        self.requests: list[RequestRecord] = []
        self.interactions: dict[str, InteractionHandle] = {}  # by token
        self.nonce_window = 300.0  # seconds during which enforce_nonce drops a repeat
        self.valid_tokens: set[str] | None = None  # None: any bot token is accepted
        self.application_id = self.ids.next()
        self.bot_user = self.add_user("RunComfy Video Bot", bot=True, id=self.application_id)

    # ---- creation --------------------------------------------------------------------------

    def add_user(self, name: str, *, bot: bool = False, id: int | None = None) -> User:
        made = User(id=id or self.ids.next(), name=name, bot=bot)
        self.users[made.id] = made
        return made

    def user(self, user_id: int) -> User:
        try:
            return self.users[user_id]
        except KeyError:
            raise unknown("User", 10013) from None

    def add_guild(self, name: str, guild_id: int, owner: User,
                  everyone_permissions: int, bot_permissions: int) -> Guild:
        guild = Guild(id=guild_id, name=name, owner_id=owner.id)
        guild.roles[guild_id] = Role(guild_id, guild_id, "@everyone", everyone_permissions)
        self.guilds[guild_id] = guild
        self.add_member(guild, owner)
        bot_role = self.add_role(guild, self.bot_user.name, bot_permissions, managed=True)
        self.add_member(guild, self.bot_user, [bot_role])
        return guild

    def add_role(self, guild: Guild, name: str, permissions: int, *,
                 managed: bool = False) -> Role:
        made = Role(self.ids.next(), guild.id, name, permissions, len(guild.roles), managed)
        guild.roles[made.id] = made
        return made

    def add_member(self, guild: Guild, who: User, roles: list[Role] | None = None) -> Member:
        made = Member(guild.id, who, [r.id for r in roles or []], joined_at=payloads.now_iso())
        guild.members[who.id] = made
        return made

    def add_channel(self, guild: Guild | None, name: str, *, type: int = GUILD_TEXT,
                    parent_id: int | None = None, owner_id: int | None = None,
                    id: int | None = None) -> Channel:
        made = Channel(id or self.ids.next(), type, name, None if guild is None else guild.id,
                       parent_id=parent_id, owner_id=owner_id)
        self.channels[made.id] = made
        self.history[made.id] = []
        if guild is not None:
            made.position = len(guild.channel_ids)
            (guild.thread_ids if made.is_thread else guild.channel_ids).append(made.id)
        return made

    def dm_channel(self, user_id: int) -> Channel:
        for found in self.channels.values():
            if found.type == DM and found.recipient_ids == [user_id]:
                return found
        made = self.add_channel(None, "", type=DM)
        made.recipient_ids = [self.user(user_id).id]
        return made

    def add_attachment(self, channel_id: int, filename: str, data: bytes, *,
                       content_type: str | None = None, description: str | None = None,
                       ephemeral: bool = False) -> Attachment:
        attachment_id = self.ids.next()
        if content_type in (None, "application/octet-stream"):  # Discord sniffs the type
            content_type = mimetypes.guess_type(filename)[0]
        kind = content_type or "application/octet-stream"
        width = height = None
        if kind.startswith("image/"):
            try:
                with Image.open(io.BytesIO(data)) as image:
                    width, height = image.size
            except (OSError, ValueError):
                pass
        # Discord's CDN URLs are signed (ex, is, hm): the bot must cope with a query string.
        url = (f"{self.base_url}/attachments/{channel_id}/{attachment_id}/{quote(filename)}"
               f"?ex={int(time.time()) + 86400:x}&is={int(time.time()):x}"
               f"&hm={secrets.token_hex(16)}&")
        made = Attachment(attachment_id, channel_id, filename, data, kind, url, width, height,
                          description, ephemeral)
        self.attachments[attachment_id] = made
        return made

    # ---- lookups ---------------------------------------------------------------------------

    def guild(self, guild_id: int) -> Guild:
        try:
            return self.guilds[guild_id]
        except KeyError:
            raise unknown("Guild", 10004) from None

    def channel(self, channel_id: int) -> Channel:
        try:
            return self.channels[channel_id]
        except KeyError:
            raise unknown("Channel", 10003) from None

    def message(self, channel_id: int, message_id: int) -> Message:
        found = self.by_id.get(message_id)
        if found is None or found.deleted or found.channel_id != channel_id:
            raise unknown("Message", 10008)
        return found

    def guild_of(self, channel: Channel) -> Guild | None:
        return None if channel.guild_id is None else self.guilds.get(channel.guild_id)

    def threads_of(self, guild: Guild) -> list[Channel]:
        return [self.channels[t] for t in guild.thread_ids]

    # ---- payloads --------------------------------------------------------------------------

    def message_payload(self, m: Message) -> JSON:
        channel = self.channels[m.channel_id]
        referenced = None if m.reply_to is None else self.by_id.get(m.reply_to)
        return payloads.message(m, channel.guild_id, self.user, referenced)

    def channel_payload(self, c: Channel) -> JSON:
        return payloads.channel(c, self.user)

    def guild_payload(self, g: Guild) -> JSON:
        return payloads.guild_create(g, [self.channels[c] for c in g.channel_ids],
                                     self.threads_of(g), self.user)

    # ---- rules -----------------------------------------------------------------------------

    def permissions(self, guild: Guild, user_id: int, channel: Channel | None = None) -> int:
        """Discord's permission computation: base from roles, then channel overwrites."""
        if user_id == guild.owner_id:
            return ALL_PERMISSIONS
        member = guild.members.get(user_id)
        if member is None:
            return 0
        base = guild.everyone.permissions
        for role_id in member.role_ids:
            base |= guild.roles[role_id].permissions
        if base & ADMINISTRATOR:
            return ALL_PERMISSIONS
        if channel is not None and channel.is_thread and channel.parent_id is not None:
            channel = self.channels.get(channel.parent_id, channel)
        if channel is None:
            return base
        by_target = {(o.kind, o.target_id): o for o in channel.overwrites}
        everyone = by_target.get((0, guild.id))
        if everyone is not None:
            base = (base & ~everyone.deny) | everyone.allow
        allow = deny = 0
        for role_id in member.role_ids:
            if (found := by_target.get((0, role_id))) is not None:
                allow, deny = allow | found.allow, deny | found.deny
        base = (base & ~deny) | allow
        if (own := by_target.get((1, user_id))) is not None:
            base = (base & ~own.deny) | own.allow
        return base

    def require(self, channel: Channel, user_id: int, needed: int) -> None:
        """403 as Discord answers it when ``user_id`` lacks ``needed`` in ``channel``."""
        guild = self.guild_of(channel)
        if guild is None:
            if user_id not in channel.recipient_ids and user_id != self.bot_user.id:
                raise DiscordError(403, 50001, "Missing Access")
            return
        have = self.permissions(guild, user_id, channel)
        if not have & VIEW_CHANNEL:
            raise DiscordError(403, 50001, "Missing Access")
        if needed & ~have:
            raise DiscordError(403, 50013, "Missing Permissions")

    def mentions(self, content: str, allowed: JSON | None, reply_author: int | None) -> list[int]:
        """Who a message pings, as ``allowed_mentions`` lets it."""
        named = [int(m) for m in _MENTION.findall(content) if int(m) in self.users]
        if allowed is None or "users" in (allowed.get("parse") or []):
            pinged = named
        else:
            listed = {int(u) for u in allowed.get("users") or []}
            pinged = [uid for uid in named if uid in listed]
        # With allowed_mentions, replied_user defaults to false (discord.py omits it then).
        replied = allowed is None or bool(allowed.get("replied_user", False))
        if reply_author is not None and replied and reply_author not in pinged:
            pinged.append(reply_author)
        return list(dict.fromkeys(pinged))

    def repeat_of(self, channel_id: int, author_id: int, nonce: Any) -> Message | None:
        """The message this ``nonce`` already made in the last ``nonce_window`` seconds."""
        if nonce is None:
            return None
        horizon = time.monotonic() - self.nonce_window
        for earlier in reversed(self.history.get(channel_id, [])):
            if earlier.created < horizon:
                break
            if earlier.author_id == author_id and str(earlier.nonce) == str(nonce):
                return earlier
        return None

    def post(self, message: Message, *, visible: bool = True) -> Message:
        """Record a new message (``visible`` False for an ephemeral one)."""
        message.timestamp = message.timestamp or payloads.now_iso()
        self.by_id[message.id] = message
        if visible:
            self.history.setdefault(message.channel_id, []).append(message)
        return message

    def delete(self, message: Message) -> None:
        message.deleted = True
        listed = self.history.get(message.channel_id, [])
        if message in listed:
            listed.remove(message)

    def page(self, channel_id: int, *, limit: int, before: int | None, after: int | None,
             around: int | None) -> list[Message]:
        """A page of history as Discord returns it: newest first."""
        listed = sorted(self.history.get(channel_id, []), key=lambda m: m.id)
        if around is not None:
            older = [m for m in listed if m.id < around][-(limit // 2):] if limit > 1 else []
            newer = [m for m in listed if m.id >= around][: limit - len(older)]
            chosen = older + newer
        elif after is not None:
            chosen = [m for m in listed if m.id > after][:limit]
        else:
            if before is not None:
                listed = [m for m in listed if m.id < before]
            chosen = listed[-limit:] if limit else []
        return sorted(chosen, key=lambda m: m.id, reverse=True)
