"""What the bot knows of an image before it pays for a job: the attachment's metadata, the
image's own header read only when the rules need it, and images downloaded by URL (an embed's
image, or as RunComfy fetches an input) from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web

from bot.catalog import MB, Bound, Catalog, ImageRules
from bot.errors import UserError
from bot.images import (
    ImageFacts,
    download,
    facts_from_url,
    fetch_image,
    inspect_attachments,
    inspect_image,
    main_image_option,
)
from tests.images import image_bytes, sized
from tests.local_server import served

URL = "https://cdn.example/photo.png"
LOOPBACK = ("127.0.0.1",)  # where the tests' image servers are
# Wan 2.2's rules: no alpha, over 360 and under 2000 px a side, under 10 MB.
NO_ALPHA = ImageRules(width=Bound(gt=360, lt=2000), height=Bound(gt=360, lt=2000),
                      file_size_mb=Bound(lt=10), allow_alpha=False)
ANY_IMAGE = ImageRules()  # the pages' "images <= 50 MB", alpha allowed


def meta(content_type: str | None = "image/png", *, size: int = 5000,
         width: int | None = None, height: int | None = None,
         filename: str = "photo.png") -> ImageFacts:
    return ImageFacts.from_metadata(url=URL, filename=filename, size_bytes=size,
                                    content_type=content_type, width=width, height=height)


def png_header(width: int, height: int) -> bytes:
    """The start of an RGBA PNG of any size: signature, IHDR and a first IDAT chunk (a reader
    that decodes no pixels needs no more)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(bytes(100))))


class Reads:
    """An image's bytes, counting how often they are asked for."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.count = 0

    async def __call__(self) -> bytes:
        self.count += 1
        return self.data


# -- metadata ------------------------------------------------------------------------------

@pytest.mark.parametrize(("declared", "content_type", "fmt", "looks_like_image"), [
    ("image/png", "image/png", "png", True),
    ("image/JPEG; charset=binary", "image/jpeg", "jpeg", True),
    ("image/jpg", "image/jpg", "jpeg", True),
    ("image/pjpeg", "image/pjpeg", "jpeg", True),
    (" image/webp ", "image/webp", "webp", True),
    ("image/x-ms-bmp", "image/x-ms-bmp", "bmp", True),
    ("image/gif", "image/gif", "gif", True),
    ("image/tiff", "image/tiff", None, True),  # an image, of a format the bytes will tell
    ("image/svg+xml", "image/svg+xml", None, True),
    (None, None, None, True),  # not said: maybe an image
    ("", None, None, True),
    ("text/plain; charset=utf-8", "text/plain", None, False),
    ("video/mp4", "video/mp4", None, False),
])
def test_the_metadata_content_type(declared: str | None, content_type: str | None,
                                   fmt: str | None, looks_like_image: bool) -> None:
    facts = meta(declared, width=800, height=600)
    assert (facts.content_type, facts.format, facts.looks_like_image) == (
        content_type, fmt, looks_like_image)
    assert (facts.url, facts.filename, facts.size_bytes, facts.width, facts.height) == (
        URL, "photo.png", 5000, 800, 600)
    assert facts.has_alpha is None and not facts.unreadable


@pytest.mark.parametrize(("facts", "rules", "needed"), [
    (meta(width=800, height=600), ANY_IMAGE, False),  # all a permissive model asks
    (meta(width=800), ANY_IMAGE, True),
    (meta(height=600), ANY_IMAGE, True),
    (meta("image/tiff", width=800, height=600), ANY_IMAGE, True),  # the format is unknown
    (meta(None, width=800, height=600), ANY_IMAGE, True),
    (meta(width=800, height=600), NO_ALPHA, True),  # a PNG may have alpha
    (meta("image/webp", width=800, height=600), NO_ALPHA, True),
    (meta("image/jpeg", width=800, height=600), NO_ALPHA, False),  # a JPEG never has
])
def test_whether_the_header_is_needed(facts: ImageFacts, rules: ImageRules,
                                      needed: bool) -> None:
    assert facts.needs_header(rules) is needed


def test_alpha_known_from_a_header_needs_no_second_read() -> None:
    read = meta(width=800, height=600).with_header(image_bytes("png", 800, 600))
    assert read.has_alpha is False and not read.needs_header(NO_ALPHA)


# -- the header ----------------------------------------------------------------------------

@pytest.mark.parametrize(("fmt", "alpha", "transparent_index", "expected_alpha"), [
    ("png", False, False, False),
    ("png", True, False, True),
    ("png", False, True, True),  # a palette with a transparent colour (tRNS)
    ("jpeg", False, False, False),
    ("webp", False, False, False),
    ("webp", True, False, True),
    ("bmp", False, False, False),
    ("gif", False, False, False),
])
def test_the_header_of_real_images(fmt: str, alpha: bool, transparent_index: bool,
                                   expected_alpha: bool) -> None:
    data = image_bytes(fmt, 641, 359, alpha=alpha, transparent_index=transparent_index)
    facts = meta(None, size=len(data)).with_header(data)
    assert (facts.format, facts.width, facts.height, facts.has_alpha, facts.unreadable) == (
        fmt, 641, 359, expected_alpha, False)


def test_the_bytes_win_over_the_metadata() -> None:
    """An attachment named and typed as a small JPEG that is a large PNG with alpha."""
    described = meta("image/jpeg", width=10, height=10, filename="photo.jpg")
    facts = described.with_header(image_bytes("png", 1280, 720, alpha=True))
    assert (facts.format, facts.width, facts.height, facts.has_alpha) == (
        "png", 1280, 720, True)
    # What the member sent is still theirs: its name, type and declared size.
    assert (facts.filename, facts.content_type, facts.size_bytes) == (
        "photo.jpg", "image/jpeg", 5000)


def test_a_format_no_model_takes_is_still_named() -> None:
    facts = meta(None).with_header(image_bytes("tiff", 400, 300))
    assert (facts.format, facts.width, facts.height) == ("tiff", 400, 300)


@pytest.mark.parametrize("data", [
    b"", b"not an image at all", image_bytes("png", 400, 300)[:40],  # cut inside its header
    image_bytes("jpeg", 400, 300)[:300], bytes(2048),
], ids=["empty", "text", "cut-png", "cut-jpeg", "zeros"])
def test_an_unreadable_file_keeps_its_metadata(data: bytes) -> None:
    facts = meta("image/png", width=800, height=600).with_header(data)
    assert facts.unreadable
    assert (facts.format, facts.width, facts.height, facts.has_alpha) == ("png", 800, 600, None)


def test_a_readable_header_clears_an_earlier_failure() -> None:
    broken = meta().with_header(b"garbage")
    assert broken.unreadable
    assert not broken.with_header(image_bytes("png", 400, 300)).unreadable


def test_a_huge_image_is_measured_without_decoding_its_pixels() -> None:
    """100 megapixels (above Pillow's warning threshold): its size is read, so the member is
    told the size is wrong, not that the file is damaged."""
    facts = meta().with_header(png_header(10_000, 10_000))
    assert (facts.format, facts.width, facts.height, facts.has_alpha, facts.unreadable) == (
        "png", 10_000, 10_000, True, False)


def test_an_image_too_large_to_decode_safely_is_not_read() -> None:
    """Beyond twice Pillow's limit (a decompression bomb): refused as unreadable."""
    facts = meta().with_header(png_header(15_000, 15_000))
    assert facts.unreadable and facts.width is None


# -- reading only when needed --------------------------------------------------------------

async def test_a_file_that_is_not_an_image_is_never_read() -> None:
    read = Reads(b"hello")
    facts = meta("text/plain", filename="notes.txt")
    assert await inspect_image(facts, ANY_IMAGE, read) == facts
    assert read.count == 0


@pytest.mark.parametrize(("rules", "size"), [(NO_ALPHA, 10 * MB), (ANY_IMAGE, 50 * MB + 1)])
async def test_a_file_too_large_is_never_read(rules: ImageRules, size: int) -> None:
    """Its metadata says it fails: nothing is downloaded to learn more."""
    read = Reads(image_bytes("png", 800, 600))
    facts = meta(size=size)
    assert await inspect_image(facts, rules, read) == facts
    assert read.count == 0


async def test_a_file_at_the_size_limit_is_read() -> None:
    read = Reads(image_bytes("png", 800, 600))
    facts = await inspect_image(meta(size=50 * MB), ANY_IMAGE, read)
    assert read.count == 1 and (facts.width, facts.height) == (800, 600)


async def test_the_header_is_read_once_when_the_metadata_lacks_pixels() -> None:
    read = Reads(image_bytes("webp", 800, 600, alpha=True))
    facts = await inspect_image(meta("image/webp", size=len(read.data)), NO_ALPHA, read)
    assert read.count == 1
    assert (facts.format, facts.width, facts.height, facts.has_alpha) == (
        "webp", 800, 600, True)


async def test_a_png_is_read_for_its_alpha_only_where_alpha_is_refused() -> None:
    data = image_bytes("png", 800, 600, alpha=True)
    strict, lenient = Reads(data), Reads(data)
    facts = meta(width=800, height=600)
    assert (await inspect_image(facts, NO_ALPHA, strict)).has_alpha is True
    assert await inspect_image(facts, ANY_IMAGE, lenient) == facts
    assert (strict.count, lenient.count) == (1, 0)


async def test_a_jpeg_with_its_pixels_known_is_not_read_even_where_alpha_is_refused() -> None:
    read = Reads(image_bytes("jpeg", 800, 600))
    facts = meta("image/jpeg", width=800, height=600, filename="photo.jpg")
    assert await inspect_image(facts, NO_ALPHA, read) == facts
    assert read.count == 0


async def test_an_untyped_file_is_read_for_what_it_is() -> None:
    read = Reads(image_bytes("bmp", 500, 400))
    facts = await inspect_image(meta(None, width=500, height=400), ANY_IMAGE, read)
    assert read.count == 1 and facts.format == "bmp" and facts.content_type is None


@dataclass
class Attachment:
    """An uploaded file as the domain sees one (what ``discord.Attachment`` provides)."""

    filename: str
    data: bytes
    content_type: str | None
    width: int | None = None
    height: int | None = None
    reads: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://cdn.example/{self.filename}"

    @property
    def size(self) -> int:
        return len(self.data)

    async def read(self) -> bytes:
        self.reads.append(self.filename)
        return self.data


async def test_each_attachment_is_read_only_if_its_own_rules_need_it(catalog: Catalog) -> None:
    """Kling 1.6: a start image whose metadata has everything, an end image without pixels."""
    start = Attachment("start.jpg", image_bytes("jpeg", 800, 600), "image/jpeg", 800, 600)
    end = Attachment("end.png", image_bytes("png", 640, 480, alpha=True), "image/png")
    facts = await inspect_attachments(catalog.by_command("kling-1-6"),
                                      {"image": start, "end_image": end})
    assert start.reads == [] and end.reads == ["end.png"]
    assert (facts["image"].format, facts["image"].width, facts["image"].has_alpha) == (
        "jpeg", 800, None)
    assert (facts["end_image"].format, facts["end_image"].width, facts["end_image"].height,
            facts["end_image"].has_alpha) == ("png", 640, 480, True)
    assert facts["end_image"].url == "https://cdn.example/end.png"


async def test_an_attachment_for_a_model_that_refuses_alpha(catalog: Catalog) -> None:
    photo = Attachment("photo.png", image_bytes("png", 800, 600, alpha=True), "image/png",
                       800, 600)
    facts = await inspect_attachments(catalog.by_command("wan-2-2"), {"image": photo})
    assert photo.reads == ["photo.png"] and facts["image"].has_alpha is True


# -- the image to animate ------------------------------------------------------------------

@pytest.mark.parametrize("command", ["kling-1-6", "kling-2-1", "kling-3-0", "wan-2-2"])
def test_the_option_an_image_to_animate_goes_to(catalog: Catalog, command: str) -> None:
    assert main_image_option(catalog.by_command(command)) == "image"


def test_a_text_only_model_cannot_animate_an_image(catalog: Catalog) -> None:
    with pytest.raises(UserError) as refused:
        main_image_option(catalog.by_command("kling-3-0-4k"))
    assert str(refused.value) == ("`kling-3-0-4k` makes videos from text only; it cannot "
                                  "animate an image.")


# -- images by URL, from a real server -----------------------------------------------------

@dataclass
class Host:
    """Files on 127.0.0.1: ``/f/{name}`` with a Content-Length, ``/chunked/{name}`` without
    one, ``/endless`` a file that never ends, ``/status/{code}`` an error."""

    url: str
    files: dict[str, tuple[bytes, str]]
    requests: list[str]

    def add(self, name: str, data: bytes, content_type: str = "image/png") -> None:
        self.files[name] = (data, content_type)


@pytest.fixture
async def host() -> AsyncIterator[Host]:
    files: dict[str, tuple[bytes, str]] = {}
    requests: list[str] = []

    async def whole(request: web.Request) -> web.Response:
        requests.append(request.path_qs)
        found = files.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        return web.Response(body=found[0], headers={"Content-Type": found[1]})

    async def chunked(request: web.Request) -> web.StreamResponse:
        requests.append(request.path_qs)
        data, kind = files[request.match_info["name"]]
        response = web.StreamResponse(headers={"Content-Type": kind})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(data), 50_000):
            await response.write(data[start:start + 50_000])
        await response.write_eof()
        return response

    async def endless(request: web.Request) -> web.StreamResponse:
        requests.append(request.path_qs)
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        piece = image_bytes("png", 400, 300) + bytes(64 * 1024)
        try:
            for _ in range(100_000):  # gigabytes: never read to the end
                await response.write(piece)
                await asyncio.sleep(0)
        except ConnectionError:
            pass
        return response

    async def status(request: web.Request) -> web.Response:
        requests.append(request.path_qs)
        return web.Response(status=int(request.match_info["code"]), text="no")

    async def redirect(request: web.Request) -> web.Response:
        requests.append(request.path_qs)
        raise web.HTTPFound(request.query["to"])

    app = web.Application()
    app.router.add_get("/f/{name}", whole)
    app.router.add_get("/chunked/{name}", chunked)
    app.router.add_get("/endless", endless)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/redirect", redirect)
    async with served(app) as url:
        yield Host(url, files, requests)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def refused(call: Awaitable[object]) -> str:
    with pytest.raises(UserError) as error:
        async with asyncio.timeout(10):
            await call
    return str(error.value)


async def test_an_embed_image_is_fetched_whole(host: Host,
                                               session: aiohttp.ClientSession) -> None:
    data = image_bytes("png", 800, 600)
    host.add("photo.png", data)
    url = f"{host.url}/f/photo.png?ex=68&is=67&hm=ab"  # a CDN link's signature
    image = await fetch_image(session, url, 8 * MB, LOOPBACK)
    assert (image.url, image.filename, image.size, image.content_type) == (
        url, "photo.png", len(data), "image/png")
    assert image.data == data and await image.read() == data
    assert (image.width, image.height) == (None, None)  # its header is read later, if needed
    assert host.requests == ["/f/photo.png?ex=68&is=67&hm=ab"]


async def test_an_image_of_exactly_the_limit_is_fetched(host: Host,
                                                        session: aiohttp.ClientSession) -> None:
    data = sized(image_bytes("png", 800, 600), MB)
    host.add("exact.png", data)
    for route in ("f", "chunked"):
        image = await fetch_image(session, f"{host.url}/{route}/exact.png", MB, LOOPBACK)
        assert image.size == MB and image.data == data


@pytest.mark.parametrize("route", ["f", "chunked"])
async def test_an_image_over_the_limit_is_refused(host: Host, session: aiohttp.ClientSession,
                                                  route: str) -> None:
    host.add("big.png", sized(image_bytes("png", 800, 600), MB + 1))
    assert await refused(fetch_image(session, f"{host.url}/{route}/big.png", MB, LOOPBACK)) == (
        "The image `big.png` is larger than 1 MB.")


async def test_an_endless_image_is_refused_after_the_limit(
        host: Host, session: aiohttp.ClientSession) -> None:
    assert await refused(fetch_image(session, f"{host.url}/endless", 2 * MB, LOOPBACK)) == (
        "The image `endless` is larger than 2 MB.")


@pytest.mark.parametrize("code", [403, 404, 500])
async def test_an_image_the_server_refuses(host: Host, session: aiohttp.ClientSession,
                                           code: int) -> None:
    assert await refused(fetch_image(session, f"{host.url}/status/{code}?x=1", MB, LOOPBACK)) == (
        f"I could not download the image `{code}`.")
    assert await refused(fetch_image(session, f"{host.url}/f/gone.png", MB, LOOPBACK)) == (
        "I could not download the image `gone.png`.")


async def test_an_image_elsewhere_is_refused_before_any_connection(
        host: Host, session: aiohttp.ClientSession) -> None:
    """Only the allowed hosts are fetched from: not a name that resolves to the same server,
    not another scheme, and not a host a redirect points to (checked before following it)."""
    host.add("cat.png", image_bytes("png", 800, 600))
    port = host.url.rsplit(":", 1)[1]
    refusal = "I only fetch images from Discord; `cat.png` is elsewhere. Attach the image instead."
    assert await refused(fetch_image(session, f"http://localhost:{port}/f/cat.png", MB,
                                     LOOPBACK)) == refusal
    assert await refused(fetch_image(session, "file:///f/cat.png", MB, LOOPBACK)) == refusal
    assert host.requests == []  # nothing was asked of the server
    elsewhere = quote(f"http://localhost:{port}/f/cat.png", safe="")
    assert await refused(fetch_image(session, f"{host.url}/redirect?to={elsewhere}", MB,
                                     LOOPBACK)) == ("I only fetch images from Discord; "
                                                    "`cat.png` is elsewhere. Attach the image "
                                                    "instead.")
    assert host.requests == [f"/redirect?to=http://localhost:{port}/f/cat.png"]  # not its target
    allowed = quote(f"{host.url}/f/cat.png", safe="")
    image = await fetch_image(session, f"{host.url}/redirect?to={allowed}", MB, LOOPBACK)
    assert image.data == image_bytes("png", 800, 600)


async def test_an_image_nobody_serves(closed_port: int,
                                      session: aiohttp.ClientSession) -> None:
    url = f"http://127.0.0.1:{closed_port}/attachments/1/2/cat.webp?ex=1"
    assert await refused(fetch_image(session, url, MB, LOOPBACK)) == (
        "I could not download the image `cat.webp`.")


async def test_a_download_keeps_the_first_bytes_up_to_its_cap(
        host: Host, session: aiohttp.ClientSession) -> None:
    data = bytes(range(256)) * 4000  # 1,024,000 bytes
    host.add("file.bin", data, "application/octet-stream")
    declared = await download(session, f"{host.url}/f/file.bin", 1000)
    assert declared.data == data[:1000]
    assert declared.size == len(data)  # the whole file's, from its Content-Length
    assert (declared.name, declared.content_type) == ("file.bin", "application/octet-stream")
    streamed = await download(session, f"{host.url}/chunked/file.bin", 1000)
    assert streamed.data == data[:1000]
    assert 1000 <= streamed.size < len(data)  # as much as was read: over the cap
    small = await download(session, f"{host.url}/chunked/file.bin", 2 * MB)
    assert (small.data, small.size) == (data, len(data))


async def test_facts_as_a_service_fetching_the_url_sees_them(
        host: Host, session: aiohttp.ClientSession) -> None:
    data = image_bytes("png", 800, 600, alpha=True)
    host.add("alpha.png", data)
    facts = await facts_from_url(session, f"{host.url}/f/alpha.png", NO_ALPHA)
    assert facts == ImageFacts(url=f"{host.url}/f/alpha.png", filename="alpha.png",
                               size_bytes=len(data), content_type="image/png", format="png",
                               width=800, height=600, has_alpha=True)


@pytest.mark.parametrize("served_as", ["application/octet-stream", "text/plain"])
async def test_a_type_that_names_no_image_leaves_it_to_the_bytes(
        host: Host, session: aiohttp.ClientSession, served_as: str) -> None:
    host.add("photo", image_bytes("jpeg", 800, 600), served_as)
    facts = await facts_from_url(session, f"{host.url}/f/photo", NO_ALPHA)
    assert (facts.content_type, facts.format, facts.width, facts.has_alpha) == (
        None, "jpeg", 800, False)


async def test_a_file_that_is_no_image_is_unreadable(host: Host,
                                                     session: aiohttp.ClientSession) -> None:
    host.add("notes.png", b"shopping list", "text/plain")
    facts = await facts_from_url(session, f"{host.url}/f/notes.png", NO_ALPHA)
    assert facts.unreadable and facts.content_type is None and facts.size_bytes == 13


@pytest.mark.parametrize("route", ["f", "chunked"])
async def test_a_file_over_the_rules_size_is_not_inspected(
        host: Host, session: aiohttp.ClientSession, route: str) -> None:
    """Only what tells the size is read (one byte over the limit): its pixels stay unknown."""
    rules = ImageRules(file_size_mb=Bound(lt=1))
    host.add("big.png", sized(image_bytes("png", 800, 600), 3 * MB))
    facts = await facts_from_url(session, f"{host.url}/{route}/big.png", rules)
    assert facts.size_bytes > MB and not rules.size_allowed(facts.size_bytes)
    assert (facts.format, facts.width, facts.height, facts.unreadable) == (
        "png", None, None, False)
    if route == "f":
        assert facts.size_bytes == 3 * MB


async def test_a_url_that_does_not_answer_is_the_members_error(
        host: Host, session: aiohttp.ClientSession) -> None:
    assert await refused(facts_from_url(session, f"{host.url}/f/gone.png", NO_ALPHA)) == (
        "I could not download the image `gone.png`.")

