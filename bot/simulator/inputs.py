"""What the simulator refuses at submit, as RunComfy does: the catalog's rules (with the
schema's defaults applied first) and, when it fetches inputs, each image checked as the bot
checks an attachment. The rules are the bot's own (``bot.validation``), never a second copy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from bot.catalog import ImageRules, ModelSpec
from bot.errors import UserError
from bot.images import facts_from_url
from bot.validation import check_body, check_image


async def input_problems(model: ModelSpec, body: Mapping[str, Any],
                         session: aiohttp.ClientSession | None) -> list[str]:
    """Sentences naming what is wrong with ``body``; images are fetched with ``session``
    (``None``: image URLs are taken on trust)."""
    problems = check_body(model, body)
    if problems or session is None:
        return problems
    for field in model.image_fields:
        url = body.get(field.name)
        if not isinstance(url, str):
            continue
        rules = field.image or ImageRules()
        try:
            facts = await facts_from_url(session, url, rules)
        except UserError:
            problems.append(f"`{field.name}` could not be downloaded: its URL must be public "
                            "(no login or cookies) and answer.")
            continue
        problems.extend(check_image(field.name, facts, rules))
    return problems
