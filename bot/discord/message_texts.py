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
from bot.i18n import Entry


async def listed_texts(settings: Settings, catalog: Catalog) -> list[Entry]:
    """Every command text, from the bot set up as it runs (its cogs loaded) on a throwaway
    store, without Discord or RunComfy."""
    with tempfile.TemporaryDirectory() as directory:
        bot_settings = settings.bot.model_copy(
            update={"database": Path(directory) / "texts.sqlite3"})
        bot = VideoBot(settings.model_copy(update={"bot": bot_settings}), catalog, "",
                       run_jobs=False)
        try:
            await bot.setup_hook()
            kept = frozenset(model.command for model in catalog)
            return command_texts(bot.tree.get_commands(), kept)
        finally:
            await bot.release()  # never connected: nothing of the client to close
