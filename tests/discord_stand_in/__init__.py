"""A stand-in for Discord over real HTTP and a real WebSocket on 127.0.0.1, so that tests can
run the bot as a separate process (``python -m bot``), kill it, restart it, and check what
members see. ``server.StandIn`` is Discord; ``process.BotProcess`` is the bot."""

from tests.discord_stand_in.ids import shard_of
from tests.discord_stand_in.interactions import BadInteraction
from tests.discord_stand_in.model import (
    Attachment,
    Channel,
    Guild,
    InteractionHandle,
    Member,
    Message,
    RequestRecord,
    Role,
    User,
)
from tests.discord_stand_in.process import BotProcess, Launcher, bot_environment
from tests.discord_stand_in.server import NoShardConnected, StandIn

__all__ = [
    "Attachment",
    "BadInteraction",
    "BotProcess",
    "Channel",
    "Guild",
    "InteractionHandle",
    "Launcher",
    "Member",
    "Message",
    "NoShardConnected",
    "RequestRecord",
    "Role",
    "StandIn",
    "User",
    "bot_environment",
    "shard_of",
]
