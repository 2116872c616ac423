"""The reference for ``bench.scale``: the bot a user would write without this project. Plain
discord.py with the bot's intents (guilds, guild messages), one slash command like
``/kling-2-1`` (defer first, a row in plain sqlite3, submit to RunComfy with aiohttp) and one
task that polls every pending job's status every 3 s and posts the video's URL when it is done.
With ``MINIMAL_CARD=1`` it does the bot's job with a status card too, as a user would write one:
a public message per job (an embed and a Cancel button) posted after the answer and edited
whenever a poll sees its state or place in line change (``bench.scale --reference-card``).

Configured from the environment as ``python -m bot`` is: ``DISCORD_TOKEN``, ``DISCORD_API_BASE``
(a stand-in: its REST API and the gateway its ``GET /gateway/bot`` names),
``RUNCOMFY_API_TOKEN``, ``RUNCOMFY_BASE_URL``, ``BOT_BOT__SHARD_COUNT``,
``BOT_BOT__SHARD_IDS`` (the process with shard 0 syncs the command); the jobs are in
``minimal.sqlite3`` in the current directory.

    python -m bench.minimal_bot
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.ext import tasks
from discord.gateway import DiscordWebSocket

MODEL = "kling/kling-2-1/pro/image-to-video"
RUNNING = ("in_queue", "in_progress")
CARD = os.environ.get("MINIMAL_CARD") == "1"


class MinimalBot(discord.AutoShardedClient):
    def __init__(self) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = True
        count, ids = os.environ.get("BOT_BOT__SHARD_COUNT"), os.environ.get("BOT_BOT__SHARD_IDS")
        sharding: dict[str, Any] = {} if not count else {"shard_count": int(count)}
        if ids:
            sharding["shard_ids"] = [int(i) for i in ids.split(",")]
        super().__init__(intents=intents, **sharding)
        self.tree = app_commands.CommandTree(self)
        self.tree.add_command(kling)
        self.db = sqlite3.connect("minimal.sqlite3")
        self.db.execute("CREATE TABLE IF NOT EXISTS jobs (id INTEGER PRIMARY KEY, "
                        "channel_id INTEGER, user_id INTEGER, request_id TEXT, "
                        "done INTEGER DEFAULT 0, prompt TEXT, card_id INTEGER, shown TEXT)")
        self.runcomfy = os.environ.get("RUNCOMFY_BASE_URL", "https://model-api.runcomfy.net")
        self.headers = {"Authorization": f"Bearer {os.environ['RUNCOMFY_API_TOKEN']}"}
        self.session: aiohttp.ClientSession | None = None

    async def setup_hook(self) -> None:
        self.session = aiohttp.ClientSession(self.runcomfy, headers=self.headers)
        if os.environ.get("DISCORD_API_BASE"):
            _, url, _ = await self.http.get_bot_gateway()
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        if self.shard_ids is None or 0 in self.shard_ids:
            await self.tree.sync()
        self.poll.start()

    async def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        assert self.session is not None
        async with self.session.request(method, path, **kwargs) as response:
            response.raise_for_status()
            answer: dict[str, Any] = await response.json()
            return answer

    @tasks.loop(seconds=3)
    async def poll(self) -> None:
        pending = self.db.execute(
            "SELECT id, channel_id, user_id, request_id, prompt, card_id, shown FROM jobs "
            "WHERE done = 0 AND request_id IS NOT NULL").fetchall()
        for job_id, channel_id, user_id, request_id, prompt, card_id, shown in pending:
            try:
                status = await self.call("GET", f"/v1/requests/{request_id}/status")
                if status["status"] in RUNNING:
                    if card_id is not None:
                        await self.show(job_id, channel_id, card_id, user_id, prompt, shown,
                                        state_of(status))
                    continue
                result = await self.call("GET", f"/v1/requests/{request_id}/result")
                video = (result.get("output") or {}).get("video")
                text = (f"<@{user_id}> your video is ready (job #{job_id}): {video}" if video
                        else f"<@{user_id}> job #{job_id} failed: {result.get('error')}")
                await self.get_partial_messageable(channel_id).send(text)
            except (aiohttp.ClientError, discord.HTTPException):
                continue  # the next poll tries again
            self.db.execute("UPDATE jobs SET done = 1 WHERE id = ?", (job_id,))
            self.db.commit()
            if card_id is not None:  # posted: the card says so, or stays as it was
                with contextlib.suppress(discord.HTTPException):
                    await self.show(job_id, channel_id, card_id, user_id, prompt, shown,
                                    "Done" if video else "Failed")

    async def show(self, job_id: int, channel_id: int, card_id: int, user_id: int,
                   prompt: str, shown: str | None, state: str) -> None:
        """Edit the job's card if its state changed since it was last shown."""
        if state == shown:
            return
        channel = self.get_partial_messageable(channel_id)
        await channel.get_partial_message(card_id).edit(**card(job_id, user_id, prompt, state))
        self.db.execute("UPDATE jobs SET shown = ? WHERE id = ?", (state, job_id))
        self.db.commit()

    @poll.before_loop
    async def before_poll(self) -> None:
        await self.wait_until_ready()


def state_of(status: dict[str, Any]) -> str:
    position = status.get("queue_position")
    if status["status"] == "in_queue":
        return "Queued" if position is None else f"Queued, #{position + 1} in line"
    return "Running"


def card(job_id: int, user_id: int, prompt: str, state: str) -> dict[str, Any]:
    """The card's message: the job's state, who asked, and a Cancel button while it waits."""
    embed = discord.Embed(title=f"Kling 2.1 Pro · {state}", description=prompt)
    embed.add_field(name="Requested by", value=f"<@{user_id}>")
    embed.set_footer(text=f"Job #{job_id}")
    view = discord.ui.View(timeout=None)
    if state not in ("Done", "Failed"):
        view.add_item(discord.ui.Button(label="Cancel", style=discord.ButtonStyle.danger,
                                        custom_id=f"cancel:{job_id}"))
    return {"embed": embed, "view": view, "allowed_mentions": discord.AllowedMentions.none()}


@app_commands.command(name="kling-2-1", description="Animate an image with Kling 2.1 Pro.")
@app_commands.describe(prompt="What happens in the video.", image="The first frame.")
async def kling(interaction: discord.Interaction[MinimalBot], prompt: str,
                image: discord.Attachment) -> None:
    await interaction.response.defer(thinking=True)
    bot = interaction.client
    job_id = bot.db.execute("INSERT INTO jobs (channel_id, user_id, prompt) VALUES (?, ?, ?)",
                            (interaction.channel_id, interaction.user.id, prompt)).lastrowid
    bot.db.commit()
    try:
        submitted = await bot.call("POST", f"/v1/models/{MODEL}",
                                   json={"prompt": prompt, "image_url": image.url})
    except aiohttp.ClientError as exc:
        await interaction.edit_original_response(content=f"RunComfy refused the job: {exc}")
        return
    bot.db.execute("UPDATE jobs SET request_id = ? WHERE id = ?",
                   (submitted["request_id"], job_id))
    bot.db.commit()
    await interaction.edit_original_response(content=f"Job #{job_id} is queued.")
    if CARD and interaction.channel_id is not None and job_id is not None:
        channel = bot.get_partial_messageable(interaction.channel_id)
        message = await channel.send(**card(job_id, interaction.user.id, prompt, "Queued"))
        bot.db.execute("UPDATE jobs SET card_id = ?, shown = ? WHERE id = ?",
                       (message.id, "Queued", job_id))
        bot.db.commit()


def main() -> None:
    api = os.environ.get("DISCORD_API_BASE")
    if api:
        discord.http.Route.BASE = api.rstrip("/")
    MinimalBot().run(os.environ["DISCORD_TOKEN"])


if __name__ == "__main__":
    main()
