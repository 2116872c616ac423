"""What the bot knows about an image input before paying for a job: format, size, pixels, alpha."""

from __future__ import annotations

import fnmatch
import io
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol
from urllib.parse import urljoin, urlsplit

import aiohttp

from bot.catalog import MB, ImageRules, ModelSpec
from bot.errors import UserError
from bot.i18n import _, number

_CONTENT_TYPES = {
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/pjpeg": "jpeg",
    "image/png": "png",
    "image/webp": "webp",
    "image/bmp": "bmp",
    "image/x-ms-bmp": "bmp",
    "image/gif": "gif",
}
MAX_REDIRECTS = 5
_PIL_FORMATS = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "WEBP": "webp", "BMP": "bmp",
                "GIF": "gif"}


@dataclass(frozen=True)
class ImageFacts:
    """An image input as the validator sees it; ``None`` means not known (yet)."""

    url: str
    filename: str
    size_bytes: int
    content_type: str | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    has_alpha: bool | None = None
    unreadable: bool = False

    @classmethod
    def from_metadata(
        cls,
        *,
        url: str,
        filename: str,
        size_bytes: int,
        content_type: str | None,
        width: int | None = None,
        height: int | None = None,
    ) -> ImageFacts:
        """Facts from an attachment's metadata alone (Discord sends these with the interaction)."""
        mime = (content_type or "").split(";")[0].strip().lower() or None
        return cls(url=url, filename=filename, size_bytes=size_bytes, content_type=mime,
                   format=_CONTENT_TYPES.get(mime or ""), width=width, height=height)

    @property
    def looks_like_image(self) -> bool:
        return self.content_type is None or self.content_type.startswith("image/")

    def needs_header(self, rules: ImageRules) -> bool:
        """Whether the metadata leaves something the rules ask about unknown."""
        if self.width is None or self.height is None or self.format is None:
            return True
        return not rules.allow_alpha and self.has_alpha is None and self.format != "jpeg"

    def with_header(self, data: bytes) -> ImageFacts:
        """Facts read from the image's own bytes, which win over the metadata."""
        from PIL import Image, UnidentifiedImageError  # only when an image is read: it is big

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as image:
                    fmt = _PIL_FORMATS.get(image.format or "", (image.format or "").lower())
                    alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
                        "transparency" in image.info
                    )
                    return replace(self, format=fmt, width=image.width, height=image.height,
                                   has_alpha=alpha, unreadable=False)
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
            return replace(self, unreadable=True)


async def inspect_image(
    facts: ImageFacts, rules: ImageRules, read: Callable[[], Awaitable[bytes]]
) -> ImageFacts:
    """Complete the metadata with the image's header when the rules need it.

    Nothing is downloaded for a file that is not an image or is too large anyway: those
    fail validation on the metadata alone.
    """
    if not facts.looks_like_image or not rules.size_allowed(facts.size_bytes):
        return facts
    if not facts.needs_header(rules):
        return facts
    return facts.with_header(await read())


class AttachmentLike(Protocol):
    """What the bot needs of an uploaded file (``discord.Attachment`` is one)."""

    @property
    def url(self) -> str: ...
    @property
    def filename(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def content_type(self) -> str | None: ...
    @property
    def width(self) -> int | None: ...
    @property
    def height(self) -> int | None: ...
    async def read(self) -> bytes: ...


def facts_of(attachment: AttachmentLike) -> ImageFacts:
    return ImageFacts.from_metadata(
        url=attachment.url, filename=attachment.filename, size_bytes=attachment.size,
        content_type=attachment.content_type, width=attachment.width, height=attachment.height)


def main_image_option(model: ModelSpec) -> str:
    """The option an image to animate goes to; a ``UserError`` for a text-only model."""
    if model.main_image is None:
        raise UserError(_("`{command}` makes videos from text only; it cannot animate an "
                          "image.", command=model.command))
    return model.field(model.main_image).option_name


async def inspect_attachments(
    model: ModelSpec, attachments: Mapping[str, AttachmentLike]
) -> dict[str, ImageFacts]:
    """Facts about each image option's attachment, reading its bytes only where needed."""
    rules = {f.option_name: f.image or ImageRules() for f in model.image_fields}
    return {
        name: await inspect_image(facts_of(attachment), rules.get(name, ImageRules()),
                                  attachment.read)
        for name, attachment in attachments.items()
    }


@dataclass(frozen=True)
class PendingImage:
    """An image input not downloaded (or made) yet, known by its URL at most: the options
    around it are checked first, and the image itself once it is there (``ImageInput``)."""

    url: str
    filename: str = "image"
    size: int = 0
    content_type: str | None = None
    width: int | None = None
    height: int | None = None

    async def read(self) -> bytes:
        raise RuntimeError("a pending image has no bytes yet")


@dataclass(frozen=True)
class ImageInput:
    """An image input of a new job, and where its bytes come from, for ``JobService.request``.

    ``known``: what is known of it before any I/O (an attachment's metadata, or a
    ``PendingImage``); ``fetch``: gets the image (a download, a video's last frame), called
    only once the options and the guild's rules pass; ``publish``: puts the fetched image
    where RunComfy can fetch it, called once its metadata passes too; ``withdraw``: takes the
    published image back when the job is refused before it is written down (it must not
    raise). Without ``fetch``, ``known`` is the image."""

    known: AttachmentLike
    fetch: Callable[[], Awaitable[AttachmentLike]] | None = None
    publish: Callable[[AttachmentLike], Awaitable[AttachmentLike]] | None = None
    withdraw: Callable[[], Awaitable[None]] | None = None


@dataclass(frozen=True)
class FetchedImage:
    """An image known only by URL (an embed's image), downloaded to be checked."""

    url: str
    filename: str
    size: int
    content_type: str | None
    data: bytes
    width: int | None = None
    height: int | None = None

    async def read(self) -> bytes:
        return self.data


def host_allowed(url: str, hosts: Sequence[str]) -> bool:
    """Whether ``url`` is on one of ``hosts`` (``*.example.com``: its subdomains too)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        return False
    return any(fnmatch.fnmatchcase(host, allowed.lower()) for allowed in hosts)


def refuse_unless_allowed(url: str, hosts: Sequence[str]) -> None:
    if not host_allowed(url, hosts):
        raise UserError(_("I only fetch images from Discord; `{file}` is elsewhere. Attach "
                          "the image instead.", file=file_name(url)))


def file_name(url: str) -> str:
    return url.split("?")[0].rstrip("/").rsplit("/", 1)[-1] or "image"


async def fetch_image(session: aiohttp.ClientSession, url: str, max_bytes: int,
                      hosts: Sequence[str]) -> FetchedImage:
    """Download an image by URL, from ``hosts`` only (redirects included), refusing (as a
    ``UserError``) anything elsewhere, too large or broken."""
    got = await download(session, url, max_bytes + 1, hosts)
    if got.size > max_bytes:
        raise UserError(_("The image `{file}` is larger than {megabytes} MB.", file=got.name,
                          megabytes=number(max_bytes // MB)))
    return FetchedImage(url=url, filename=got.name, size=got.size,
                        content_type=got.content_type, data=got.data)


async def facts_from_url(session: aiohttp.ClientSession, url: str,
                         rules: ImageRules) -> ImageFacts:
    """An image input as a service that fetches its URL sees it (RunComfy does, and so does its
    simulator): the file's size and its own header, for ``check_image``. The server's
    ``Content-Type`` counts only when it names an image; otherwise the bytes decide."""
    got = await download(session, url, rules.download_cap)
    mime = got.content_type if (got.content_type or "").lower().startswith("image/") else None
    facts = ImageFacts.from_metadata(url=url, filename=got.name, size_bytes=got.size,
                                     content_type=mime)

    async def read() -> bytes:
        return got.data

    return await inspect_image(facts, rules, read)


class DownloadFailed(UserError):
    """The file at a URL could not be fetched (gone, refused, unreachable, timed out)."""


@dataclass(frozen=True)
class Download:
    """The first bytes of a file at a URL (up to a cap), and what the server says of it."""

    name: str
    data: bytes
    size: int  # the whole file's: its Content-Length, or what was read
    content_type: str | None


async def download(session: aiohttp.ClientSession, url: str, cap: int,
                   hosts: Sequence[str] | None = None) -> Download:
    """Read at most ``cap`` bytes of ``url``; a ``UserError`` when it cannot be fetched. With
    ``hosts``, the URL and every redirect must be on one of them, checked before connecting."""
    name = file_name(url)
    data = bytearray()
    try:
        for _hop in range(MAX_REDIRECTS):
            if hosts is not None:
                refuse_unless_allowed(url, hosts)
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=30),
                                   allow_redirects=False) as response:
                location = response.headers.get("Location")
                if response.status in (301, 302, 303, 307, 308) and location:
                    url = urljoin(url, location)
                    continue
                response.raise_for_status()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    data.extend(chunk)
                    if len(data) >= cap:
                        break
                kind = response.headers.get("Content-Type")
                declared = response.content_length or 0
                break
        else:
            raise DownloadFailed(_("I could not download the image `{file}`: too many "
                                   "redirects.", file=name))
    except (aiohttp.ClientError, TimeoutError):
        raise DownloadFailed(_("I could not download the image `{file}`.", file=name)) from None
    return Download(name=name, data=bytes(data[:cap]), size=max(len(data), declared),
                    content_type=kind)
