"""What the creative loop's new jobs are made of: a finished job's options, read back from the
body it sent, make the same body again (through the one validation)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.catalog import Catalog, ModelSpec
from bot.creative import (
    again_options,
    can_extend,
    extend_options,
    image_urls,
    new_seed,
    options_of,
    seed_field,
    vary_fields,
)
from bot.images import ImageFacts
from bot.lineage import Origin, lineage_text
from bot.validation import build_request


def images(model: ModelSpec) -> dict[str, ImageFacts]:
    """The model's required images, as read from their headers (an opaque PNG)."""
    return {f.option_name: replace(ImageFacts.from_metadata(
        url=f"https://cdn.example/{f.name}.png", filename=f"{f.name}.png", size_bytes=50_000,
        content_type="image/png", width=800, height=600), has_alpha=False)
        for f in model.image_fields if f.required}


def body_of(model: ModelSpec, **options: object) -> dict[str, object]:
    return build_request(model, {"prompt": "a zebra", **options}, images(model))


def test_options_make_the_same_body_again_for_every_model(catalog: Catalog) -> None:
    for model in catalog:
        body = body_of(model)
        again = build_request(model, options_of(model, body), images(model))
        assert again == body, model.command


def test_multi_shot_prompts_and_typed_values_survive(catalog: Catalog) -> None:
    model = catalog.by_command("kling-3-0")
    body = body_of(model, multi_prompt="5: a cat walks | 5: it sits", duration=10,
                   generate_audio=False, cfg_scale=0.7)
    assert build_request(model, options_of(model, body), images(model)) == body


def test_again_changes_the_seed_only(catalog: Catalog) -> None:
    wan = catalog.by_command("wan-2-2")
    body = body_of(wan, seed=42)
    options = again_options(wan, body)
    again = build_request(wan, options, images(wan))
    assert again["seed"] != 42
    assert {**again, "seed": 42} == body
    kling = catalog.by_command("kling-2-1")
    assert seed_field(kling) is None
    body = body_of(kling)
    assert build_request(kling, again_options(kling, body), images(kling)) == body


def test_a_new_seed_stays_within_the_fields_bounds(catalog: Catalog) -> None:
    field = seed_field(catalog.by_command("wan-2-2"))
    assert field is not None
    bounded = field.model_copy(update={"minimum": 3, "maximum": 4})
    assert {new_seed(bounded, 3) for _ in range(20)} == {4}
    one = field.model_copy(update={"minimum": 7, "maximum": 7})
    assert new_seed(one, 7) == 7


@pytest.mark.parametrize(("command", "offered"), [
    ("kling-2-1", ["duration", "aspect_ratio", "negative_prompt"]),
    ("kling-3-0", ["duration", "negative_prompt"]),
    ("wan-2-2", ["negative_prompt"]),  # its duration has one choice: no choice
])
def test_vary_offers_what_the_model_has(catalog: Catalog, command: str,
                                        offered: list[str]) -> None:
    assert [f.name for f in vary_fields(catalog.by_command(command))] == offered


def test_extend_keeps_the_options_but_not_the_images_or_shots(catalog: Catalog) -> None:
    model = catalog.by_command("kling-3-0")
    body = body_of(model, multi_prompt="5: a cat walks | 5: it sits", duration=10)
    options = extend_options(model, body, "it jumps")
    assert options["prompt"] == "it jumps"
    assert "multi_prompt" not in options
    assert not set(image_urls(model, body)) & set(options)
    assert options["duration"] == 10
    assert can_extend(model)
    assert not can_extend(catalog.by_command("kling-3-0-4k"))


def test_lineage_wording() -> None:
    assert [Origin(o).describe(12) for o in ("again", "vary", "extend")] == [
        "again of #12", "varies #12", "extends #12"]
    assert lineage_text(None, None) == ""
    assert lineage_text(3, "extend") == "extends #3"
