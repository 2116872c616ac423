from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bot.catalog import (
    BUILTIN_DIR,
    Bound,
    Catalog,
    CatalogError,
    ImageRules,
    PriceSpec,
    load_catalog,
)

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
         "image": {"width": {"ge": 64}, "height": {"ge": 64}}},
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
    # "width_pixels>" 360 and "width_pixels<" 2000: both ends refused, as the page says.
    wan = catalog.by_command("wan-2-2").field("img_url").image
    assert wan is not None
    assert wan.width == wan.height == Bound(gt=360, lt=2000)
    assert (wan.file_size_mb, wan.allow_alpha) == (Bound(lt=10), False)
    assert wan.formats == ("jpeg", "png", "bmp", "webp")
    kling16 = catalog.by_command("kling-1-6").field("image_url").image
    assert kling16 is not None
    assert (kling16.width, kling16.height, kling16.file_size_mb) == (
        Bound(gt=300), Bound(gt=300), Bound(lt=10))
    assert (kling16.min_aspect, kling16.max_aspect) == ("2:5", "5:2")
    # No "file_size_mb<" on the end frame: the pages' "images <= 50 MB".
    tail = catalog.by_command("kling-1-6").field("tail_image_url").image
    assert tail is not None
    assert (tail.width, tail.file_size_mb) == (Bound(gt=300), Bound(le=50))
    assert catalog.by_command("wan-2-2").field("prompt").max_length == 799
    assert catalog.by_command("wan-2-2").field("negative_prompt").max_length == 500


# RunComfy's model pages as fetched (the catalog under bot/catalog/models/ is normalised from
# them), kept with the tests so that a fresh clone checks the catalog against them too.
PAGES = Path(__file__).parent / "model_pages"
_RULE = re.compile(r'"validation_rule": "(\w+)_(pixels|mb)([<>])",\s*"validation_value": (\d+)')


def test_every_image_rule_of_the_raw_pages_is_in_the_catalog(catalog: Catalog) -> None:
    """Each ``validations`` entry of each page, read as written, against the catalog."""
    for model in catalog:
        page = (PAGES / f"{model.id.split('/', 1)[1].replace('/', '-').replace('.', '-')}.txt")
        schema = page.read_text(encoding="utf-8")
        for image in model.image_fields:
            start = schema.find(f'"{image.name}": {{')
            block = schema[start:schema.find('"default"', start)] if start >= 0 else ""
            expected: dict[str, dict[str, float]] = {}
            for what, _unit, op, value in _RULE.findall(block):
                key = {"width": "width", "height": "height", "file_size": "file_size_mb"}[what]
                expected.setdefault(key, {})["gt" if op == ">" else "lt"] = float(value)
            rules = image.image or ImageRules()
            for key in ("width", "height", "file_size_mb"):
                found = getattr(rules, key).model_dump(exclude_none=True)
                default = {"le": 50.0} if key == "file_size_mb" else {}
                assert found == expected.get(key, default), (model.command, image.name, key)


@pytest.mark.parametrize(("bound", "inside", "outside"), [
    (Bound(gt=300), [301, 300.5], [300, 299]),
    (Bound(ge=300), [300, 301], [299]),
    (Bound(gt=360, lt=2000), [361, 1999], [360, 2000, 359, 2001]),
    (Bound(le=50), [50, 0], [50.000001, 51]),
])
def test_bounds_keep_their_strictness(bound: Bound, inside: list[float],
                                      outside: list[float]) -> None:
    assert [bound.allows(v) for v in inside] == [True] * len(inside)
    assert [bound.allows(v) for v in outside] == [False] * len(outside)


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
        ({"id": "Acme/Motion"}, r"acme\.json: id: Value error, must be a RunComfy model id"),
        ({"id": "acme"}, r"acme\.json: id: Value error, must be a RunComfy model id"),
        ({"fields": [{"name": "image_url", "type": "image", "image": {"min_aspect": "2:0"}}]},
         r"fields\[0\] \(image_url\)\.image\.min_aspect: Value error, must be a ratio"),
        ({"fields": [{"name": "image_url", "type": "image", "image": {"max_aspect": "5:2\n"}}]},
         r"\.image\.max_aspect: Value error, must be a ratio"),
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
        ({"fields": [{"name": "image_url", "type": "image", "image": {"min_width": 301}}]},
         r"fields\[0\] \(image_url\)\.image: Value error, 'min_width' is no longer read: "
         r"write 'width' as bounds"),
        ({"fields": [{"name": "image_url", "type": "image",
                      "image": {"width": {"gt": 300, "ge": 300}}}]},
         r"image\.width: Value error, give 'gt' \(>\) or 'ge' \(>=\), not both"),
        ({"fields": [{"name": "image_url", "type": "image",
                      "image": {"height": {"gt": 2000, "lt": 2000}}}]},
         r"image\.height: Value error, no value is within these bounds"),
        ({"fields": [{"name": "image_url", "type": "image",
                      "image": {"file_size_mb": {"gt": 0}}}]},
         r"\.image: Value error, 'file_size_mb' needs an upper limit"),
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
