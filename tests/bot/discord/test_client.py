"""The bot at ready: what the process holds then is frozen for the collector, and what an
earlier ready froze is let go first (a session Discord starts anew rebuilds the guilds)."""

from __future__ import annotations

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
