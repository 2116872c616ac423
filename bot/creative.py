"""The creative loop: what the new job of **Again**, **Vary** or **Extend** is made of, from the
finished job it comes from. (Their buttons are Discord's side: ``bot.discord.buttons`` and
``cogs/creative``; each new job goes through ``JobService.request`` like any slash command.)"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.catalog import FieldSpec, ModelSpec

if TYPE_CHECKING:
    from bot.frames import Frame

# What a member is likely to change in Vary (besides the prompt), in the form's order.
VARY_FIELDS = ("duration", "aspect_ratio", "negative_prompt")
SEED_FIELD = "seed"
_SEED_RANGE = (0, 2**31 - 1)  # when the catalog gives no bounds


def options_of(model: ModelSpec, body: Mapping[str, Any]) -> dict[str, object]:
    """A job's options as a member gives them (keyed by option name), from the body it sent:
    ``build_request`` makes the same body of them again. Images are left out: see
    ``image_urls``."""
    return {f.option_name: body[f.name] for f in model.fields
            if f.type != "image" and f.name in body}


def image_urls(model: ModelSpec, body: Mapping[str, Any]) -> dict[str, str]:
    """The job's image inputs, by option name."""
    return {f.option_name: url for f in model.image_fields
            if isinstance(url := body.get(f.name), str) and url}


def again_options(model: ModelSpec, body: Mapping[str, Any]) -> dict[str, object]:
    """The same options, with a new seed where the model has one."""
    options = options_of(model, body)
    seed = seed_field(model)
    if seed is not None:
        options[seed.option_name] = new_seed(seed, body.get(seed.name))
    return options


def seed_field(model: ModelSpec) -> FieldSpec | None:
    return next((f for f in model.fields if f.name == SEED_FIELD and f.type == "integer"), None)


def new_seed(field: FieldSpec, old: object) -> int:
    """A random seed within the field's bounds, other than ``old`` where there is room."""
    low = int(field.minimum) if field.minimum is not None else _SEED_RANGE[0]
    high = int(field.maximum) if field.maximum is not None else _SEED_RANGE[1]
    while True:
        seed = low + secrets.randbelow(high - low + 1)
        if seed != old or low == high:
            return seed


def prompt_field(model: ModelSpec) -> FieldSpec | None:
    return next((f for f in model.fields if f.name == "prompt" and f.type == "string"), None)


def vary_fields(model: ModelSpec) -> list[FieldSpec]:
    """The options Vary's form offers besides the prompt (a choice of one is no choice)."""
    names = {f.name: f for f in model.fields}
    return [names[n] for n in VARY_FIELDS
            if n in names and not (names[n].enum is not None and len(names[n].enum or ()) < 2)]


def can_extend(model: ModelSpec) -> bool:
    return model.kind == "image-to-video" and model.main_image is not None


def extend_options(model: ModelSpec, body: Mapping[str, Any], prompt: str) -> dict[str, object]:
    """The next shot: the same options with a new prompt, and no images (the last frame will
    be the start image; the end image and the shots of a multi-shot prompt were the last
    video's)."""
    skip = {f.option_name for f in model.fields if f.is_segments}
    options = {k: v for k, v in options_of(model, body).items() if k not in skip}
    field = prompt_field(model)
    if field is not None:
        options[field.option_name] = prompt
    return options


async def ending_frame(video: Path, limit: int) -> Frame:
    """The video's last frame as an image of at most ``limit`` bytes, where Extend starts
    (decoded and encoded in a thread; PyAV is loaded only when a video is extended)."""
    from bot.frames import encode_frame, last_frame

    image = await asyncio.to_thread(last_frame, video)
    return await asyncio.to_thread(encode_frame, image, limit)
