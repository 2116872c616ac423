"""Messages as Discord makes them from a request: validation, files, mentions, edits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.discord_stand_in import payloads
from tests.discord_stand_in.model import JSON, Attachment, Channel, Message
from tests.discord_stand_in.state import DiscordError, State

SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS = 1 << 2, 1 << 12
_EMBED_LIMITS = {"title": 256, "description": 4096}


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart request (``files[n]``)."""

    field: str
    filename: str
    data: bytes
    content_type: str | None


def form_error(where: str, problem: str) -> DiscordError:
    return DiscordError(400, 50035, f"Invalid Form Body: {where}: {problem}")


def check_body(body: JSON, *, has_files: bool, creating: bool) -> None:
    """Discord's limits on a message body (400 Invalid Form Body, 50006 empty message)."""
    content = body.get("content")
    if content is not None and len(str(content)) > 2000:
        raise form_error("content", "Must be 2000 or fewer in length.")
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        raise form_error("embeds", "Must be 10 or fewer in length.")
    total = 0
    for index, embed in enumerate(embeds):
        for key, limit in _EMBED_LIMITS.items():
            if len(str(embed.get(key) or "")) > limit:
                raise form_error(f"embeds.{index}.{key}", f"Must be {limit} or fewer in length.")
            total += len(str(embed.get(key) or ""))
        fields = embed.get("fields") or []
        if len(fields) > 25:
            raise form_error(f"embeds.{index}.fields", "Must be 25 or fewer in length.")
        for f_index, item in enumerate(fields):
            name, value = str(item.get("name") or ""), str(item.get("value") or "")
            if not name or not value:
                raise form_error(f"embeds.{index}.fields.{f_index}", "This field is required")
            if len(name) > 256 or len(value) > 1024:
                raise form_error(f"embeds.{index}.fields.{f_index}", "Too long.")
            total += len(name) + len(value)
        total += len(str((embed.get("footer") or {}).get("text") or ""))
    if total > 6000:
        raise form_error("embeds", "Embed size exceeds maximum size of 6000")
    if creating and not (content or embeds or has_files or body.get("components")
                         or body.get("sticker_ids") or body.get("poll")):
        raise DiscordError(400, 50006, "Cannot send an empty message")


def attachments_from(state: State, channel_id: int, body: JSON, uploads: list[Upload],
                     keep: list[Attachment], *, ephemeral: bool = False) -> list[Attachment]:
    """The attachments a request leaves: ``keep`` ones it lists by id, plus its uploads."""
    by_field = {u.field: u for u in uploads}
    listed: list[JSON] | None = body.get("attachments")
    kept = {a.id: a for a in keep}
    result: list[Attachment] = []
    used: set[str] = set()
    for item in listed if listed is not None else []:
        raw_id = int(item.get("id", -1))
        if raw_id in kept:
            result.append(kept[raw_id])
            continue
        upload = by_field.get(f"files[{raw_id}]")
        if upload is None:
            raise form_error("attachments", f"Unknown attachment id {raw_id}")
        used.add(upload.field)
        result.append(state.add_attachment(
            channel_id, str(item.get("filename") or upload.filename), upload.data,
            content_type=upload.content_type, description=item.get("description"),
            ephemeral=ephemeral))
    if listed is None:
        result = list(keep)
    for upload in uploads:
        if upload.field not in used:
            result.append(state.add_attachment(channel_id, upload.filename, upload.data,
                                               content_type=upload.content_type,
                                               ephemeral=ephemeral))
    return result


def new_message(state: State, channel: Channel, author_id: int, body: JSON,
                uploads: list[Upload], *, webhook_id: int | None = None,
                interaction: JSON | None = None, flags: int = 0,
                message_type: int | None = None) -> Message:
    """A message made from a create request's body (not yet recorded)."""
    check_body(body, has_files=bool(uploads), creating=True)
    reference = _reference(state, channel, body.get("message_reference"))
    reply_author = None
    if reference is not None:
        replied = state.by_id.get(int(reference["message_id"]))
        reply_author = None if replied is None else replied.author_id
    content = str(body.get("content") or "")
    keep_flags = int(body.get("flags") or 0) & (SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | 64)
    ephemeral = bool((flags | keep_flags) & 64)
    message_id = state.ids.next()
    if message_type is None:
        message_type = 19 if reference is not None else 0
    return Message(
        id=message_id, channel_id=channel.id, author_id=author_id, content=content,
        embeds=list(body.get("embeds") or []), components=list(body.get("components") or []),
        attachments=attachments_from(state, channel.id, body, uploads, [],
                                     ephemeral=ephemeral),
        reference=reference, nonce=body.get("nonce"), flags=flags | keep_flags,
        type=message_type,
        mention_ids=state.mentions(content, body.get("allowed_mentions"), reply_author),
        webhook_id=webhook_id, interaction=interaction, timestamp=payloads.now_iso())


def _reference(state: State, channel: Channel, raw: Any) -> JSON | None:
    if not isinstance(raw, dict) or raw.get("message_id") is None:
        return None
    if int(raw.get("type", 0)) != 0:
        raise form_error("message_reference", "Only replies are supported by the stand-in")
    ref_channel = int(raw.get("channel_id") or channel.id)
    found = state.by_id.get(int(raw["message_id"]))
    if found is None or found.deleted or found.channel_id != ref_channel:
        if raw.get("fail_if_not_exists", True):
            raise form_error("message_reference", "Unknown message")
        return None
    return {"message_id": found.id, "channel_id": ref_channel}


def apply_edit(state: State, message: Message, body: JSON, uploads: list[Upload]) -> None:
    """An edit: only the fields the body has change (Discord's PATCH semantics)."""
    check_body(body, has_files=bool(uploads), creating=False)
    if "content" in body:
        message.content = str(body["content"] or "")
    if "embeds" in body:
        message.embeds = list(body["embeds"] or [])
    if "components" in body:
        message.components = list(body["components"] or [])
    if "flags" in body and body["flags"] is not None:
        message.flags = (message.flags & ~SUPPRESS_EMBEDS) | (int(body["flags"])
                                                              & SUPPRESS_EMBEDS)
    if "attachments" in body or uploads:
        message.attachments = attachments_from(state, message.channel_id, body, uploads,
                                               message.attachments,
                                               ephemeral=message.ephemeral)
    if "allowed_mentions" in body or "content" in body:
        replied = None if message.reply_to is None else state.by_id.get(message.reply_to)
        message.mention_ids = state.mentions(message.content, body.get("allowed_mentions"),
                                             None if replied is None else replied.author_id)
    message.flags &= ~(1 << 7)  # no longer "thinking"
    message.edited_timestamp = payloads.now_iso()
    message.edits += 1
