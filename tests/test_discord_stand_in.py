"""The Discord stand-in, and the real bot process against it: a video is posted once, even
after a SIGKILL; Discord's nonce rule; shards get their own guilds' events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import discord as dpy
import pytest

from bot.simulator import SAMPLE_VIDEO
from tests.conftest import TOKEN, RunningSimulator
from tests.discord_stand_in import (
    BotProcess,
    Channel,
    Launcher,
    Member,
    Message,
    StandIn,
    bot_environment,
    shard_of,
)
from tests.discord_stand_in.model import DEFERRED_MESSAGE, Command
from tests.images import image_bytes

PNG = image_bytes("png", 640, 480)
PATIENCE = 45.0  # seconds of real time: generous, for a loaded 2-core machine
Start = Callable[..., Awaitable[RunningSimulator]]
Launch = Callable[[], Awaitable[BotProcess]]


@dataclass
class Studio:
    discord: StandIn
    channel: Channel
    alice: Member

    def cards(self) -> list[Message]:
        return [m for m in self.discord.bot_messages(self.channel) if m.embeds]

    def videos(self) -> list[Message]:
        return [m for m in self.discord.bot_messages(self.channel)
                if "your video is ready" in m.content]

    def card_says(self, words: str) -> bool:
        cards = self.cards()
        return bool(cards) and words in cards[0].text()


@pytest.fixture
def studio(stand_in: StandIn) -> Studio:
    guild = stand_in.guild("Studio")
    return Studio(stand_in, stand_in.channel(guild, "videos"), stand_in.member(guild, "alice"))


@pytest.fixture
async def launcher(stand_in: StandIn, tmp_path: Path) -> AsyncIterator[Launcher]:
    async with Launcher(tmp_path) as launch:  # every bot is killed before the stand-in stops
        yield launch
    for bot in launch.bots:  # shown by pytest when the test failed
        for run in range(1, bot.launches + 1):
            print(f"---- {bot.workdir.name}, run {run} ----\n{bot.output(run)[-6000:]}")


def bot_starter(stand_in: StandIn, launcher: Launcher, tmp_path: Path,
                runcomfy: RunningSimulator) -> Launch:
    env = bot_environment(stand_in, database=tmp_path / "bot.sqlite3", runcomfy_url=runcomfy.url,
                          runcomfy_token=TOKEN, jobs__poll_interval=0.5,
                          jobs__card_edit_interval=0, jobs__lease_seconds=3,
                          limits__max_concurrent=0)

    async def launch() -> BotProcess:
        bot = await launcher(stand_in, env)
        await bot.wait_ready(timeout=60)
        return bot

    return launch


async def ask_for_a_video(studio: Studio) -> None:
    run = await studio.discord.slash(studio.alice, studio.channel, "kling-2-1",
                                     prompt="a red fox turns its head", image=("fox.png", PNG))
    await studio.discord.wait_for(lambda: run.acknowledged, PATIENCE, what="the acknowledgement")
    assert run.ack_seconds is not None and run.ack_seconds < 3


async def test_a_member_gets_the_video_in_the_channel(
        studio: Studio, launcher: Launcher, tmp_path: Path, start_simulator: Start) -> None:
    discord = studio.discord
    runcomfy = await start_simulator(run_seconds=0.5)
    await bot_starter(discord, launcher, tmp_path, runcomfy)()
    assert discord.command_syncs == 1
    assert "kling-2-1" in [c["name"] for c in discord.commands()]

    run = await discord.slash(studio.alice, studio.channel, "kling-2-1",
                              prompt="a red fox turns its head", image=("fox.png", PNG))
    await discord.wait_for(lambda: run.acknowledged, PATIENCE, what="the acknowledgement")
    assert run.ack_seconds is not None and run.ack_seconds < 3
    assert (run.callback_type, run.ephemeral) == (DEFERRED_MESSAGE, True)
    await discord.wait_for(lambda: (run.content or "").startswith("Job #1 is queued"),
                           PATIENCE, what="the ephemeral answer")
    await discord.wait_for(lambda: studio.cards(), PATIENCE, what="the status card")
    card = studio.cards()[0]
    assert card.embeds[0]["footer"]["text"].startswith("Job #1")
    assert card.embeds[0]["description"] == "a red fox turns its head"

    await discord.wait_for(studio.videos, PATIENCE, what="the video")
    [video] = studio.videos()
    assert [a.data for a in video.attachments] == [SAMPLE_VIDEO]
    assert video.attachments[0].filename == "job-1.mp4"
    assert video.reply_to == card.id
    assert video.mention_ids == [studio.alice.id]  # it pings the requester and no one else
    await discord.wait_for(lambda: studio.card_says("Done"), PATIENCE, what="the card: done")
    assert discord.unhandled == discord.failures == []
    assert len(runcomfy.sim.submits) == 1


async def test_a_crash_between_the_upload_and_its_record_posts_the_video_once(
        studio: Studio, launcher: Launcher, tmp_path: Path, start_simulator: Start) -> None:
    discord = studio.discord
    runcomfy = await start_simulator(run_seconds=0.5)
    launch = bot_starter(discord, launcher, tmp_path, runcomfy)
    # The video's upload lands in the channel, but the bot never hears back: it is killed.
    upload = discord.hold("POST", r"^/channels/\d+/messages$", when=lambda r: bool(r.files))
    bot = await launch()
    await ask_for_a_video(studio)
    await upload.wait_arrived(30)
    assert len(studio.videos()) == 1
    await bot.kill()
    upload.release()

    restarted = await launch()
    assert restarted is not bot
    await discord.wait_for(lambda: studio.card_says("Done"), PATIENCE, what="the card: done")
    [video] = studio.videos()
    assert [a.data for a in video.attachments] == [SAMPLE_VIDEO]
    # It looked in the channel's history, or posted again and Discord dropped the repeat.
    looked = discord.requests("GET", r"^/channels/\d+/messages$")
    repeats = [r for r in discord.requests("POST") if r.note.startswith("nonce repeat")]
    assert looked or repeats
    assert discord.command_syncs == 1  # the restart found the commands unchanged
    assert len(runcomfy.sim.submits) == 1
    assert discord.unhandled == discord.failures == []


async def test_a_sigkill_while_the_job_runs_then_a_restart_posts_the_video_once(
        studio: Studio, launcher: Launcher, tmp_path: Path, start_simulator: Start) -> None:
    discord = studio.discord
    runcomfy = await start_simulator(run_seconds=4)
    launch = bot_starter(discord, launcher, tmp_path, runcomfy)
    bot = await launch()
    await ask_for_a_video(studio)
    await discord.wait_for(studio.cards, PATIENCE, what="the status card")
    killed = [c.id for c in bot.connections()]
    assert bot.running and killed
    await bot.kill()
    assert studio.videos() == []

    await bot.start()
    [connection] = await bot.wait_ready()
    assert connection.id not in killed
    await discord.wait_for(lambda: studio.card_says("Done"), PATIENCE, what="the card: done")
    [video] = studio.videos()
    assert [a.data for a in video.attachments] == [SAMPLE_VIDEO]
    assert len(studio.cards()) == 1
    assert len(runcomfy.sim.submits) == 1  # nothing was sent to RunComfy again


async def test_buttons_forms_and_autocomplete_reach_the_bot_and_its_answers_are_kept(
        studio: Studio, launcher: Launcher, tmp_path: Path, start_simulator: Start) -> None:
    discord = studio.discord
    runcomfy = await start_simulator(run_seconds=60, workers=1)  # job 1 runs, job 2 waits
    await bot_starter(discord, launcher, tmp_path, runcomfy)()
    for _ in range(2):
        await ask_for_a_video(studio)
    await discord.wait_for(lambda: len(studio.cards()) == 2, PATIENCE, what="two cards")
    typing = await discord.autocomplete(studio.alice, studio.channel, "cancel", "job", job="")
    await discord.wait_for(lambda: typing.choices is not None, PATIENCE, what="choices")
    assert typing.choices is not None and len(typing.choices) == 2

    second = studio.cards()[1]
    assert [b["label"] for b in second.buttons()] == ["Cancel"]
    press = await discord.click(studio.alice, second, second.buttons()[0]["custom_id"])
    await discord.wait_for(lambda: press.acknowledged, PATIENCE, what="the button's answer")
    assert press.ephemeral and press.shard_id == 0
    await discord.wait_for(lambda: "Cancelled" in discord.message(second.id).text(),
                           PATIENCE, what="the cancelled card")

    picture = await discord.say(studio.alice, studio.channel, "look", files=[("c.png", PNG)])
    menu = await discord.message_command(studio.alice, picture, "Animate image")
    await discord.wait_for(lambda: menu.modal is not None, PATIENCE, what="the form")
    form = await discord.submit_modal(studio.alice, menu, prompt="a cat yawns")
    await discord.wait_for(lambda: (form.content or "").startswith("Job #3 is queued"),
                           PATIENCE, what="the form's answer")
    assert discord.unhandled == discord.failures == []


async def test_a_repeat_with_the_same_nonce_returns_the_same_message(
        studio: Studio) -> None:
    discord = studio.discord
    url = f"{discord.api_base}/channels/{studio.channel.id}/messages"
    headers = {"Authorization": "Bot any-token"}
    body = {"content": "once", "nonce": "rcvb-video-7", "enforce_nonce": True}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(url, json=body) as first:
            made = await first.json()
        form = aiohttp.FormData(quote_fields=False)
        form.add_field("payload_json", json.dumps({**body, "attachments": [
            {"id": 0, "filename": "v.mp4"}]}), content_type="application/json")
        form.add_field("files[0]", b"video", filename="v.mp4", content_type="video/mp4")
        async with http.post(url, data=form) as again:
            repeated = await again.json()
        async with http.post(url, json={**body, "enforce_nonce": False}) as unenforced:
            other = await unenforced.json()
        async with http.get(url, params={"limit": "10"}) as history:
            listed = await history.json()
    assert first.headers["Content-Type"] == "application/json"  # exactly: discord.py needs it
    assert repeated["id"] == made["id"]
    assert repeated["attachments"] == []
    assert discord.requests("POST")[1].note == f"nonce repeat: returned message {made['id']}"
    assert other["id"] != made["id"]
    assert [m["id"] for m in listed] == [other["id"], made["id"]]  # newest first
    assert [m["nonce"] for m in listed] == ["rcvb-video-7"] * 2
    assert [m.content for m in discord.messages(studio.channel)] == ["once", "once"]


async def test_each_shard_gets_only_its_own_guilds_and_their_interactions() -> None:
    async with StandIn(shards=2) as discord:
        guilds = [discord.guild(f"g{n}", shard=(n % 2, 2)) for n in range(4)]
        assert [shard_of(g.id, 2) for g in guilds] == [0, 1, 0, 1]
        async with aiohttp.ClientSession() as http:
            sockets = [await http.ws_connect(discord.gateway_url + "?v=10&encoding=json")
                       for _ in range(2)]
            seen: list[list[int]] = []
            for shard_id, ws in enumerate(sockets):
                assert (await ws.receive_json())["op"] == 10
                await ws.send_json({"op": 2, "d": {"token": "t", "intents": 1,
                                                   "shard": [shard_id, 2], "properties": {}}})
                ready = await ws.receive_json()
                assert (ready["t"], ready["d"]["shard"]) == ("READY", [shard_id, 2])
                created = [await ws.receive_json() for _ in ready["d"]["guilds"]]
                assert {e["t"] for e in created} == {"GUILD_CREATE"}
                seen.append([int(e["d"]["id"]) for e in created])
                await ws.send_json({"op": 1, "d": 2})
                assert (await ws.receive_json())["op"] == 11
            assert seen == [[guilds[0].id, guilds[2].id], [guilds[1].id, guilds[3].id]]

            discord.state.commands.append(_ping_command(discord))
            for guild in guilds:
                channel = discord.channel(guild, "general")
                run = await discord.slash(discord.member(guild, "m"), channel, "ping")
                ws = sockets[shard_of(guild.id, 2)]
                frames = [await ws.receive_json() for _ in range(2)]
                assert [f["t"] for f in frames] == ["CHANNEL_CREATE", "INTERACTION_CREATE"]
                assert frames[1]["d"]["guild_id"] == str(guild.id)
                assert run.shard_id == shard_of(guild.id, 2)

            await sockets[0].send_json({"op": 6, "d": {"session_id": "x", "seq": 1,
                                                       "token": "t"}})
            assert await sockets[0].receive_json() == {"op": 9, "d": False, "s": None,
                                                       "t": None}
            for ws in sockets:
                await ws.close()


def _ping_command(discord: StandIn) -> Command:
    return Command(discord.state.ids.next(), None, {"name": "ping", "description": "Ping",
                                                    "type": 1, "options": []})


async def test_discord_py_connects_its_shards_as_gateway_bot_says() -> None:
    async with StandIn(shards=2) as discord:
        guilds = [discord.guild(f"g{n}", shard=(n % 2, 2)) for n in range(2)]
        old_base = dpy.http.Route.BASE
        dpy.http.Route.BASE = discord.api_base
        intents = dpy.Intents.none()
        intents.guilds = True
        client = dpy.AutoShardedClient(intents=intents)
        ready = asyncio.Event()
        client.event(_set_on_ready(ready))
        running: asyncio.Task[None] | None = None
        try:
            await client.login("stand-in-token")
            running = asyncio.create_task(client.connect())
            await asyncio.wait_for(ready.wait(), 40)
            assert client.shard_count == 2
            assert sorted(g.id for g in client.guilds) == sorted(g.id for g in guilds)
            assert [client.get_guild(g.id).shard_id for g in guilds] == [0, 1]  # type: ignore[union-attr]
            assert sorted(c.shard_id for c in discord.live_connections()) == [0, 1]
        finally:
            await client.close()
            dpy.http.Route.BASE = old_base
        if running is not None:
            await asyncio.wait_for(running, 10)


def _set_on_ready(ready: asyncio.Event) -> Callable[[], Coroutine[Any, Any, None]]:
    async def on_ready() -> None:
        ready.set()
    return on_ready


async def test_an_identify_before_discords_pace_allows_gets_an_invalid_session() -> None:
    async with StandIn(shards=2, identify_every=0.3) as discord:
        discord.guild("g0", shard=(0, 2))
        async with aiohttp.ClientSession() as http:
            gateway = await http.get(discord.api_base + "/gateway/bot",
                                     headers={"Authorization": "Bot t"})
            assert (await gateway.json())["session_start_limit"]["max_concurrency"] == 1
            sockets = [await http.ws_connect(discord.gateway_url + "?v=10&encoding=json")
                       for _ in range(2)]
            for ws in sockets:
                assert (await ws.receive_json())["op"] == 10

            async def identify(ws: aiohttp.ClientWebSocketResponse, shard: int) -> Any:
                await ws.send_json({"op": 2, "d": {"token": "t", "intents": 1,
                                                   "shard": [shard, 2], "properties": {}}})
                return await ws.receive_json()

            assert (await identify(sockets[0], 0))["t"] == "READY"
            # another connection (another process) within the 0.3 s: refused, as Discord does
            assert await identify(sockets[1], 1) == {"op": 9, "d": False, "s": None, "t": None}
            assert discord.gateway.refused_identifies == 1
            await asyncio.sleep(0.35)
            assert (await identify(sockets[1], 1))["t"] == "READY"
            assert [c.refused_identifies for c in discord.gateway.connections] == [0, 1]
            for ws in sockets:
                await ws.close()
