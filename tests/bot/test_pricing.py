from __future__ import annotations

from bot.catalog import Catalog, PriceSpec
from bot.pricing import estimate_usd


def test_per_second_with_and_without_audio(catalog: Catalog) -> None:
    kling3 = catalog.by_command("kling-3-0")
    assert estimate_usd(kling3, {"duration": 10, "generate_audio": False}) == 0.84
    assert estimate_usd(kling3, {"duration": 10, "generate_audio": True}) == 1.26
    assert estimate_usd(catalog.by_command("kling-3-0-4k"), {"duration": 5}) == 2.1


def test_unknown_price_until_the_operator_sets_one(catalog: Catalog) -> None:
    assert estimate_usd(catalog.by_command("wan-2-2"), {"duration": 5}) is None
    priced = catalog.with_prices({"wan-ai/wan-2-2/image-to-video":
                                  PriceSpec(unit="video", usd=0.2)})
    assert estimate_usd(priced.by_command("wan-2-2"), {"duration": 5}) == 0.2
