"""Real image bytes for tests (SimCord's attachments carry no width or height)."""

from __future__ import annotations

import io

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
