"""The normalised shape of one model's catalog file (see ``bot/catalog/models/``)."""

from __future__ import annotations

import math
import re
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

JsonScalar = bool | int | float | str
FieldType = Literal["string", "integer", "number", "boolean", "image", "video", "array", "object"]
ImageFormat = Literal["jpeg", "png", "webp", "bmp", "gif"]

# Discord's rule for command and option names, restricted to ASCII lower case.
_DISCORD_NAME = re.compile(r"^[a-z0-9_-]{1,32}$")
# Checked with Python's re: pydantic's ``pattern`` would load pydantic-core's own regex engine
# (0.4 MB more for the process).
_RATIO = re.compile(r"[1-9][0-9]*:[1-9][0-9]*")
_MODEL_ID = re.compile(r"[a-z0-9][a-z0-9._-]*(/[a-z0-9._-]+)+")
DEFAULT_OUTPUT_KEY = "video"  # where RunComfy's result holds the video, unless a model says
MB = 1024 * 1024  # the pages' "MB" (assumed: binary megabytes)


_LANGUAGE = re.compile(r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def ratio(text: str) -> float:
    """The value of a ``W:H`` ratio as written in the catalog, e.g. ``"2:5"`` -> 0.4."""
    width, height = text.split(":")
    return int(width) / int(height)


class Bound(_Strict):
    """Limits on a number, kept as strict as the model page states them.

    ``gt`` and ``lt`` are the page's ``>`` and ``<`` (RunComfy's ``width_pixels>``,
    ``file_size_mb<``): the limit itself is refused. ``ge`` and ``le`` are ``>=`` and ``<=``
    (the pages' "images <= 50 MB"): the limit itself is accepted. At most one of each pair.
    """

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    def too_low(self, value: float) -> bool:
        return ((self.gt is not None and value <= self.gt)
                or (self.ge is not None and value < self.ge))

    def too_high(self, value: float) -> bool:
        return ((self.lt is not None and value >= self.lt)
                or (self.le is not None and value > self.le))

    def allows(self, value: float) -> bool:
        return not self.too_low(value) and not self.too_high(value)

    @property
    def upper(self) -> float | None:
        return self.lt if self.lt is not None else self.le

    @model_validator(mode="after")
    def _one_per_side(self) -> Self:
        if self.gt is not None and self.ge is not None:
            raise ValueError("give 'gt' (>) or 'ge' (>=), not both")
        if self.lt is not None and self.le is not None:
            raise ValueError("give 'lt' (<) or 'le' (<=), not both")
        low = self.gt if self.gt is not None else self.ge
        high = self.upper
        strict = self.gt is not None or self.lt is not None
        if low is not None and high is not None and (low > high or (low == high and strict)):
            raise ValueError("no value is within these bounds")
        return self


# The rule keys of catalogs before bounds kept their strictness, and what replaces them.
_LEGACY_IMAGE_KEYS = {
    "min_width": "width", "min_height": "height", "max_width": "width",
    "max_height": "height", "max_mb": "file_size_mb",
}


class ImageRules(_Strict):
    """What an image input must be, from the model page's ``validations`` and description.

    ``width`` and ``height`` are in pixels, ``file_size_mb`` in MB of 1024 * 1024 bytes; each
    keeps the page's strictness (``"width_pixels>" 300`` is ``{"gt": 300}``). The default size
    limit is the pages' "images <= 50 MB". The aspect ratio (from the pages' descriptions,
    "between 2:5 and 5:2") includes both ends.
    """

    formats: tuple[ImageFormat, ...] = ("jpeg", "png", "webp", "bmp")
    width: Bound = Bound()
    height: Bound = Bound()
    file_size_mb: Bound = Bound(le=50)
    min_aspect: str | None = None
    max_aspect: str | None = None
    allow_alpha: bool = True

    def size_allowed(self, size_bytes: int) -> bool:
        return self.file_size_mb.allows(size_bytes / MB)

    @property
    def download_cap(self) -> int:
        """Bytes enough to know whether a file is within ``file_size_mb``: one over its limit."""
        upper = self.file_size_mb.upper
        assert upper is not None  # the validator below guarantees it
        return math.floor(upper * MB) + 1

    @field_validator("min_aspect", "max_aspect")
    @classmethod
    def _ratio(cls, value: str | None) -> str | None:
        if value is not None and not _RATIO.fullmatch(value):
            raise ValueError("must be a ratio of whole numbers, W:H (e.g. 2:5)")
        return value

    @model_validator(mode="before")
    @classmethod
    def _no_legacy_keys(cls, data: object) -> object:
        if isinstance(data, dict):
            for key, new in _LEGACY_IMAGE_KEYS.items():
                if key in data:
                    raise ValueError(
                        f"{key!r} is no longer read: write {new!r} as bounds that keep the "
                        "model page's strictness, e.g. {\"gt\": 300} for '>', {\"le\": 50} "
                        "for '<='"
                    )
        return data

    @model_validator(mode="after")
    def _size_has_a_limit(self) -> Self:
        if self.file_size_mb.upper is None:
            raise ValueError("'file_size_mb' needs an upper limit ('lt' or 'le')")
        return self


class FieldSpec(_Strict):
    """One input of a model: a key of the JSON body sent to RunComfy."""

    name: str = Field(min_length=1)
    option: str | None = None
    type: FieldType
    title: str = ""
    description: str = ""
    required: bool = False
    default: JsonScalar | None = None
    enum: tuple[JsonScalar, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = Field(default=None, ge=1)
    min_items: int | None = Field(default=None, ge=0)
    max_items: int | None = Field(default=None, ge=0)
    items: FieldSpec | None = None
    properties: tuple[FieldSpec, ...] | None = None
    image: ImageRules | None = None

    @property
    def option_name(self) -> str:
        """The name people type: the Discord option or the ``--flag`` of a mention."""
        return self.option or self.name

    @property
    def is_segments(self) -> bool:
        """An array of ``{prompt, duration}`` objects, which has a short text syntax."""
        props = self.items.properties if self.items is not None else None
        return props is not None and {p.name for p in props} == {"prompt", "duration"}

    @field_validator("option")
    @classmethod
    def _discord_name(cls, value: str | None) -> str | None:
        if value is not None and not _DISCORD_NAME.match(value):
            raise ValueError("must be 1-32 lower-case letters, digits, '-' or '_'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.items is not None) != (self.type == "array"):
            raise ValueError("'items' is required for type array and only allowed there")
        if (self.properties is not None) != (self.type == "object"):
            raise ValueError("'properties' is required for type object and only allowed there")
        if self.image is not None and self.type != "image":
            raise ValueError("'image' rules are only allowed on type image")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError("minimum is greater than maximum")
        if self.enum is not None and self.default is not None and self.default not in self.enum:
            raise ValueError(f"default {self.default!r} is not one of the enum values")
        return self


class PriceVariant(_Strict):
    """A price that applies when every input in ``when`` has the given value."""

    when: dict[str, JsonScalar]
    usd: float = Field(ge=0)


class PriceSpec(_Strict):
    """USD per second of video or per video; ``usd`` is null when RunComfy does not say."""

    unit: Literal["second", "video"]
    usd: float | None = Field(default=None, ge=0)
    variants: tuple[PriceVariant, ...] = ()
    source: str = ""


class SegmentsSumRule(_Strict):
    """The ``duration`` of every segment of ``segments`` adds up to the ``total`` input."""

    kind: Literal["segments_sum"]
    segments: str
    total: str
    segment_field: str = "duration"


class ModelSpec(_Strict):
    """One RunComfy model and how the bot offers it."""

    id: str
    name: str = Field(min_length=1, max_length=80)
    command: str
    kind: Literal["image-to-video", "text-to-video"]
    description: str = Field(min_length=1, max_length=100)
    fields: tuple[FieldSpec, ...] = Field(min_length=1)
    main_image: str | None = None
    end_image: str | None = None
    duration_field: str | None = "duration"
    audio_field: str | None = None  # the yes/no input that adds sound (it changes the price)
    resolution_field: str | None = None
    rules: tuple[SegmentsSumRule, ...] = ()
    price: PriceSpec
    output_key: str = DEFAULT_OUTPUT_KEY
    # The model's own words in other languages, for its command's texts: by language (as the
    # bot's catalogs name them: ja, pt_BR), each English text as the command shows it (see
    # bot/locales/bot.pot) with its translation. The bot's catalogs, when they have the text,
    # come first.
    translations: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    @field_validator("translations", mode="before")
    @classmethod
    def _languages(cls, value: object) -> object:
        """``{"ja": {"English": "日本語"}}`` as written in the file, kept as pairs (frozen)."""
        if not isinstance(value, dict):
            return value
        pairs = []
        for language, texts in value.items():
            if not _LANGUAGE.match(str(language)) or not isinstance(texts, dict):
                raise ValueError(f"{language!r}: a language (ja, pt_BR) with its texts")
            for english, words in texts.items():
                if not isinstance(words, str) or not 1 <= len(words) <= 100:
                    raise ValueError(f"{language}: {english!r}: 1 to 100 characters")
            pairs.append((str(language), tuple((str(k), str(v)) for k, v in texts.items())))
        return tuple(pairs)

    @field_validator("id")
    @classmethod
    def _model_id(cls, value: str) -> str:
        if not _MODEL_ID.fullmatch(value):
            raise ValueError("must be a RunComfy model id: lower-case words joined by '/' "
                             "(e.g. kling/kling-2-1/pro/image-to-video)")
        return value

    @field_validator("command")
    @classmethod
    def _command_name(cls, value: str) -> str:
        if not _DISCORD_NAME.match(value):
            raise ValueError("must be 1-32 lower-case letters, digits, '-' or '_'")
        return value

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def image_fields(self) -> tuple[FieldSpec, ...]:
        return tuple(f for f in self.fields if f.type == "image")

    @model_validator(mode="after")
    def _references(self) -> Self:
        names = [f.name for f in self.fields]
        options = [f.option_name for f in self.fields]
        for label, values in (("field name", names), ("option name", options)):
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"duplicate {label}: {', '.join(dupes)}")
        for bad in (o for o in options if not _DISCORD_NAME.match(o)):
            raise ValueError(f"field {bad!r} needs an 'option' name Discord accepts")
        if self.kind == "image-to-video" and self.main_image is None:
            raise ValueError("an image-to-video model needs 'main_image'")
        for ref in (self.main_image, self.end_image):
            if ref is not None and (ref not in names or self.field(ref).type != "image"):
                raise ValueError(f"{ref!r} is not an image field of this model")
        for label, ref in (("duration_field", self.duration_field),
                           ("audio_field", self.audio_field),
                           ("resolution_field", self.resolution_field)):
            if ref is not None and ref not in names:
                raise ValueError(f"{label} {ref!r} is not a field")
        for rule in self.rules:
            for ref in (rule.segments, rule.total):
                if ref not in names:
                    raise ValueError(f"rule {rule.kind} names unknown field {ref!r}")
        for variant in self.price.variants:
            for key in variant.when:
                if key not in names:
                    raise ValueError(f"price variant names unknown field {key!r}")
        return self
