"""The real bot process and the Discord stand-in, whose uploads are refused over the guild's
limit as Discord's are: a server without boosts gets the large video fitted to 10 MiB, a
server boosted to 100 MiB gets the original's very bytes. The bot killed outright leaves no
fitting worker behind."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from pathlib import Path

import av

from bot.simulator.clips import make_clip
from tests.conftest import TOKEN, RunningSimulator
from tests.discord_stand_in import Launcher, StandIn, bot_environment
from tests.discord_stand_in.model import Message
from tests.images import image_bytes
from tests.processes import running, tree

PNG = image_bytes("png", 640, 480)
GONE_WITHIN = 10.0  # seconds for the bot's children to end once it was killed
MIB = 1024 * 1024
PATIENCE = 90.0
Start = Callable[..., Awaitable[RunningSimulator]]


async def test_each_server_gets_the_best_file_its_limit_takes(
        stand_in: StandIn, launcher: Launcher, start_simulator: Start, tmp_path: Path) -> None:
    clip = tmp_path / "large.mp4"
    make_clip(clip, seconds=5, width=1920, height=1080, audio=True, target_bytes=25 * 1000**2)
    original = clip.read_bytes()
    runcomfy = await start_simulator(run_seconds=0.2)
    runcomfy.sim.video = original
    plain, boosted = stand_in.guild("Plain"), stand_in.guild("Boosted")
    boosted.premium_tier = 3  # 100 MiB
    places = {g.name: (stand_in.channel(g, "videos"), stand_in.member(g, "alice"))
              for g in (plain, boosted)}
    bot = await launcher(stand_in, bot_environment(
        stand_in, database=tmp_path / "bot.sqlite3", runcomfy_url=runcomfy.url,
        runcomfy_token=TOKEN, jobs__poll_interval=0.3, jobs__card_edit_interval=0))
    await bot.wait_ready(timeout=60)
    for channel, member in places.values():
        await stand_in.slash(member, channel, "kling-2-1", prompt="a fox",
                             image=("fox.png", PNG))

    def video(name: str) -> Message | None:
        return next((m for m in stand_in.bot_messages(places[name][0])
                     if "your video is ready" in m.content), None)

    await stand_in.wait_for(lambda: video("Plain") and video("Boosted"), PATIENCE,
                            what="both videos")
    boosted_video, plain_video = video("Boosted"), video("Plain")
    assert boosted_video is not None and plain_video is not None
    assert [a.data for a in boosted_video.attachments] == [original]
    [fitted] = plain_video.attachments
    assert 0.9 * 10 * MIB <= len(fitted.data) <= 10 * MIB
    with av.open(io.BytesIO(fitted.data), mode="r") as container:
        assert container.streams.audio and container.streams.video
        duration = float(container.duration or 0) / av.time_base
        assert sum(1 for _ in container.decode(container.streams.video[0])) > 0
    assert abs(duration - 5.0) < 0.1
    assert "Fitted to this server's 10.0 MB upload limit" in plain_video.content
    # Meanwhile the plain server's card said so; the boosted one's never did.
    noted = [r for r in stand_in.requests("PATCH", r"^/channels/\d+/messages/\d+$")
             if "Fitting the video to this server's upload limit" in str(r.json)]
    assert [r.path.split("/")[2] for r in noted] == [str(places["Plain"][0].id)]
    assert stand_in.unhandled == stand_in.failures == []
    # Killed outright, the bot shuts no pool down: its fitting worker ends by itself.
    assert bot.pid is not None
    workers = tree(bot.pid)[1:]
    assert workers
    await bot.kill()
    await stand_in.wait_for(lambda: not any(map(running, workers)), GONE_WITHIN,
                            what="the bot's fitting worker ended")
