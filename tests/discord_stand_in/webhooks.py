"""Interaction callbacks, their webhook (original response, followups) and app commands."""

from __future__ import annotations

import time
from typing import Any

from tests.discord_stand_in import payloads
from tests.discord_stand_in.messages import apply_edit, new_message
from tests.discord_stand_in.model import (
    APPLICATION_COMMAND,
    AUTOCOMPLETE_RESULT,
    COMPONENT,
    DEFERRED_MESSAGE,
    DEFERRED_UPDATE,
    EPHEMERAL,
    JSON,
    LOADING,
    MESSAGE_WITH_SOURCE,
    MODAL,
    UPDATE_MESSAGE,
    Command,
    InteractionHandle,
    Message,
)
from tests.discord_stand_in.rest import Rest
from tests.discord_stand_in.routing import Call, Router
from tests.discord_stand_in.state import DiscordError, State

PONG = 1


class Webhooks:
    def __init__(self, state: State, rest: Rest, router: Router) -> None:
        self.state = state
        self.rest = rest
        self.deadline: float | None = None  # seconds to acknowledge; None: not enforced
        hook = "/webhooks/{application_id}/{token}"
        for method, template, handler in (
            ("POST", "/interactions/{interaction_id}/{token}/callback", self.callback),
            ("POST", hook, self.followup),
            ("GET", hook + "/messages/@original", self.get_original),
            ("PATCH", hook + "/messages/@original", self.edit_original),
            ("DELETE", hook + "/messages/@original", self.delete_original),
            ("GET", hook + "/messages/{message_id}", self.get_followup),
            ("PATCH", hook + "/messages/{message_id}", self.edit_followup),
            ("DELETE", hook + "/messages/{message_id}", self.delete_followup),
        ):
            router.add(method, template, handler)
        for scope in ("/applications/{application_id}",
                      "/applications/{application_id}/guilds/{guild_id}"):
            router.add("GET", scope + "/commands", self.list_commands)
            router.add("PUT", scope + "/commands", self.overwrite_commands)
            router.add("POST", scope + "/commands", self.upsert_command)
            router.add("GET", scope + "/commands/{command_id}", self.get_command)
            router.add("PATCH", scope + "/commands/{command_id}", self.edit_command)
            router.add("DELETE", scope + "/commands/{command_id}", self.delete_command)
        router.add("GET", "/applications/{application_id}/guilds/{guild_id}/commands/"
                   "permissions", self.command_permissions)

    # ---- the callback ------------------------------------------------------------------------

    async def callback(self, call: Call) -> JSON:
        handle = self.state.interactions.get(call.args["token"])
        if handle is None or handle.id != call.int_arg("interaction_id"):
            raise DiscordError(404, 10062, "Unknown interaction")
        now = time.monotonic()
        if self.deadline is not None and handle.acknowledged_at is None \
                and now - handle.dispatched_at > self.deadline:
            handle.errors.append("callback after the deadline")
            raise DiscordError(404, 10062, "Unknown interaction")
        if handle.acknowledged:
            handle.errors.append("callback after the interaction was acknowledged")
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        kind = int(call.json.get("type", 0))
        data: JSON = call.json.get("data") or {}
        ephemeral = bool(int(data.get("flags") or 0) & EPHEMERAL)
        resource: JSON | None = None
        if kind == MESSAGE_WITH_SOURCE:
            message = self._respond(handle, data, call, ephemeral=ephemeral)
            resource = self.state.message_payload(message)
        elif kind == DEFERRED_MESSAGE:
            self._respond(handle, {}, call, ephemeral=ephemeral, loading=True)
        elif kind in (DEFERRED_UPDATE, UPDATE_MESSAGE):
            source = self._source(handle)
            if kind == UPDATE_MESSAGE:
                apply_edit(self.state, source, data, call.uploads)
                resource = self.state.message_payload(source)
                self.rest.dispatch_message("MESSAGE_UPDATE", source, resource)
            handle.message_id, handle.original = source.id, source
        elif kind == MODAL:
            if handle.type not in (APPLICATION_COMMAND, COMPONENT):
                raise DiscordError(400, 50035, "Invalid Form Body: a modal answers a command "
                                   "or a component only")
            handle.modal = data
        elif kind == AUTOCOMPLETE_RESULT:
            handle.choices = list(data.get("choices") or [])
        elif kind != PONG:
            raise DiscordError(400, 50035, f"Invalid Form Body: unknown callback type {kind}")
        handle.callback_type, handle.acknowledged_at = kind, now
        handle.ephemeral = ephemeral
        handle.callbacks.append(call.json)
        answer: JSON = {"interaction": {
            "id": str(handle.id), "type": handle.type, "activity_instance_id": None,
            "response_message_id": None if handle.message_id is None else str(handle.message_id),
            "response_message_loading": handle.loading,
            "response_message_ephemeral": handle.ephemeral}}
        if resource is not None:
            answer["resource"] = {"type": kind, "message": resource}
        return answer

    def _source(self, handle: InteractionHandle) -> Message:
        if handle.source_message_id is None:
            raise DiscordError(400, 50035, "Invalid Form Body: no message to update")
        return self.state.message(handle.channel_id, handle.source_message_id)

    def _respond(self, handle: InteractionHandle, body: JSON, call: Call, *, ephemeral: bool,
                 loading: bool = False) -> Message:
        message = self._message(handle, body, call, ephemeral=ephemeral,
                                flags=LOADING if loading else 0)
        handle.message_id, handle.original, handle.loading = message.id, message, loading
        return message

    def _message(self, handle: InteractionHandle, body: JSON, call: Call, *, ephemeral: bool,
                 flags: int = 0) -> Message:
        channel = self.state.channel(handle.channel_id)
        metadata = {"id": str(handle.id), "type": handle.type,
                    "user": payloads.user(self.state.user(handle.user_id)),
                    "authorizing_integration_owners": {}}
        kind = (23 if handle.payload["data"].get("type") == 3 else 20) \
            if handle.type == APPLICATION_COMMAND else 0
        if flags & LOADING:
            message = Message(id=self.state.ids.next(), channel_id=channel.id,
                              author_id=self.state.bot_user.id, flags=flags, type=kind,
                              timestamp=payloads.now_iso())
        else:
            message = new_message(self.state, channel, self.state.bot_user.id, body,
                                  call.uploads, flags=flags, message_type=kind)
        message.webhook_id, message.interaction = self.state.application_id, metadata
        if ephemeral:
            message.flags |= EPHEMERAL
            for attachment in message.attachments:
                attachment.ephemeral = True
        if message.ephemeral:
            self.state.post(message, visible=False)
        else:
            self.rest.publish(message)
        return message

    # ---- the interaction's webhook -------------------------------------------------------------

    def _handle(self, call: Call) -> InteractionHandle:
        handle = self.state.interactions.get(call.args["token"])
        if handle is None or call.int_arg("application_id") != self.state.application_id:
            raise DiscordError(404, 10015, "Unknown Webhook")
        return handle

    async def followup(self, call: Call) -> JSON | None:
        handle = self._handle(call)
        if not handle.acknowledged:
            raise DiscordError(404, 10015, "Unknown Webhook")
        if handle.loading and handle.original is not None:
            # The first followup after a "thinking" defer completes the original response.
            body = {k: v for k, v in call.json.items() if k not in ("flags", "username",
                                                                   "avatar_url")}
            apply_edit(self.state, handle.original, body, call.uploads)
            handle.loading = False
            message = handle.original
        else:
            ephemeral = bool(int(call.json.get("flags") or 0) & EPHEMERAL)
            message = self._message(handle, call.json, call, ephemeral=ephemeral)
            handle.followups.append(message)
        return self.state.message_payload(message) if call.flag("wait") else None

    def _original(self, call: Call) -> tuple[InteractionHandle, Message]:
        handle = self._handle(call)
        if handle.message_id is None:
            raise DiscordError(404, 10008, "Unknown Message")
        return handle, self.state.message(handle.channel_id, handle.message_id)

    async def get_original(self, call: Call) -> JSON:
        return self.state.message_payload(self._original(call)[1])

    async def edit_original(self, call: Call) -> JSON:
        handle, message = self._original(call)
        apply_edit(self.state, message, call.json, call.uploads)
        handle.loading = False
        payload = self.state.message_payload(message)
        self.rest.dispatch_message("MESSAGE_UPDATE", message, payload)
        return payload

    async def delete_original(self, call: Call) -> None:
        self.state.delete(self._original(call)[1])

    def _followup(self, call: Call) -> Message:
        handle = self._handle(call)
        wanted = call.int_arg("message_id")
        if wanted not in [m.id for m in handle.followups] and wanted != handle.message_id:
            raise DiscordError(404, 10008, "Unknown Message")
        return self.state.message(handle.channel_id, wanted)

    async def get_followup(self, call: Call) -> JSON:
        return self.state.message_payload(self._followup(call))

    async def edit_followup(self, call: Call) -> JSON:
        message = self._followup(call)
        apply_edit(self.state, message, call.json, call.uploads)
        return self.state.message_payload(message)

    async def delete_followup(self, call: Call) -> None:
        self.state.delete(self._followup(call))

    # ---- application commands ----------------------------------------------------------------

    def _scope(self, call: Call) -> int | None:
        if call.int_arg("application_id") != self.state.application_id:
            raise DiscordError(403, 50001, "Missing Access")
        if "guild_id" not in call.args:
            return None
        return self.state.guild(call.int_arg("guild_id")).id

    def _payload(self, command: Command) -> JSON:
        data = dict(command.data)
        data.update(id=str(command.id), application_id=str(self.state.application_id),
                    version=str(command.id), type=command.type)
        data.setdefault("options", [])
        data.setdefault("default_member_permissions", None)
        data.setdefault("nsfw", False)
        data.setdefault("description", "")
        if command.guild_id is not None:
            data["guild_id"] = str(command.guild_id)
        return data

    def _find(self, call: Call) -> Command:
        scope, wanted = self._scope(call), call.int_arg("command_id")
        for command in self.state.commands:
            if command.id == wanted and command.guild_id == scope:
                return command
        raise DiscordError(404, 10063, "Unknown application command")

    async def list_commands(self, call: Call) -> list[JSON]:
        scope = self._scope(call)
        return [self._payload(c) for c in self.state.commands if c.guild_id == scope]

    async def overwrite_commands(self, call: Call) -> list[JSON]:
        scope = self._scope(call)
        wanted: list[JSON] = call.body if isinstance(call.body, list) else []
        self.state.command_puts.append((scope, wanted))
        before = {(c.name, c.type): c for c in self.state.commands if c.guild_id == scope}
        made = []
        for data in wanted:
            old = before.get((str(data["name"]), int(data.get("type", 1))))
            made.append(Command(old.id if old else self.state.ids.next(), scope, dict(data)))
        self.state.commands = [c for c in self.state.commands if c.guild_id != scope] + made
        return [self._payload(c) for c in made]

    async def upsert_command(self, call: Call) -> JSON:
        scope = self._scope(call)
        data = call.json
        for command in self.state.commands:
            if command.guild_id == scope and (command.name, command.type) == (
                    data.get("name"), int(data.get("type", 1))):
                command.data = dict(data)
                return self._payload(command)
        made = Command(self.state.ids.next(), scope, dict(data))
        self.state.commands.append(made)
        return self._payload(made)

    async def get_command(self, call: Call) -> JSON:
        return self._payload(self._find(call))

    async def edit_command(self, call: Call) -> JSON:
        command = self._find(call)
        command.data.update(call.json)
        return self._payload(command)

    async def delete_command(self, call: Call) -> None:
        self.state.commands.remove(self._find(call))

    async def command_permissions(self, call: Call) -> list[Any]:
        self._scope(call)
        return []
