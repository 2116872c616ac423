"""What a job costs by the catalog's price, before RunComfy says what it really cost."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.catalog import ModelSpec


def estimate_usd(model: ModelSpec, body: Mapping[str, Any]) -> float | None:
    """The catalog price for ``body``: per video, or per second of ``duration_field``.

    ``None`` when the price is unknown (the operator has not set one).
    """
    price = model.price
    usd = price.usd
    for variant in price.variants:
        if all(body.get(key) == value for key, value in variant.when.items()):
            usd = variant.usd
            break
    if usd is None:
        return None
    if price.unit == "video":
        return round(usd, 6)
    seconds = body.get(model.duration_field) if model.duration_field else None
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return None
    return round(usd * seconds, 6)


def price_options(model: ModelSpec, body: Mapping[str, Any]) -> tuple[float | None, bool | None,
                                                                     str | None]:
    """The inputs that drive the price, for the usage ledger: seconds, sound, resolution."""
    seconds = body.get(model.duration_field) if model.duration_field else None
    audio = body.get(model.audio_field) if model.audio_field else None
    resolution = body.get(model.resolution_field) if model.resolution_field else None
    return (
        float(seconds) if isinstance(seconds, int | float) and not isinstance(seconds, bool)
        else None,
        audio if isinstance(audio, bool) else None,
        resolution if isinstance(resolution, str) else None,
    )
