"""INTERACTION_CREATE payloads, as Discord builds them when a member uses the bot."""

from __future__ import annotations

import secrets
from typing import Any

from tests.discord_stand_in import payloads
from tests.discord_stand_in.model import (
    JSON,
    Attachment,
    Channel,
    Command,
    Member,
    Message,
    Role,
    User,
)
from tests.discord_stand_in.state import State

SUB_COMMAND, SUB_COMMAND_GROUP, STRING, INTEGER, BOOLEAN = 1, 2, 3, 4, 5
USER, CHANNEL, ROLE, MENTIONABLE, NUMBER, ATTACHMENT = 6, 7, 8, 9, 10, 11
FileArg = tuple[str, bytes] | tuple[str, bytes, str]
ALL_SHOWN = (1 << 53) - 1


class BadInteraction(ValueError):
    """The test asked for something a Discord client would not let a member send."""


def base(state: State, kind: int, who: User, channel: Channel, data: JSON,
         upload_limit: int) -> JSON:
    """The fields every interaction has: who, where, with what permissions."""
    payload: JSON = {
        "id": str(state.ids.next()), "application_id": str(state.application_id),
        "type": kind, "token": "stand-in." + secrets.token_urlsafe(48), "version": 1,
        "data": data, "channel_id": str(channel.id), "locale": "en-US", "entitlements": [],
        "attachment_size_limit": upload_limit,
    }
    guild = state.guild_of(channel)
    if guild is None:
        payload.update(user=payloads.user(who), context=1, app_permissions="0",
                       authorizing_integration_owners={"1": str(who.id)},
                       channel=state.channel_payload(channel))
        return payload
    member = guild.members.get(who.id)
    if member is None:
        raise BadInteraction(f"{who.name} is not a member of {guild.name}")
    shown = payloads.member(member)
    shown["permissions"] = str(state.permissions(guild, who.id, channel))
    channel_payload = state.channel_payload(channel)
    channel_payload["permissions"] = shown["permissions"]
    payload.update(
        guild_id=str(guild.id), member=shown, guild_locale="en-US", context=0,
        guild={"id": str(guild.id), "locale": "en-US", "features": []},
        app_permissions=str(state.permissions(guild, state.bot_user.id, channel)),
        authorizing_integration_owners={"0": str(guild.id)}, channel=channel_payload)
    return payload


def find_command(state: State, guild_id: int | None, name: str, kind: int = 1) -> Command:
    """The synced command a member would pick: the guild's own first, then the global one."""
    for scope in (guild_id, None):
        for command in state.commands:
            if command.guild_id == scope and command.name == name and command.type == kind:
                return command
    known = sorted(c.name for c in state.commands)
    raise BadInteraction(f"no synced command {name!r} (type {kind}); synced: {known}")


def command_data(state: State, command: Command, path: list[str], given: dict[str, Any],
                 channel: Channel, *, focused: str | None = None) -> JSON:
    """``data`` of a slash command (or its autocomplete): options typed as declared."""
    node = command.data
    wrappers: list[JSON] = []
    for name in path:
        child = _declared(node, name, command.name)
        if child.get("type") not in (SUB_COMMAND, SUB_COMMAND_GROUP):
            raise BadInteraction(f"{name!r} is not a subcommand of {command.name!r}")
        wrappers.append({"name": name, "type": child["type"]})
        node = child
    resolved: JSON = {}
    options = []
    for raw_name, value in given.items():
        spec = _declared(node, raw_name, command.name)
        option: JSON = {"name": spec["name"], "type": spec["type"]}
        if focused == spec["name"]:
            option.update(value=str(value), focused=True)
        else:
            option["value"] = _wire_value(state, spec, value, channel, resolved)
        options.append(option)
    if focused is None:
        given_names = {o["name"] for o in options}
        missing = [o["name"] for o in node.get("options") or []
                   if o.get("required") and o["name"] not in given_names
                   and o.get("type") not in (SUB_COMMAND, SUB_COMMAND_GROUP)]
        if missing:
            raise BadInteraction(f"/{command.name}: required option(s) missing: {missing}")
    for wrapper in reversed(wrappers):
        options = [{**wrapper, "options": options}]
    data: JSON = {"id": str(command.id), "name": command.name, "type": 1, "options": options}
    if resolved:
        data["resolved"] = resolved
    if command.guild_id is not None:
        data["guild_id"] = str(command.guild_id)
    return data


def _declared(node: JSON, name: str, command: str) -> JSON:
    declared: dict[str, JSON] = {o["name"]: o for o in node.get("options") or []}
    spec = declared.get(name) or declared.get(name.replace("_", "-"))
    if spec is None:
        raise BadInteraction(f"/{command} has no option {name!r}; it has {sorted(declared)}")
    return spec


def _wire_value(state: State, spec: JSON, value: Any, channel: Channel,
                resolved: JSON) -> Any:
    kind, name = int(spec["type"]), spec["name"]
    if kind == ATTACHMENT:
        attachment = upload(state, channel.id, value)
        resolved.setdefault("attachments", {})[str(attachment.id)] = \
            payloads.attachment(attachment)
        return str(attachment.id)
    if kind in (USER, MENTIONABLE) and isinstance(value, User | Member):
        user = value if isinstance(value, User) else value.user
        resolved.setdefault("users", {})[str(user.id)] = payloads.user(user)
        guild = state.guild_of(channel)
        if guild is not None and user.id in guild.members:
            resolved.setdefault("members", {})[str(user.id)] = payloads.member(
                guild.members[user.id], with_user=False)
        return str(user.id)
    if kind in (ROLE, MENTIONABLE) and isinstance(value, Role):
        resolved.setdefault("roles", {})[str(value.id)] = payloads.role(value)
        return str(value.id)
    if kind == CHANNEL and isinstance(value, Channel):
        shown = state.channel_payload(value)
        resolved.setdefault("channels", {})[str(value.id)] = {
            k: shown[k] for k in ("id", "type", "name", "parent_id") if k in shown} | {
            "permissions": str(ALL_SHOWN)}
        return str(value.id)
    if kind in (USER, CHANNEL, ROLE, MENTIONABLE):
        raise BadInteraction(f"option {name!r} takes a User/Member, Channel or Role object")
    converted: Any = {STRING: str, INTEGER: int, NUMBER: float, BOOLEAN: bool}[kind](value)
    choices = [c["value"] for c in spec.get("choices") or []]
    if choices and converted not in choices:
        raise BadInteraction(f"option {name!r}: {converted!r} is not one of {choices}")
    low, high = spec.get("min_value"), spec.get("max_value")
    if kind in (INTEGER, NUMBER) and ((low is not None and converted < low)
                                      or (high is not None and converted > high)):
        raise BadInteraction(f"option {name!r}: {converted} is outside [{low}, {high}]")
    if kind == STRING and len(converted) > int(spec.get("max_length", 6000)):
        raise BadInteraction(f"option {name!r}: longer than {spec['max_length']} characters")
    return converted



def upload(state: State, channel_id: int, value: Any) -> Attachment:
    """A file a member attaches to an interaction: ``(filename, bytes[, content_type])``."""
    if not (isinstance(value, tuple) and len(value) in (2, 3) and isinstance(value[1], bytes)):
        raise BadInteraction("an attachment is given as (filename, bytes[, content_type])")
    content_type = value[2] if len(value) == 3 else None
    return state.add_attachment(channel_id, value[0], value[1], content_type=content_type,
                                ephemeral=True)


def message_command_data(state: State, command: Command, target: Message) -> JSON:
    data: JSON = {"id": str(command.id), "name": command.name, "type": 3,
                  "target_id": str(target.id),
                  "resolved": {"messages": {str(target.id): state.message_payload(target)}}}
    if command.guild_id is not None:
        data["guild_id"] = str(command.guild_id)
    return data


def component_data(message: Message, custom_id: str, values: list[str] | None) -> JSON:
    found = [c for c in message.buttons() if c.get("custom_id") == custom_id]
    if not found:
        ids = [c.get("custom_id") for c in message.buttons()]
        raise BadInteraction(f"message {message.id} has no component {custom_id!r}: {ids}")
    if found[0].get("disabled"):
        raise BadInteraction(f"component {custom_id!r} is disabled")
    data: JSON = {"custom_id": custom_id, "component_type": found[0]["type"]}
    if values is not None:
        data["values"] = values
    return data


def modal_data(state: State, modal: JSON, values: dict[str, Any], channel_id: int) -> JSON:
    """A modal's submission, mirroring the modal the bot sent (rows or labels)."""
    resolved: JSON = {}
    used: set[str] = set()

    def fill(component: JSON) -> JSON:
        custom_id = str(component.get("custom_id", ""))
        kind = component.get("type")
        answer: JSON = {"type": kind, "custom_id": custom_id}
        if "id" in component:
            answer["id"] = component["id"]
        value = values.get(custom_id)
        if value is not None:
            used.add(custom_id)
        if kind == 4:  # text input
            answer["value"] = "" if value is None else str(value)
        elif kind == 19:  # file upload
            files = [] if value is None else value if isinstance(value, list) else [value]
            answer["values"] = []
            for item in files:
                attachment = upload(state, channel_id, item)
                resolved.setdefault("attachments", {})[str(attachment.id)] = \
                    payloads.attachment(attachment)
                answer["values"].append(str(attachment.id))
        else:  # selects
            answer["values"] = [] if value is None else (
                [str(v) for v in value] if isinstance(value, list) else [str(value)])
        return answer

    rows: list[JSON] = []
    for top in modal.get("components") or []:
        if top.get("type") == 1:
            rows.append({"type": 1, "components": [fill(c) for c in top.get("components", [])]})
        elif top.get("type") == 18:
            row: JSON = {"type": 18, "component": fill(top["component"])}
            if "id" in top:
                row["id"] = top["id"]
            rows.append(row)
    unknown = set(values) - used
    if unknown:
        raise BadInteraction(f"the modal has no field(s) {sorted(unknown)}")
    data: JSON = {"custom_id": modal.get("custom_id"), "components": rows}
    if resolved:
        data["resolved"] = resolved
    return data
