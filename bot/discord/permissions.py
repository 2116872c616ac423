"""What the bot needs in a channel to deliver there, and who counts as a moderator of a job (Manage
Messages in the job's own channel): checked by the bot itself, before anything is paid for."""

from __future__ import annotations

from collections.abc import Callable

import discord

from bot.errors import UserError
from bot.i18n import N_, _

NEEDED = discord.Permissions(view_channel=True, send_messages=True, embed_links=True,
                             attach_files=True, read_message_history=True)
# What the invite asks for: the above, and threads for the answers to mentions.
INVITE = NEEDED | discord.Permissions(create_public_threads=True, send_messages_in_threads=True)
NEEDED_NAMES = tuple(name for name, wanted in NEEDED if wanted)  # read once: Discord has ~50


# Discord's names for them in its settings (discord.py iterates View Channel as read_messages),
# which members read in their own language; the English as the bot has always written them.
NAMES = {"read_messages": N_("View Channel"), "view_channel": N_("View Channel"),
         "send_messages": N_("Send Messages"), "embed_links": N_("Embed Links"),
         "attach_files": N_("Attach Files"), "read_message_history": N_("Read Message History"),
         "send_messages_in_threads": N_("Send Messages In Threads")}


def permission_name(permission: str) -> str:
    """A permission as Discord's settings name it, in the language in use."""
    name = NAMES.get(permission)
    return _(name) if name is not None else permission.replace("_", " ").title()


def check_can_post(have: discord.Permissions, in_thread: bool) -> None:
    """Refuse (before anything is paid for) when the bot could not deliver here. In a thread
    Discord asks for Send Messages in Threads instead of Send Messages."""
    lacking = [name for name in NEEDED_NAMES if not getattr(have, name)
               and not (in_thread and name == "send_messages")]
    if in_thread and not have.send_messages_in_threads:
        lacking.append("send_messages_in_threads")
    if lacking:
        names = ", ".join(permission_name(name) for name in lacking)
        raise UserError(_("I can't post videos in this channel: I need {permissions}. "
                          "Ask a moderator to give me these permissions here.",
                          permissions=names))


def check_can_post_here(interaction: discord.Interaction) -> None:
    """``check_can_post`` in the interaction's channel, with the bot's permissions there."""
    check_can_post(interaction.app_permissions, isinstance(interaction.channel, discord.Thread))


def permissions_in(interaction: discord.Interaction, channel_id: int) -> discord.Permissions:
    """The member's permissions in a channel of the interaction's guild: as Discord computed
    them for the interaction's own channel, else from the guild's cached roles and overwrites
    (none for a channel the bot does not know)."""
    if channel_id == interaction.channel_id:
        return interaction.permissions
    guild, member = interaction.guild, interaction.user
    channel = guild.get_channel_or_thread(channel_id) if guild is not None else None
    if channel is None or not isinstance(member, discord.Member):
        return discord.Permissions.none()
    return channel.permissions_for(member)


def moderates(interaction: discord.Interaction) -> Callable[[int], bool]:
    """Whether the member has Manage Messages in a channel (a job's own, by id)."""
    return lambda channel_id: permissions_in(interaction, channel_id).manage_messages


def sees(interaction: discord.Interaction) -> Callable[[int], bool]:
    """Whether the member can see a channel (a job's own, by id)."""
    return lambda channel_id: permissions_in(interaction, channel_id).view_channel
