"""What a job costs before RunComfy says what it really cost: the price the bot knows for the
model (``PriceBook``) applied to the request."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from bot.catalog import Catalog, ModelSpec, PriceSpec
from bot.runcomfy import RunComfyClient, RunComfyError

log = logging.getLogger(__name__)


def estimate_usd(model: ModelSpec, body: Mapping[str, Any],
                 price: PriceSpec | None = None) -> float | None:
    """``price`` (the catalog's by default) for ``body``: per video, or per second of
    ``duration_field``. ``None`` when the price is unknown.
    """
    price = price or model.price
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


class PriceBook:
    """The price the bot budgets each model at: the operator's (``prices`` in the config),
    else RunComfy's published one (``GET /v1/models/{id}``, read at start-up and daily), else
    the catalog's. Unknown (``usd`` null) until one of them says."""

    def __init__(self, catalog: Catalog, overrides: Mapping[str, PriceSpec]) -> None:
        self.catalog = catalog
        self.overrides = dict(overrides)
        self.published: dict[str, PriceSpec] = {}

    def price(self, model: ModelSpec) -> PriceSpec:
        configured = self.overrides.get(model.command) or self.overrides.get(model.id)
        return configured or self.published.get(model.id) or model.price

    def estimate(self, model: ModelSpec, body: Mapping[str, Any]) -> float | None:
        return estimate_usd(model, body, self.price(model))

    async def refresh(self, client: RunComfyClient,
                      models: Iterable[ModelSpec] | None = None) -> dict[str, RunComfyError]:
        """Read each model's published price (every model's by default); a model RunComfy
        does not answer for keeps the price it had, and an unreachable RunComfy is one warning
        line. What failed, by command."""
        failed: dict[str, RunComfyError] = {}
        for model in self.catalog if models is None else models:
            try:
                info = await client.model_info(model.id)
            except RunComfyError as exc:
                failed[model.command] = exc
                continue
            if info.base_price_usd is None:
                continue
            unit = "second" if info.price_unit == "second" else "video"
            kept = model.price.variants if model.price.unit == unit else ()
            self.published[model.id] = PriceSpec(unit=unit, usd=info.base_price_usd,
                                                 variants=kept, source=info.pricing_note or "")
        if failed:
            log.warning("could not read RunComfy's prices of %s (%s); budgets use the prices "
                        "known so far", ", ".join(failed), next(iter(failed.values())))
        return failed
