"""Image rules read as the model pages write them ("width_pixels> 300", "width_pixels< 2000",
"file_size_mb< 10", "images <= 50 MB"), one reading for the bot's validation and for the
simulator's own check (which downloads the image, as RunComfy does): exactly at, one below and
one above each bound, both accept or both refuse, with the same sentence."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from bot.catalog import MB, Catalog, ImageRules, ModelSpec
from bot.images import ImageFacts, inspect_image
from bot.validation import InvalidOptions, build_request
from tests.conftest import TOKEN, RunningSimulator
from tests.images import ImageHost, image_bytes, sized

Start = Callable[..., Awaitable[RunningSimulator]]
TEXT = {"kling-1-6": {}, "wan-2-2": {"prompt": "a vintage street"}}


@dataclass(frozen=True)
class Probe:
    command: str
    width: int
    height: int
    size: int | None = None  # the file padded to this many bytes
    refused: str | None = None  # the bot's sentence when the page refuses the image
    option: str = "image"

    @property
    def name(self) -> str:
        size = f"-{self.size}b" if self.size else ""
        return f"{self.command}-{self.option}-{self.width}x{self.height}{size}"


def too_small(side: int, size: str, option: str = "image") -> str:
    return f"`{option}` must be more than {side} px on each side; yours is {size}."


def too_large(size: str) -> str:
    return f"`image` must be less than 2000 px on each side; yours is {size}."


def too_heavy(rule: str, shown: str, option: str = "image") -> str:
    return f"`{option}` must be {rule}; `{option}.png` is {shown}."


PROBES = [
    # Kling 1.6, start image: "width_pixels>" 300, "height_pixels>" 300, "file_size_mb<" 10,
    # and (from the description) an aspect ratio between 2:5 and 5:2.
    Probe("kling-1-6", 299, 400, refused=too_small(300, "299x400")),
    Probe("kling-1-6", 300, 400, refused=too_small(300, "300x400")),
    Probe("kling-1-6", 301, 400),
    Probe("kling-1-6", 400, 299, refused=too_small(300, "400x299")),
    Probe("kling-1-6", 400, 300, refused=too_small(300, "400x300")),
    Probe("kling-1-6", 400, 301),
    Probe("kling-1-6", 400, 400, size=10 * MB - 1),
    Probe("kling-1-6", 400, 400, size=10 * MB,
          refused=too_heavy("less than 10 MB", "10.0 MB")),
    Probe("kling-1-6", 400, 400, size=10 * MB + 1,
          refused=too_heavy("less than 10 MB", "10.0 MB")),
    Probe("kling-1-6", 399, 1000, refused="`image` must have an aspect ratio between 2:5 and "
          "5:2 (width:height); yours is 399x1000."),
    Probe("kling-1-6", 400, 1000),
    Probe("kling-1-6", 401, 1000),
    Probe("kling-1-6", 999, 400),
    Probe("kling-1-6", 1000, 400),
    Probe("kling-1-6", 1001, 400, refused="`image` must have an aspect ratio between 2:5 and "
          "5:2 (width:height); yours is 1001x400."),
    # Kling 1.6, end image: more than 300 px; no size rule, so the pages' "images <= 50 MB".
    Probe("kling-1-6", 299, 400, option="end_image",
          refused=too_small(300, "299x400", "end_image")),
    Probe("kling-1-6", 300, 400, option="end_image",
          refused=too_small(300, "300x400", "end_image")),
    Probe("kling-1-6", 301, 400, option="end_image"),
    Probe("kling-1-6", 400, 400, size=50 * MB - 1, option="end_image"),
    Probe("kling-1-6", 400, 400, size=50 * MB, option="end_image"),
    Probe("kling-1-6", 400, 400, size=50 * MB + 1, option="end_image",
          refused=too_heavy("at most 50 MB", "52,428,801 bytes", "end_image")),
    # Wan 2.2: "width_pixels>" 360, "width_pixels<" 2000 (and the same for height),
    # "file_size_mb<" 10.
    Probe("wan-2-2", 359, 800, refused=too_small(360, "359x800")),
    Probe("wan-2-2", 360, 800, refused=too_small(360, "360x800")),
    Probe("wan-2-2", 361, 800),
    Probe("wan-2-2", 1999, 800),
    Probe("wan-2-2", 2000, 800, refused=too_large("2000x800")),
    Probe("wan-2-2", 2001, 800, refused=too_large("2001x800")),
    Probe("wan-2-2", 800, 359, refused=too_small(360, "800x359")),
    Probe("wan-2-2", 800, 360, refused=too_small(360, "800x360")),
    Probe("wan-2-2", 800, 361),
    Probe("wan-2-2", 800, 1999),
    Probe("wan-2-2", 800, 2000, refused=too_large("800x2000")),
    Probe("wan-2-2", 800, 2001, refused=too_large("800x2001")),
    Probe("wan-2-2", 800, 800, size=10 * MB - 1),
    Probe("wan-2-2", 800, 800, size=10 * MB,
          refused=too_heavy("less than 10 MB", "10.0 MB")),
    Probe("wan-2-2", 800, 800, size=10 * MB + 1,
          refused=too_heavy("less than 10 MB", "10.0 MB")),
]


async def bot_problems(model: ModelSpec, options: Mapping[str, object],
                       files: dict[str, tuple[str, bytes]]) -> list[str]:
    """What the bot says of the attachments (metadata without pixels, as Discord's often is,
    then the header), through the validation every entry point uses."""
    rules = {f.option_name: f.image or ImageRules() for f in model.image_fields}
    images: dict[str, ImageFacts] = {}
    for option, (url, data) in files.items():
        meta = ImageFacts.from_metadata(url=url, filename=url.rsplit("/", 1)[-1],
                                        size_bytes=len(data), content_type="image/png")

        async def read(data: bytes = data) -> bytes:
            return data

        images[option] = await inspect_image(meta, rules[option], read)
    try:
        build_request(model, options, images)
    except InvalidOptions as refused:
        return refused.problems
    return []


async def simulator_problems(running: RunningSimulator, model: ModelSpec,
                             body: dict[str, Any]) -> list[str]:
    async with aiohttp.ClientSession() as session, session.post(
        f"{running.url}/v1/models/{model.id}", json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as response:
        answer = await response.json()
    if response.status == 200:
        assert answer["request_id"]
        return []
    assert (response.status, answer["error_code"]) == (422, 422001)
    assert answer["error_message"] == answer["detail"][0]
    return list(answer["detail"])


@pytest.mark.parametrize("probe", PROBES, ids=[p.name for p in PROBES])
async def test_the_bot_and_the_simulator_read_each_bound_alike(
    catalog: Catalog, start_simulator: Start, image_host: ImageHost, probe: Probe,
) -> None:
    model = catalog.by_command(probe.command)
    data = image_bytes("png", probe.width, probe.height)
    if probe.size is not None:
        data = sized(data, probe.size)
    files = {probe.option: (image_host.add(f"{probe.option}.png", data), data)}
    if probe.option != "image":  # the start image is required: a good one
        good = image_bytes("png", 800, 800)
        files["image"] = (image_host.add("image.png", good), good)
    by_bot = await bot_problems(model, TEXT[probe.command], files)

    running = await start_simulator(run_seconds=0, fetch_images=True)
    field = {f.option_name: f.name for f in model.fields}
    body = {**TEXT[probe.command], **{field[o]: url for o, (url, _) in files.items()}}
    by_simulator = await simulator_problems(running, model, body)

    assert by_bot == ([] if probe.refused is None else [probe.refused])
    # The same sentence, naming the input by its RunComfy name instead of the option's.
    assert by_simulator == [p.replace(f"`{probe.option}`", f"`{field[probe.option]}`")
                            for p in by_bot]


async def test_the_bytes_decide_when_the_host_does_not_name_an_image(
    catalog: Catalog, start_simulator: Start, image_host: ImageHost,
) -> None:
    running = await start_simulator(run_seconds=0, fetch_images=True)
    model = catalog.by_command("wan-2-2")
    png = image_host.add("photo", image_bytes("png", 800, 600), "application/octet-stream")
    notes = image_host.add("notes.png", b"not an image", "text/plain")
    alpha = image_host.add("alpha.png", image_bytes("png", 800, 600, alpha=True))
    missing = f"{image_host.url}/img/gone.png"
    answers = [await simulator_problems(running, model, {"prompt": "a", "img_url": url})
               for url in (png, notes, alpha, missing)]
    assert answers == [
        [],
        ["`img_url` could not be read as an image; `notes.png` seems damaged or is not an "
         "image. Send a JPEG, PNG, BMP or WebP file."],
        ["`img_url` must not have transparency (an alpha channel); flatten it or send a JPEG."],
        ["`img_url` could not be downloaded: its URL must be public (no login or cookies) and "
         "answer."],
    ]


async def test_without_fetching_image_urls_are_taken_on_trust(
    catalog: Catalog, simulator: RunningSimulator,
) -> None:
    model = catalog.by_command("wan-2-2")
    body = {"prompt": "a", "img_url": "https://cdn.example/never-fetched.png"}
    assert await simulator_problems(simulator, model, body) == []
