from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.catalog import BUILTIN_DIR, Catalog, CatalogError, PriceSpec, load_catalog

SIXTH_MODEL: dict[str, Any] = {
    "id": "acme/motion-1/image-to-video",
    "name": "Acme Motion 1",
    "command": "acme-motion",
    "kind": "image-to-video",
    "description": "A model added by the operator with a catalog file only.",
    "main_image": "image_url",
    "fields": [
        {"name": "prompt", "type": "string", "required": True},
        {"name": "image_url", "option": "image", "type": "image", "required": True,
         "image": {"min_width": 64, "min_height": 64}},
        {"name": "duration", "type": "integer", "enum": [4, 8], "default": 4},
    ],
    "price": {"unit": "video", "usd": 0.3},
}


def write(directory: Path, name: str, data: object) -> Path:
    path = directory / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_the_five_seed_models_with_every_input(catalog: Catalog) -> None:
    fields = {m.command: [f.name for f in m.fields] for m in catalog}
    assert fields == {
        "kling-1-6": ["prompt", "image_url", "tail_image_url", "duration", "negative_prompt",
                      "cfg_scale"],
        "kling-2-1": ["prompt", "image_url", "tail_image_url", "duration", "aspect_ratio",
                      "negative_prompt", "cfg_scale"],
        "kling-3-0": ["prompt", "multi_prompt", "start_image_url", "duration", "generate_audio",
                      "elements", "shot_type", "negative_prompt", "cfg_scale"],
        "kling-3-0-4k": ["prompt", "negative_prompt", "duration", "aspect_ratio", "cfg_scale",
                         "sound", "multi_prompt", "shot_type"],
        "wan-2-2": ["prompt", "negative_prompt", "img_url", "template", "resolution",
                    "duration", "prompt_extend", "seed"],
    }


def test_ids_kinds_and_image_roles(catalog: Catalog) -> None:
    summary = {m.id: (m.kind, m.main_image, m.end_image, m.output_key) for m in catalog}
    assert summary == {
        "kling/kling-1-6/pro/image-to-video":
            ("image-to-video", "image_url", "tail_image_url", "video"),
        "kling/kling-2-1/pro/image-to-video":
            ("image-to-video", "image_url", "tail_image_url", "video"),
        "kling/kling-3.0/standard/image-to-video":
            ("image-to-video", "start_image_url", None, "video"),
        "kling/kling-3.0/4k/text-to-video": ("text-to-video", None, None, "video"),
        "wan-ai/wan-2-2/image-to-video": ("image-to-video", "img_url", None, "video"),
    }


def test_validations_become_typed_rules(catalog: Catalog) -> None:
    wan = catalog.by_command("wan-2-2").field("img_url").image
    assert wan is not None
    assert (wan.min_width, wan.max_width, wan.min_height, wan.max_height) == (360, 2000, 360, 2000)
    assert (wan.max_mb, wan.allow_alpha) == (10, False)
    assert wan.formats == ("jpeg", "png", "bmp", "webp")
    kling16 = catalog.by_command("kling-1-6").field("image_url").image
    assert kling16 is not None
    assert (kling16.min_width, kling16.min_aspect, kling16.max_aspect) == (301, "2:5", "5:2")
    assert catalog.by_command("wan-2-2").field("prompt").max_length == 799
    assert catalog.by_command("wan-2-2").field("negative_prompt").max_length == 500


def test_raw_schema_quirks_are_normalised(catalog: Catalog) -> None:
    # "type": "float" is a number; Kling 3.0 4K's multi_prompt items get their properties.
    assert catalog.by_command("kling-2-1").field("cfg_scale").type == "number"
    segments = catalog.by_command("kling-3-0-4k").field("multi_prompt")
    assert segments.items is not None
    assert segments.items.properties is not None
    assert [p.name for p in segments.items.properties] == ["prompt", "duration"]
    assert segments.is_segments
    assert segments.max_items == 20
    assert [r.kind for r in catalog.by_command("kling-3-0-4k").rules] == ["segments_sum"]


def test_prices(catalog: Catalog) -> None:
    kling3 = catalog.by_command("kling-3-0").price
    assert (kling3.unit, kling3.usd, kling3.variants[0].usd) == ("second", 0.084, 0.126)
    assert catalog.by_command("kling-3-0-4k").price.usd == 0.42
    assert catalog.by_command("wan-2-2").price.usd is None


def test_a_sixth_model_is_a_catalog_file(tmp_path: Path) -> None:
    write(tmp_path, "acme.json", SIXTH_MODEL)
    catalog = load_catalog(tmp_path)
    assert len(catalog) == 6
    model = catalog.by_command("acme-motion")
    assert model.id == "acme/motion-1/image-to-video"
    assert model.field("image_url").option_name == "image"


def test_operator_prices_override_the_catalog(catalog: Catalog) -> None:
    priced = catalog.with_prices({"wan-2-2": PriceSpec(unit="second", usd=0.1)})
    assert priced.by_command("wan-2-2").price.usd == 0.1
    assert catalog.by_command("wan-2-2").price.usd is None
    with pytest.raises(CatalogError, match="unknown model: nope"):
        catalog.with_prices({"nope": PriceSpec(unit="video", usd=1)})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"command": "Bad Name"}, r"acme\.json: command: Value error, must be 1-32"),
        ({"kind": "video-to-video"}, r"acme\.json: kind: Input should be"),
        ({"main_image": "prompt"}, r"acme\.json: .*'prompt' is not an image field"),
        ({"price": {"unit": "minute"}}, r"acme\.json: price\.unit: Input should be"),
        ({"fields": [{"name": "prompt", "type": "text"}]},
         r"acme\.json: fields\[0\] \(prompt\)\.type: Input should be"),
        ({"fields": [*SIXTH_MODEL["fields"][:2],
                     {"name": "duration", "type": "integer", "enum": [4, 8], "default": 5}]},
         r"acme\.json: fields\[2\] \(duration\): Value error, default 5 is not one of"),
        ({"fields": [{"name": "segments", "type": "array"}]},
         r"acme\.json: fields\[0\] \(segments\): .*'items' is required for type array"),
        ({"fields": [*SIXTH_MODEL["fields"],
                     {"name": "cfg_scale", "type": "number", "minimum": 2, "maximum": 1}]},
         r"fields\[3\] \(cfg_scale\): Value error, minimum is greater than maximum"),
        ({"surprise": 1}, r"acme\.json: surprise: Extra inputs are not permitted"),
    ],
)
def test_a_bad_catalog_file_is_named_with_its_field(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    write(tmp_path, "acme.json", {**SIXTH_MODEL, **change})
    with pytest.raises(CatalogError, match=message):
        load_catalog(tmp_path)


def test_unreadable_and_duplicate_files(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"broken\.json: not valid JSON"):
        load_catalog(tmp_path)
    (tmp_path / "broken.json").unlink()
    write(tmp_path, "copy.json", json.loads((BUILTIN_DIR / "wan-2-2.json").read_text()))
    with pytest.raises(CatalogError, match="two catalog files define 'wan-2-2'"):
        load_catalog(tmp_path)
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog(tmp_path / "missing")
