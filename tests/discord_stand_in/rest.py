"""REST routes for the bot itself: users, gateway, application, channels and messages."""

from __future__ import annotations

from tests.discord_stand_in import payloads
from tests.discord_stand_in.gateway import (
    DIRECT_MESSAGES,
    GUILD_MESSAGES,
    GUILDS,
    MESSAGE_CONTENT,
    Gateway,
)
from tests.discord_stand_in.messages import apply_edit, new_message
from tests.discord_stand_in.model import DM, JSON, PUBLIC_THREAD, THREAD_TYPES, Channel, Message
from tests.discord_stand_in.routing import Call, Router
from tests.discord_stand_in.state import (
    ATTACH_FILES,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    SEND_MESSAGES_IN_THREADS,
    VIEW_CHANNEL,
    DiscordError,
    State,
)

CREATE_PUBLIC_THREADS = 1 << 35


class Rest:
    """The routes a bot calls with its token."""

    def __init__(self, state: State, gateway: Gateway, router: Router) -> None:
        self.state = state
        self.gateway = gateway
        self.shards = 1  # what GET /gateway/bot recommends
        self.upload_limit: int | None = None  # None: the guild's, by its boost tier
        for method, template, handler in (
            ("GET", "/users/@me", self.me),
            ("POST", "/users/@me/channels", self.open_dm),
            ("GET", "/users/{user_id}", self.get_user),
            ("GET", "/gateway/bot", self.gateway_bot),
            ("GET", "/gateway", self.gateway_plain),
            ("GET", "/oauth2/applications/@me", self.application),
            ("GET", "/applications/@me", self.application),
            ("GET", "/guilds/{guild_id}", self.get_guild),
            ("GET", "/guilds/{guild_id}/channels", self.guild_channels),
            ("GET", "/guilds/{guild_id}/roles", self.guild_roles),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self.guild_member),
            ("GET", "/channels/{channel_id}", self.get_channel),
            ("POST", "/channels/{channel_id}/typing", self.typing),
            ("GET", "/channels/{channel_id}/messages", self.history),
            ("POST", "/channels/{channel_id}/messages", self.create_message),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self.get_message),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self.edit_message),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self.delete_message),
            ("POST", "/channels/{channel_id}/messages/{message_id}/threads",
             self.thread_from_message),
            ("POST", "/channels/{channel_id}/threads", self.thread),
            ("PUT", "/channels/{channel_id}/thread-members/@me", self.join_thread),
        ):
            router.add(method, template, handler)

    # ---- users, gateway, application --------------------------------------------------------

    async def me(self, call: Call) -> JSON:
        return payloads.user(self.state.bot_user)

    async def get_user(self, call: Call) -> JSON:
        return payloads.user(self.state.user(call.int_arg("user_id")))

    async def open_dm(self, call: Call) -> JSON:
        channel = self.state.dm_channel(int(call.json.get("recipient_id", 0)))
        return self.state.channel_payload(channel)

    async def gateway_bot(self, call: Call) -> JSON:
        return {"url": self.gateway.url, "shards": self.shards,
                "session_start_limit": {"total": 1000, "remaining": 999,
                                        "reset_after": 14_400_000,
                                        "max_concurrency": self.gateway.max_concurrency}}

    async def gateway_plain(self, call: Call) -> JSON:
        return {"url": self.gateway.url}

    async def application(self, call: Call) -> JSON:
        bot = payloads.user(self.state.bot_user)
        return {
            "id": str(self.state.application_id), "name": self.state.bot_user.name,
            "description": "", "icon": None, "bot_public": True,
            "bot_require_code_grant": False, "owner": bot, "team": None,
            "verify_key": "0" * 64, "flags": 0, "bot": bot, "summary": "", "rpc_origins": [],
            "approximate_guild_count": len(self.state.guilds), "redirect_uris": [],
            "interactions_endpoint_url": None, "tags": [],
        }

    # ---- guilds ------------------------------------------------------------------------------

    async def get_guild(self, call: Call) -> JSON:
        guild = self.state.guild(call.int_arg("guild_id"))
        payload = self.state.guild_payload(guild)
        for key in ("members", "channels", "threads", "presences", "voice_states"):
            payload.pop(key, None)
        return payload

    async def guild_channels(self, call: Call) -> list[JSON]:
        guild = self.state.guild(call.int_arg("guild_id"))
        return [self.state.channel_payload(self.state.channels[c]) for c in guild.channel_ids]

    async def guild_roles(self, call: Call) -> list[JSON]:
        guild = self.state.guild(call.int_arg("guild_id"))
        return [payloads.role(r) for r in guild.roles.values()]

    async def guild_member(self, call: Call) -> JSON:
        guild = self.state.guild(call.int_arg("guild_id"))
        found = guild.members.get(call.int_arg("user_id"))
        if found is None:
            raise DiscordError(404, 10007, "Unknown Member")
        return payloads.member(found)

    # ---- channels and messages ---------------------------------------------------------------

    def _channel(self, call: Call, needed: int = VIEW_CHANNEL) -> Channel:
        channel = self.state.channel(call.int_arg("channel_id"))
        self.state.require(channel, self.state.bot_user.id, needed)
        return channel

    async def get_channel(self, call: Call) -> JSON:
        return self.state.channel_payload(self._channel(call))

    async def typing(self, call: Call) -> None:
        self._channel(call, VIEW_CHANNEL | SEND_MESSAGES)

    async def history(self, call: Call) -> list[JSON]:
        channel = self._channel(call)
        guild = self.state.guild_of(channel)
        if guild is not None and not self.state.permissions(
                guild, self.state.bot_user.id, channel) & READ_MESSAGE_HISTORY:
            return []  # Discord shows no history without Read Message History
        query = call.request.query

        def number(name: str) -> int | None:
            return int(query[name]) if query.get(name) else None

        limit = max(1, min(int(query.get("limit", "50")), 100))
        found = self.state.page(channel.id, limit=limit, before=number("before"),
                                after=number("after"), around=number("around"))
        return [self.state.message_payload(m) for m in found]

    async def get_message(self, call: Call) -> JSON:
        channel = self._channel(call, VIEW_CHANNEL | READ_MESSAGE_HISTORY)
        return self.state.message_payload(self.state.message(channel.id,
                                                             call.int_arg("message_id")))

    def upload_limit_of(self, channel: Channel) -> int:
        if self.upload_limit is not None:
            return self.upload_limit
        guild = self.state.guild_of(channel)
        tier = 0 if guild is None else guild.premium_tier
        return {2: 50 * 1024 * 1024, 3: 100 * 1024 * 1024}.get(tier, 10 * 1024 * 1024)

    async def create_message(self, call: Call) -> JSON:
        channel = self.state.channel(call.int_arg("channel_id"))
        body = call.json
        needed = VIEW_CHANNEL | (SEND_MESSAGES_IN_THREADS if channel.is_thread
                                 else SEND_MESSAGES)
        if call.uploads:
            needed |= ATTACH_FILES
        self.state.require(channel, self.state.bot_user.id, needed)
        if channel.type == DM:
            recipient = self.state.user(channel.recipient_ids[0])
            if not recipient.accepts_dms:
                raise DiscordError(403, 50007, "Cannot send messages to this user")
        if body.get("message_reference") and self.state.guild_of(channel) is not None:
            self.state.require(channel, self.state.bot_user.id, READ_MESSAGE_HISTORY)
        if sum(len(u.data) for u in call.uploads) > self.upload_limit_of(channel):
            raise DiscordError(413, 40005, "Request entity too large")
        if body.get("enforce_nonce"):
            repeat = self.state.repeat_of(channel.id, self.state.bot_user.id, body.get("nonce"))
            if repeat is not None:
                call.record.note = f"nonce repeat: returned message {repeat.id}"
                return self.state.message_payload(repeat)
        message = new_message(self.state, channel, self.state.bot_user.id, body, call.uploads)
        return self.publish(message)

    def publish(self, message: Message) -> JSON:
        """Record a visible message and tell the bot's shard (MESSAGE_CREATE)."""
        self.state.post(message)
        payload = self.state.message_payload(message)
        self.dispatch_message("MESSAGE_CREATE", message, payload)
        return payload

    def dispatch_message(self, event: str, message: Message, payload: JSON) -> None:
        channel = self.state.channels[message.channel_id]
        guild_id = channel.guild_id
        conn = self.gateway.owner(guild_id)
        if conn is None or message.ephemeral:
            return
        intent = DIRECT_MESSAGES if guild_id is None else GUILD_MESSAGES
        if not conn.intents & intent:
            return
        shown = dict(payload)
        guild = self.state.guild_of(channel)
        if guild is not None and message.author_id in guild.members:
            shown["member"] = payloads.member(guild.members[message.author_id], with_user=False)
        me = self.state.bot_user.id
        if not (conn.intents & MESSAGE_CONTENT or guild_id is None or message.author_id == me
                or me in message.mention_ids or f"<@{me}>" in message.content):
            shown.update(content="", embeds=[], attachments=[], components=[])
        self.gateway.dispatch(event, shown, guild_id)

    def _own_message(self, call: Call) -> tuple[Channel, Message]:
        channel = self._channel(call)
        message = self.state.message(channel.id, call.int_arg("message_id"))
        return channel, message

    async def edit_message(self, call: Call) -> JSON:
        _, message = self._own_message(call)
        if message.author_id != self.state.bot_user.id and set(call.json) - {"flags"}:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        apply_edit(self.state, message, call.json, call.uploads)
        payload = self.state.message_payload(message)
        self.dispatch_message("MESSAGE_UPDATE", message, payload)
        return payload

    async def delete_message(self, call: Call) -> None:
        channel, message = self._own_message(call)
        if message.author_id != self.state.bot_user.id:
            self.state.require(channel, self.state.bot_user.id, 1 << 13)
        self.state.delete(message)
        self.gateway.dispatch("MESSAGE_DELETE", {
            "id": str(message.id), "channel_id": str(channel.id),
            **({"guild_id": str(channel.guild_id)} if channel.guild_id else {})},
            channel.guild_id, intent=GUILD_MESSAGES)

    # ---- threads -----------------------------------------------------------------------------

    async def thread_from_message(self, call: Call) -> JSON:
        channel = self._channel(call, VIEW_CHANNEL | CREATE_PUBLIC_THREADS)
        started = self.state.message(channel.id, call.int_arg("message_id"))
        if started.id in self.state.channels:
            raise DiscordError(400, 160004, "A thread has already been created for this "
                               "message")
        # As on Discord, a thread started from a message has the message's id.
        return self._new_thread(channel, call.json, PUBLIC_THREAD, started.id)

    async def thread(self, call: Call) -> JSON:
        channel = self._channel(call, VIEW_CHANNEL | CREATE_PUBLIC_THREADS)
        return self._new_thread(channel, call.json, int(call.json.get("type") or PUBLIC_THREAD))

    def _new_thread(self, parent: Channel, body: JSON, kind: int,
                    thread_id: int | None = None) -> JSON:
        guild = self.state.guild_of(parent)
        if guild is None or parent.is_thread or kind not in THREAD_TYPES:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        name = str(body.get("name") or "")
        if not 1 <= len(name) <= 100:
            raise DiscordError(400, 50035, "Invalid Form Body: name: Must be between 1 and "
                               "100 in length.")
        thread = self.state.add_channel(guild, name, type=kind, parent_id=parent.id,
                                        owner_id=self.state.bot_user.id, id=thread_id)
        payload = self.state.channel_payload(thread)
        self.gateway.dispatch("THREAD_CREATE", {**payload, "newly_created": True}, guild.id,
                              intent=GUILDS)
        return payload

    async def join_thread(self, call: Call) -> None:
        channel = self._channel(call)
        if not channel.is_thread:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")

