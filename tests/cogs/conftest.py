"""Discord's side is tested with the bot in SimCord: its fixtures."""

from tests.discord_fixtures import bot_settings, simcord_bot, simcord_cdn, world

__all__ = ["bot_settings", "simcord_bot", "simcord_cdn", "world"]
