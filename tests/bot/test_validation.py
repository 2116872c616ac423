"""Inputs to request bodies: the exact JSON for every model, and 40+ bad inputs refused free."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.catalog import Catalog, ImageRules, ModelSpec
from bot.images import ImageFacts, inspect_image
from bot.runcomfy import RunComfyClient
from bot.validation import InvalidOptions, build_request
from tests.conftest import RunningSimulator
from tests.images import image_bytes

MB = 1024 * 1024


@dataclass(frozen=True)
class Img:
    """An attachment as Discord describes it, with real bytes behind it."""

    fmt: str = "png"
    width: int = 1024
    height: int = 768
    alpha: bool = False
    transparent_index: bool = False
    filename: str | None = None
    content_type: str | None = None
    declared_size: int | None = None  # what the attachment's metadata says
    data: bytes | None = None

    async def facts(self, rules: ImageRules) -> ImageFacts:
        data = self.data if self.data is not None else image_bytes(
            self.fmt, self.width, self.height, alpha=self.alpha,
            transparent_index=self.transparent_index)
        ext = {"jpeg": "jpg"}.get(self.fmt, self.fmt)
        meta = ImageFacts.from_metadata(
            url=f"https://cdn.example/{self.filename or 'photo.' + ext}",
            filename=self.filename or f"photo.{ext}",
            size_bytes=self.declared_size or len(data),
            content_type=self.content_type or f"image/{self.fmt}",
        )

        async def read() -> bytes:
            return data

        return await inspect_image(meta, rules, read)


@dataclass(frozen=True)
class Case:
    command: str
    options: dict[str, Any]
    images: dict[str, Img] = field(default_factory=dict)


async def attach(model: ModelSpec, images: dict[str, Img]) -> dict[str, ImageFacts]:
    rules = {f.option_name: f.image or ImageRules() for f in model.image_fields}
    return {name: await img.facts(rules.get(name, ImageRules())) for name, img in images.items()}


async def validate_then_submit(client: RunComfyClient, model: ModelSpec, case: Case) -> None:
    """What every entry point does: validate first, and only then spend money."""
    body = build_request(model, case.options, await attach(model, case.images))
    await client.submit(model.id, body)


PHOTO = {"image": Img()}
LONG = "x" * 800

BAD_INPUTS: list[tuple[Case, str]] = [
    # Kling 2.1 Pro
    (Case("kling-2-1", {}, PHOTO), "`prompt` is required."),
    (Case("kling-2-1", {"prompt": "   "}, PHOTO), "`prompt` is required and cannot be empty."),
    (Case("kling-2-1", {"prompt": "a zebra"}), "`image` is required: attach an image."),
    (Case("kling-2-1", {"prompt": "a", "duration": 7}, PHOTO),
     "`duration` must be one of 5 or 10; yours is 7."),
    (Case("kling-2-1", {"prompt": "a", "duration": "ten"}, PHOTO),
     '`duration` must be a whole number; yours is "ten".'),
    (Case("kling-2-1", {"prompt": "a", "aspect_ratio": "4:3"}, PHOTO),
     '`aspect_ratio` must be one of 16:9, 1:1 or 9:16; yours is "4:3".'),
    (Case("kling-2-1", {"prompt": "a", "cfg_scale": 1.5}, PHOTO),
     "`cfg_scale` must be between 0 and 1; yours is 1.5."),
    (Case("kling-2-1", {"prompt": "a", "cfg_scale": "high"}, PHOTO),
     '`cfg_scale` must be a number; yours is "high".'),
    (Case("kling-2-1", {"prompt": "a", "seed": 3}, PHOTO),
     "`seed` is not an option of `kling-2-1`; it takes `aspect_ratio`, `cfg_scale`, "
     "`duration`, `end_image`, `image`, `negative_prompt`, `prompt`."),
    (Case("kling-2-1", {"prompt": "a"}, {"image": Img("gif", filename="anim.gif")}),
     "`image` must be a JPEG, PNG, WebP or BMP image; `anim.gif` is GIF."),
    (Case("kling-2-1", {"prompt": "a"}, {"image": Img(
        filename="notes.txt", content_type="text/plain", data=b"hello")}),
     "`image` must be a JPEG, PNG, WebP or BMP image; `notes.txt` is text/plain."),
    (Case("kling-2-1", {"prompt": "a"}, {"image": Img(declared_size=60 * MB)}),
     "`image` must be at most 50 MB; `photo.png` is 60.0 MB."),
    (Case("kling-2-1", {"prompt": "a"}, {"image": Img(declared_size=50 * MB + 1)}),
     "`image` must be at most 50 MB; `photo.png` is 52,428,801 bytes."),  # not "50.0 MB"
    (Case("kling-2-1", {"prompt": "a"}, {"image": Img(
        filename="broken.png", data=b"\x89PNG\r\n\x1a\n garbage")}),
     "`image` could not be read as an image; `broken.png` seems damaged or is not an image. "
     "Send a JPEG, PNG, WebP or BMP file."),
    (Case("kling-2-1", {"prompt": "a"}, {**PHOTO, "end_image": Img(
        filename="doc.pdf", content_type="application/pdf", data=b"%PDF-1.4")}),
     "`end_image` must be a JPEG, PNG, WebP or BMP image; `doc.pdf` is application/pdf."),
    (Case("kling-2-1", {"prompt": "a", "image": "https://example.com/cat.png"}),
     "`image` must be an attached image, not text."),
    # Kling 1.6 Pro
    (Case("kling-1-6", {}), "`image` is required: attach an image."),
    (Case("kling-1-6", {}, {"image": Img(width=300, height=600)}),
     "`image` must be more than 300 px on each side; yours is 300x600."),
    (Case("kling-1-6", {}, {"image": Img(width=400, height=1200)}),
     "`image` must have an aspect ratio between 2:5 and 5:2 (width:height); yours is 400x1200."),
    (Case("kling-1-6", {}, {"image": Img(width=1300, height=400)}),
     "`image` must have an aspect ratio between 2:5 and 5:2 (width:height); yours is 1300x400."),
    (Case("kling-1-6", {}, {"image": Img("jpeg", declared_size=11 * MB)}),
     "`image` must be less than 10 MB; `photo.jpg` is 11.0 MB."),
    (Case("kling-1-6", {}, {**PHOTO, "end_image": Img(width=200, height=200)}),
     "`end_image` must be more than 300 px on each side; yours is 200x200."),
    (Case("kling-1-6", {"cfg_scale": -0.1}, PHOTO),
     "`cfg_scale` must be between 0 and 1; yours is -0.1."),
    (Case("kling-1-6", {"duration": 15}, PHOTO), "`duration` must be one of 5 or 10; yours is 15."),
    # Kling 3.0 Standard
    (Case("kling-3-0", {"prompt": "a", "duration": 2}, PHOTO),
     "`duration` must be between 3 and 15; yours is 2."),
    (Case("kling-3-0", {"prompt": "a", "duration": 16}, PHOTO),
     "`duration` must be between 3 and 15; yours is 16."),
    (Case("kling-3-0", {"prompt": "a", "duration": 10, "multi_prompt": "5: a cat | 4: a dog"},
          PHOTO),
     "`multi_prompt` segment durations must add up to `duration` (10 s); yours add up to 9 s."),
    (Case("kling-3-0", {"prompt": "a", "multi_prompt": "a cat walks"}, PHOTO),
     '`multi_prompt` segment 1 must look like `5: what happens`; yours is "a cat walks". '
     "Separate segments with `|`."),
    (Case("kling-3-0", {"prompt": "a", "multi_prompt": "2: a cat | 8: a dog"}, PHOTO),
     "`multi_prompt[1].duration` must be between 3 and 15; yours is 2."),
    (Case("kling-3-0", {"prompt": "a", "multi_prompt": '[{"prompt": "x",'}, PHOTO),
     "`multi_prompt` is not valid JSON: Expecting property name enclosed in double quotes "
     "at character 17."),
    (Case("kling-3-0", {"prompt": "a", "multi_prompt": " | ".join(["3: x"] * 21)}, PHOTO),
     "`multi_prompt` can have at most 20 items; yours has 21."),
    (Case("kling-3-0", {"prompt": "a", "multi_prompt": '[{"duration": 10}]'}, PHOTO),
     "`multi_prompt[1]` needs `prompt`."),
    (Case("kling-3-0", {"prompt": "a", "multi_prompt": '[{"prompt": "x"}]'}, PHOTO),
     "`multi_prompt` segment durations must add up to `duration` (10 s); yours add up to 5 s."),
    (Case("kling-3-0", {"prompt": "a", "multi_prompt": '[{"prompt": "x", "duration": 10, '
                                                       '"camera": "pan"}]'}, PHOTO),
     "`multi_prompt[1]` has an unknown key `camera`; it takes `prompt`, `duration`."),
    (Case("kling-3-0", {"prompt": "a", "elements": json.dumps([{}] * 4)}, PHOTO),
     "`elements` can have at most 3 items; yours has 4."),
    (Case("kling-3-0", {"prompt": "a", "elements": '[{"frontal_image_url": "cat.png"}]'}, PHOTO),
     "`elements[1].frontal_image_url` must be a public http(s) URL of the image."),
    (Case("kling-3-0", {"prompt": "a", "elements": "my cat"}, PHOTO),
     "`elements` must be a JSON list, e.g. [{...}]."),
    (Case("kling-3-0", {"prompt": "a", "generate_audio": "maybe"}, PHOTO),
     '`generate_audio` must be true or false; yours is "maybe".'),
    (Case("kling-3-0", {"prompt": "a", "shot_type": "intelligent"}, PHOTO),
     '`shot_type` must be customize; yours is "intelligent".'),
    (Case("kling-3-0", {"prompt": "a"}, {"image": Img("tiff", filename="scan.tiff",
                                                      content_type="image/tiff")}),
     "`image` must be a JPEG, PNG, BMP or WebP image; `scan.tiff` is TIFF."),
    # Kling 3.0 4K text-to-video
    (Case("kling-3-0-4k", {"duration": 5}), "`prompt` is required."),
    (Case("kling-3-0-4k", {"prompt": "a", "aspect_ratio": "21:9"}),
     '`aspect_ratio` must be one of 16:9, 9:16 or 1:1; yours is "21:9".'),
    (Case("kling-3-0-4k", {"prompt": "a", "sound": "perhaps"}),
     '`sound` must be true or false; yours is "perhaps".'),
    (Case("kling-3-0-4k", {"prompt": "a"}, PHOTO),
     "`image` is not an option of `kling-3-0-4k`; it takes `aspect_ratio`, `cfg_scale`, "
     "`duration`, `multi_prompt`, `negative_prompt`, `prompt`, `shot_type`, `sound`."),
    (Case("kling-3-0-4k", {"prompt": "a", "multi_prompt": "6: dawn | 6: dusk"}),
     "`multi_prompt` segment durations must add up to `duration` (5 s); yours add up to 12 s."),
    # Wan 2.2
    (Case("wan-2-2", {"prompt": LONG}, PHOTO),
     "`prompt` must be at most 799 characters; yours has 800."),
    (Case("wan-2-2", {"prompt": "a", "negative_prompt": "n" * 501}, PHOTO),
     "`negative_prompt` must be at most 500 characters; yours has 501."),
    (Case("wan-2-2", {"prompt": "a"}, {"image": Img(alpha=True)}),
     "`image` must not have transparency (an alpha channel); flatten it or send a JPEG."),
    (Case("wan-2-2", {"prompt": "a"}, {"image": Img(transparent_index=True)}),
     "`image` must not have transparency (an alpha channel); flatten it or send a JPEG."),
    (Case("wan-2-2", {"prompt": "a"}, {"image": Img(width=300, height=900)}),
     "`image` must be more than 360 px on each side; yours is 300x900."),
    (Case("wan-2-2", {"prompt": "a"}, {"image": Img("jpeg", width=2400, height=1000)}),
     "`image` must be less than 2000 px on each side; yours is 2400x1000."),
    (Case("wan-2-2", {"prompt": "a", "resolution": "720P"}, PHOTO),
     '`resolution` must be one of 480P or 1080P; yours is "720P".'),
    (Case("wan-2-2", {"prompt": "a", "duration": 10}, PHOTO), "`duration` must be 5; yours is 10."),
    (Case("wan-2-2", {"prompt": "a", "seed": "abc"}, PHOTO),
     '`seed` must be a whole number; yours is "abc".'),
    (Case("wan-2-2", {"prompt": "a", "prompt_extend": "sure"}, PHOTO),
     '`prompt_extend` must be true or false; yours is "sure".'),
    (Case("wan-2-2", {"prompt": "a"}, {"image": Img("webp", declared_size=12 * MB)}),
     "`image` must be less than 10 MB; `photo.webp` is 12.0 MB."),
]


def test_there_are_at_least_40_bad_inputs_across_all_models(catalog: Catalog) -> None:
    assert len(BAD_INPUTS) >= 40
    assert {case.command for case, _ in BAD_INPUTS} == {m.command for m in catalog}


@pytest.mark.parametrize(("case", "message"), BAD_INPUTS,
                         ids=[f"{c.command}-{i}" for i, (c, _) in enumerate(BAD_INPUTS)])
async def test_bad_input_is_refused_before_any_http_call(
    catalog: Catalog, simulator: RunningSimulator, client: RunComfyClient, case: Case,
    message: str,
) -> None:
    with pytest.raises(InvalidOptions) as refused:
        await validate_then_submit(client, catalog.by_command(case.command), case)
    assert refused.value.problems == [message]
    assert simulator.sim.calls == []


async def test_several_problems_are_all_reported(catalog: Catalog) -> None:
    model = catalog.by_command("wan-2-2")
    case = Case("wan-2-2", {"prompt": LONG, "resolution": "4K"}, {"image": Img(width=100,
                                                                                height=100)})
    with pytest.raises(InvalidOptions) as refused:
        build_request(model, case.options, await attach(model, case.images))
    assert str(refused.value) == (
        "The video was not started:\n"
        "- `prompt` must be at most 799 characters; yours has 800.\n"
        "- `image` must be more than 360 px on each side; yours is 100x100.\n"
        '- `resolution` must be one of 480P or 1080P; yours is "4K".')


HAPPY: list[tuple[Case, dict[str, Any]]] = [
    (Case("kling-2-1", {"prompt": "A zebra turns its head"}, PHOTO),
     {"prompt": "A zebra turns its head", "image_url": "https://cdn.example/photo.png",
      "duration": 5, "aspect_ratio": "16:9", "negative_prompt": "", "cfg_scale": 0.5}),
    (Case("kling-1-6", {"duration": "10", "cfg_scale": "0.8"},
          {"image": Img("jpeg"), "end_image": Img("png", filename="end.png")}),
     {"prompt": "", "image_url": "https://cdn.example/photo.jpg",
      "tail_image_url": "https://cdn.example/end.png", "duration": 10, "negative_prompt": "",
      "cfg_scale": 0.8}),
    (Case("kling-3-0", {"prompt": "A woman on a cliff", "duration": 8,
                        "multi_prompt": "5: she turns | 3s: she smiles",
                        "generate_audio": "no",
                        "elements": '[{"frontal_image_url": "https://cdn.example/face.png", '
                                    '"reference_image_urls": ["https://cdn.example/r.png"]}]'},
          PHOTO),
     {"prompt": "A woman on a cliff",
      "multi_prompt": [{"prompt": "she turns", "duration": 5},
                       {"prompt": "she smiles", "duration": 3}],
      "start_image_url": "https://cdn.example/photo.png", "duration": 8,
      "generate_audio": False,
      "elements": [{"frontal_image_url": "https://cdn.example/face.png",
                    "reference_image_urls": ["https://cdn.example/r.png"]}],
      "shot_type": "customize", "cfg_scale": 0.5}),
    (Case("kling-3-0-4k", {"prompt": "A coffee shop", "duration": 10, "sound": False,
                           "aspect_ratio": "9:16",
                           "multi_prompt": '[{"prompt": "wide", "duration": 4}, '
                                           '{"prompt": "macro", "duration": 6}]'}),
     {"prompt": "A coffee shop", "duration": 10, "aspect_ratio": "9:16", "cfg_scale": 0.5,
      "sound": False, "multi_prompt": [{"prompt": "wide", "duration": 4},
                                       {"prompt": "macro", "duration": 6}],
      "shot_type": "customize"}),
    # The schema's defaults: `duration` 10 s, and 5 s for a segment that does not say.
    (Case("kling-3-0", {"prompt": "A cliff", "multi_prompt": '[{"prompt": "wide"}, '
                                                             '{"prompt": "close", "duration": 5}]'},
          PHOTO),
     {"prompt": "A cliff", "multi_prompt": [{"prompt": "wide", "duration": 5},
                                            {"prompt": "close", "duration": 5}],
      "start_image_url": "https://cdn.example/photo.png", "duration": 10,
      "generate_audio": True, "shot_type": "customize", "cfg_scale": 0.5}),
    (Case("kling-3-0-4k", {"prompt": "A coffee shop", "multi_prompt": '[{"prompt": "wide"}]'}),
     {"prompt": "A coffee shop", "duration": 5, "aspect_ratio": "16:9", "cfg_scale": 0.5,
      "sound": True, "multi_prompt": [{"prompt": "wide", "duration": 5}],
      "shot_type": "customize"}),
    (Case("wan-2-2", {"prompt": "A vintage street", "resolution": "1080p", "seed": 7,
                      "template": "flying"}, {"image": Img("jpeg", 1280, 720)}),
     {"prompt": "A vintage street", "negative_prompt": "",
      "img_url": "https://cdn.example/photo.jpg", "template": "flying", "resolution": "1080P",
      "duration": 5, "prompt_extend": True, "seed": 7}),
]


@pytest.mark.parametrize(("case", "expected"), HAPPY,
                         ids=[f"{c.command}-{i}" for i, (c, _) in enumerate(HAPPY)])
async def test_every_model_gets_its_exact_body(
    catalog: Catalog, simulator: RunningSimulator, client: RunComfyClient, case: Case,
    expected: dict[str, Any],
) -> None:
    await validate_then_submit(client, catalog.by_command(case.command), case)
    [job] = simulator.sim.submits
    assert job.model_id == catalog.by_command(case.command).id
    assert json.dumps(job.body, sort_keys=True) == json.dumps(expected, sort_keys=True)


async def test_metadata_dimensions_spare_the_download(catalog: Catalog) -> None:
    rules = catalog.by_command("kling-2-1").field("image_url").image or ImageRules()
    meta = ImageFacts.from_metadata(url="https://cdn.example/a.jpg", filename="a.jpg",
                                    size_bytes=1000, content_type="image/jpeg",
                                    width=800, height=600)

    async def read() -> bytes:
        raise AssertionError("the image should not be downloaded")

    assert await inspect_image(meta, rules, read) == meta


@pytest.mark.parametrize(("command", "option", "value", "refusal"), [
    ("kling-3-0", "duration", "9" * 400,
     "`duration` must be a whole number of at most 15 digits; yours has 400."),
    ("kling-3-0", "multi_prompt", "[" * 1500,
     "`multi_prompt` is not valid JSON here: it is nested too deeply."),
    ("kling-3-0", "elements", "[" + "9" * 5000 + "]",
     "`elements` is not valid JSON here: a number in it is too long."),
])
def test_hostile_values_are_plain_refusals_naming_the_option(
        catalog: Catalog, command: str, option: str, value: str, refusal: str) -> None:
    with pytest.raises(InvalidOptions) as refused:
        build_request(catalog.by_command(command), {"prompt": "a cliff", option: value},
                      headers_pending=True)
    assert refusal in refused.value.problems
