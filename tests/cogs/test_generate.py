"""From a slash command with an image to the video in the channel, through real discord.py."""

from __future__ import annotations

from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 1024, 768)


async def test_kling_2_1_from_command_to_video(world: World) -> None:
    result = await world.alice.slash(world.channel, "kling-2-1", prompt="a zebra turns its head",
                                     image=("zebra.png", PNG))
    assert result.ephemeral
    assert result.response.content == (
        "Job #1 is queued. Its card in this channel shows progress, and the video will be "
        "posted there.")
    card = world.card(1)
    assert card.embeds[0].title.startswith("Kling 2.1 Pro")
    await world.run_until(lambda: bool(world.videos()))
    [video] = world.videos()
    assert video.reference is not None and video.reference.message_id == card.id
    assert await video.attachments[0].read() == world.sim.video
    assert world.card(1).embeds[0].title == "Kling 2.1 Pro · Done"
