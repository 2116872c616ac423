"""``python -m bot messages``: the texts to translate, read from the bot's own command tree
(what is synced to Discord), written to ``bot/locales/bot.pot``, and every language's catalog
brought in line with it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bot.catalog import Catalog
from bot.config import Settings
from bot.discord.client import VideoBot
from bot.discord.translator import command_texts
from bot.i18n import LANGUAGES, Entry
from bot.message_files import source_messages

PACKAGES = (Path(__file__).parents[1], Path(__file__).parents[2] / "cogs")  # bot/, cogs/


async def listed_texts(settings: Settings, catalog: Catalog) -> list[Entry]:
    """Every text to translate: the commands', from the bot set up as it runs (its cogs
    loaded) on a throwaway store, without Discord or RunComfy; then what the code says."""
    with tempfile.TemporaryDirectory() as directory:
        bot_settings = settings.bot.model_copy(
            update={"database": Path(directory) / "texts.sqlite3"})
        bot = VideoBot(settings.model_copy(update={"bot": bot_settings}), catalog, "",
                       run_jobs=False)
        try:
            await bot.setup_hook()
            # Models keep their names, and languages theirs (/settings language).
            kept = frozenset(model.command for model in catalog) | set(LANGUAGES.values())
            return command_texts(bot.tree.get_commands(), kept) + source_messages(*PACKAGES)
        finally:
            await bot.release()  # never connected: nothing of the client to close
