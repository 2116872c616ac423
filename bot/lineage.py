"""Where a job came from: the creative loop's Again, Vary and Extend start a new job from a
finished one, and the new job says so (its card, ``/jobs``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.i18n import N_, _


class Origin(StrEnum):
    AGAIN = "again"  # the same model, options and image (a new seed where there is one)
    VARY = "vary"  # the same image, with the prompt and some options edited in a form
    EXTEND = "extend"  # the video's last frame as the start image, with a new prompt

    def describe(self, parent_id: int) -> str:
        """``again of #12``, ``varies #12``, ``extends #12``."""
        return _(_WORDING[self], job=parent_id)


_WORDING = {Origin.AGAIN: N_("again of #{job}"), Origin.VARY: N_("varies #{job}"),
            Origin.EXTEND: N_("extends #{job}")}


@dataclass(frozen=True)
class Lineage:
    parent_id: int
    origin: Origin


def lineage_text(parent_id: int | None, origin: str | None) -> str:
    """What a job came from, as its card and ``/jobs`` say it; empty for a job of its own."""
    if parent_id is None or origin not in {o.value for o in Origin}:
        return ""
    return Origin(origin).describe(parent_id)
