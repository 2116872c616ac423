"""Imported by Python at start-up in a bot process that ``process.py`` starts (this folder is
put on its PYTHONPATH): points discord.py's gateway at the stand-in.

discord.py 2.7's non-sharded ``Client`` connects to ``DiscordWebSocket.DEFAULT_GATEWAY``
(wss://gateway.discord.gg) and never asks ``GET /gateway/bot``, so ``DISCORD_API_BASE`` alone
moves the REST calls but not the gateway. ``DISCORD_STAND_IN_GATEWAY`` moves the gateway too.
"""

from __future__ import annotations

import os

_URL = os.environ.get("DISCORD_STAND_IN_GATEWAY")
if _URL:
    import yarl
    from discord.gateway import DiscordWebSocket

    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(_URL)
