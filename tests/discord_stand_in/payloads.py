"""Discord's JSON shapes for the stand-in's state (the fields discord.py 2.7 reads)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from tests.discord_stand_in.model import (
    DM,
    JSON,
    Attachment,
    Channel,
    Guild,
    Member,
    Message,
    Role,
    User,
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def user(u: User) -> JSON:
    return {
        "id": str(u.id), "username": u.name, "discriminator": "0", "global_name": u.name,
        "avatar": None, "bot": u.bot, "system": False, "public_flags": 0, "flags": 0,
        "verified": True, "mfa_enabled": False, "locale": "en-US",
    }


def role(r: Role) -> JSON:
    return {
        "id": str(r.id), "name": r.name, "permissions": str(r.permissions),
        "position": r.position, "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False, "managed": r.managed, "mentionable": False, "flags": 0, "icon": None,
        "unicode_emoji": None,
    }


def member(m: Member, *, with_user: bool = True) -> JSON:
    payload: JSON = {
        "roles": [str(r) for r in m.role_ids], "nick": m.nick, "joined_at": m.joined_at,
        "premium_since": None, "deaf": False, "mute": False, "pending": False, "flags": 0,
        "communication_disabled_until": None, "avatar": None,
    }
    if with_user:
        payload["user"] = user(m.user)
    return payload


def channel(c: Channel, users: Callable[[int], User]) -> JSON:
    if c.type == DM:
        return {"id": str(c.id), "type": DM, "last_message_id": None, "flags": 0,
                "recipients": [user(users(uid)) for uid in c.recipient_ids]}
    payload: JSON = {
        "id": str(c.id), "type": c.type, "name": c.name, "guild_id": str(c.guild_id),
        "parent_id": None if c.parent_id is None else str(c.parent_id),
        "last_message_id": None, "rate_limit_per_user": 0, "flags": 0, "nsfw": False,
    }
    if c.is_thread:
        payload.update({
            "owner_id": None if c.owner_id is None else str(c.owner_id), "message_count": 0,
            "member_count": 1, "total_message_sent": 0, "applied_tags": [],
            "thread_metadata": {"archived": False, "auto_archive_duration": 1440,
                                "archive_timestamp": now_iso(), "locked": False,
                                "create_timestamp": now_iso(), "invitable": True},
        })
        return payload
    payload.update({
        "position": c.position, "topic": c.topic,
        "permission_overwrites": [
            {"id": str(o.target_id), "type": o.kind, "allow": str(o.allow), "deny": str(o.deny)}
            for o in c.overwrites],
    })
    return payload


def guild_create(g: Guild, channels: list[Channel], threads: list[Channel],
                 users: Callable[[int], User]) -> JSON:
    return {
        "id": str(g.id), "name": g.name, "owner_id": str(g.owner_id), "icon": None,
        "splash": None, "discovery_splash": None, "banner": None, "description": None,
        "afk_channel_id": None, "afk_timeout": 300, "verification_level": 0,
        "default_message_notifications": 0, "explicit_content_filter": 0, "mfa_level": 0,
        "premium_tier": g.premium_tier, "premium_subscription_count": 0,
        "preferred_locale": "en-US", "system_channel_id": None, "system_channel_flags": 0,
        "rules_channel_id": None, "public_updates_channel_id": None, "vanity_url_code": None,
        "application_id": None, "max_members": 500000, "max_presences": None, "features": [],
        "emojis": [], "stickers": [],
        "roles": [role(r) for r in sorted(g.roles.values(), key=lambda r: r.id)],
        "member_count": len(g.members), "large": False, "unavailable": False,
        "joined_at": now_iso(), "members": [member(m) for m in g.members.values()],
        "channels": [channel(c, users) for c in channels],
        "threads": [channel(t, users) for t in threads], "presences": [], "voice_states": [],
        "stage_instances": [], "guild_scheduled_events": [], "soundboard_sounds": [],
        "premium_progress_bar_enabled": False, "nsfw_level": 0,
    }


def attachment(a: Attachment) -> JSON:
    payload: JSON = {
        "id": str(a.id), "filename": a.filename, "size": a.size, "url": a.url,
        "proxy_url": a.url.replace("/attachments/", "/media/attachments/", 1),
        "content_type": a.content_type, "description": a.description,
    }
    if a.width is not None and a.height is not None:
        payload.update(width=a.width, height=a.height)
    if a.ephemeral:
        payload["ephemeral"] = True
    return payload


def message(m: Message, guild_id: int | None, users: Callable[[int], User],
            referenced: Message | None = None) -> JSON:
    payload: JSON = {
        "id": str(m.id), "channel_id": str(m.channel_id), "author": user(users(m.author_id)),
        "content": m.content, "timestamp": m.timestamp, "edited_timestamp": m.edited_timestamp,
        "tts": False, "mention_everyone": False,
        "mentions": [user(users(uid)) for uid in m.mention_ids], "mention_roles": [],
        "attachments": [attachment(a) for a in m.attachments], "embeds": list(m.embeds),
        "components": list(m.components), "pinned": False, "type": m.type, "flags": m.flags,
        "nonce": m.nonce,
    }
    if guild_id is not None:
        payload["guild_id"] = str(guild_id)
    if m.reference is not None:
        payload["message_reference"] = {
            "type": 0, "message_id": str(m.reference.get("message_id")),
            "channel_id": str(m.reference.get("channel_id") or m.channel_id),
            **({"guild_id": str(guild_id)} if guild_id is not None else {}),
        }
        payload["referenced_message"] = (
            None if referenced is None or referenced.deleted
            else message(referenced, guild_id, users))
    if m.webhook_id is not None:
        payload["webhook_id"] = str(m.webhook_id)
        payload["application_id"] = str(m.webhook_id)
    if m.interaction is not None:
        payload["interaction_metadata"] = dict(m.interaction)
    return payload
