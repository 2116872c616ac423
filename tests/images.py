"""Real image bytes for tests (SimCord's attachments carry no width or height)."""

from __future__ import annotations

import io

from aiohttp import web
from PIL import Image


def image_bytes(fmt: str, width: int, height: int, *, alpha: bool = False,
                transparent_index: bool = False) -> bytes:
    """An image of the given format and size; ``alpha`` gives RGBA, ``transparent_index`` a
    palette PNG with a transparent colour (a ``tRNS`` chunk)."""
    mode = "RGBA" if alpha else "RGB"
    image = Image.new(mode, (width, height), (200, 120, 40, 128) if alpha else (200, 120, 40))
    if transparent_index:
        image = image.convert("P")
        image.info["transparency"] = 0
    out = io.BytesIO()
    save_format = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "bmp": "BMP", "gif": "GIF",
                   "tiff": "TIFF"}[fmt]
    kwargs = {"transparency": 0} if transparent_index else {}
    image.save(out, format=save_format, **kwargs)
    return out.getvalue()


def sized(data: bytes, size: int) -> bytes:
    """``data`` padded with zeros after its end to exactly ``size`` bytes (readers stop at the
    image's own end, so it is still the same image)."""
    assert size >= len(data)
    return data + bytes(size - len(data))


class ImageHost:
    """Public image URLs on 127.0.0.1, as a service that fetches its inputs sees them."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.url = ""
        self._runner: web.AppRunner | None = None

    def add(self, name: str, data: bytes, content_type: str = "image/png") -> str:
        self.files[name] = (data, content_type)
        return f"{self.url}/img/{name}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/img/{name}", self._serve)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(self, request: web.Request) -> web.Response:
        found = self.files.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound()
        return web.Response(body=found[0], content_type=found[1])
