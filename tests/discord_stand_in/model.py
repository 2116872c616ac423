"""The stand-in's state: what exists on "Discord" while bot processes come and go."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]

# Channel types, interaction types and callback types, as Discord numbers them.
GUILD_TEXT, DM, PUBLIC_THREAD, PRIVATE_THREAD = 0, 1, 11, 12
THREAD_TYPES = (PUBLIC_THREAD, PRIVATE_THREAD)
PING, APPLICATION_COMMAND, COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 1, 2, 3, 4, 5
MESSAGE_WITH_SOURCE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE = 4, 5, 6, 7
AUTOCOMPLETE_RESULT, MODAL = 8, 9
EPHEMERAL, LOADING = 1 << 6, 1 << 7


@dataclass
class User:
    id: int
    name: str
    bot: bool = False
    accepts_dms: bool = True

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


@dataclass
class Role:
    id: int
    guild_id: int
    name: str
    permissions: int
    position: int = 0
    managed: bool = False


@dataclass
class Overwrite:
    """A channel permission overwrite: ``kind`` 0 for a role, 1 for a member."""

    target_id: int
    kind: int
    allow: int = 0
    deny: int = 0


@dataclass
class Channel:
    id: int
    type: int
    name: str
    guild_id: int | None = None
    parent_id: int | None = None
    position: int = 0
    owner_id: int | None = None
    recipient_ids: list[int] = field(default_factory=list)
    overwrites: list[Overwrite] = field(default_factory=list)
    topic: str | None = None

    @property
    def is_thread(self) -> bool:
        return self.type in THREAD_TYPES

    @property
    def mention(self) -> str:
        return f"<#{self.id}>"


@dataclass
class Member:
    guild_id: int
    user: User
    role_ids: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: str = ""

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def mention(self) -> str:
        return f"<@{self.user.id}>"


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, Role] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    channel_ids: list[int] = field(default_factory=list)
    thread_ids: list[int] = field(default_factory=list)
    premium_tier: int = 0

    @property
    def everyone(self) -> Role:
        return self.roles[self.id]


@dataclass
class Attachment:
    """A file on the stand-in's CDN, with its bytes."""

    id: int
    channel_id: int
    filename: str
    data: bytes
    content_type: str | None
    url: str
    width: int | None = None
    height: int | None = None
    description: str | None = None
    ephemeral: bool = False

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class Message:
    id: int
    channel_id: int
    author_id: int
    content: str = ""
    embeds: list[JSON] = field(default_factory=list)
    components: list[JSON] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    reference: JSON | None = None  # message_reference as sent
    nonce: str | int | None = None
    flags: int = 0
    type: int = 0
    timestamp: str = ""
    edited_timestamp: str | None = None
    mention_ids: list[int] = field(default_factory=list)  # who it pinged
    webhook_id: int | None = None
    interaction: JSON | None = None  # interaction_metadata
    created: float = field(default_factory=time.monotonic)
    deleted: bool = False
    edits: int = 0

    @property
    def edited(self) -> bool:
        return self.edited_timestamp is not None

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & EPHEMERAL)

    @property
    def reply_to(self) -> int | None:
        """The id of the message this one replies to."""
        if self.reference is None or self.reference.get("message_id") is None:
            return None
        return int(self.reference["message_id"])

    def text(self) -> str:
        """Content, embed titles, descriptions, fields and footers: what a member reads."""
        parts = [self.content]
        for embed in self.embeds:
            parts += [str(embed.get(key, "")) for key in ("title", "description")]
            parts += [f"{f.get('name')}: {f.get('value')}" for f in embed.get("fields", [])]
            parts.append(str((embed.get("footer") or {}).get("text", "")))
        return "\n".join(part for part in parts if part)

    def buttons(self) -> list[JSON]:
        """Every button and select in the message's components."""
        found: list[JSON] = []

        def walk(items: list[JSON]) -> None:
            for item in items:
                if item.get("type") in (2, 3, 5, 6, 7, 8):
                    found.append(item)
                walk(item.get("components", []))
                if isinstance(item.get("accessory"), dict):
                    walk([item["accessory"]])

        walk(self.components)
        return found


@dataclass
class RequestRecord:
    """One REST request the bot made, and how it was answered."""

    method: str
    path: str  # after the API base, e.g. /channels/1/messages
    query: dict[str, str]
    json: Any
    status: int = 0
    route: str | None = None  # the route template it matched; None for an unknown route
    files: list[tuple[str, int]] = field(default_factory=list)  # (filename, size)
    at: float = field(default_factory=time.monotonic)
    note: str = ""  # e.g. "nonce repeat: returned the existing message"
    token: str = ""  # the bot token it was made with: which process made it


@dataclass
class Dispatch:
    """One gateway event sent to a connection."""

    connection_id: int
    shard_id: int
    event: str
    guild_id: int | None
    at: float = field(default_factory=time.monotonic)


@dataclass
class Command:
    """An application command as synced (``guild_id`` None for a global one)."""

    id: int
    guild_id: int | None
    data: JSON

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def type(self) -> int:
        return int(self.data.get("type", 1))


@dataclass
class InteractionHandle:
    """An interaction a member started, filled in as the bot answers it."""

    id: int
    token: str
    type: int
    guild_id: int | None
    channel_id: int
    user_id: int
    name: str  # the command's name, or the component's / modal's custom_id
    connection_id: int
    shard_id: int
    payload: JSON
    dispatched_at: float = field(default_factory=time.monotonic)
    acknowledged_at: float | None = None
    callback_type: int | None = None
    ephemeral: bool = False
    message_id: int | None = None  # the original response (or the source message, on updates)
    loading: bool = False  # deferred with "thinking" and not yet edited
    original: Message | None = None
    followups: list[Message] = field(default_factory=list)
    modal: JSON | None = None
    choices: list[JSON] | None = None
    source_message_id: int | None = None
    callbacks: list[JSON] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # callbacks refused (e.g. already acked)

    @property
    def acknowledged(self) -> bool:
        return self.callback_type is not None

    @property
    def ack_seconds(self) -> float | None:
        """Wall-clock seconds from dispatch to the first callback."""
        if self.acknowledged_at is None:
            return None
        return self.acknowledged_at - self.dispatched_at

    @property
    def content(self) -> str | None:
        return None if self.original is None else self.original.content

    @property
    def embeds(self) -> list[JSON]:
        return [] if self.original is None else self.original.embeds

    def texts(self) -> list[str]:
        """What the member was shown: the original response, then the followups."""
        shown = [] if self.original is None else [self.original.text()]
        return shown + [m.text() for m in self.followups]
