"""The bot at ready: what the process holds then is frozen for the collector, and what an
earlier ready froze is let go first (a session Discord starts anew rebuilds the guilds); from
then on, until it stops, it gives the memory it frees back to the system."""

from __future__ import annotations

import asyncio
import gc
import weakref

from tests.discord_world import World


class Held:
    """An object in a cycle, as a guild's objects are (its members point back at it)."""

    def __init__(self) -> None:
        self.me = self


async def test_what_a_ready_froze_is_collected_after_the_next_ready(world: World) -> None:
    held = Held()
    gone = weakref.ref(held)
    try:
        await world.bot.on_ready()
        assert gc.get_freeze_count() > 0
        del held
        gc.collect()
        assert gone() is not None  # frozen: no collection walks it
        await world.bot.on_ready()  # Discord started a new session: the guilds come again
        assert gone() is None
    finally:
        gc.unfreeze()  # the rest of the suite's objects stay collectable



def running_loops() -> set[str]:
    return {task.get_name() for task in asyncio.all_tasks() if not task.done()}


async def test_a_ready_bot_gives_freed_memory_back_until_it_stops(world: World) -> None:
    name = "discord-ext-tasks: VideoBot._give_back"
    assert name in running_loops()  # the world's bot is ready
    await world.bot.release()
    await asyncio.sleep(0.1)
    assert name not in running_loops()
