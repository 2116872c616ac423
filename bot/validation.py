"""From what a member typed and attached to the exact JSON body RunComfy gets, or a clear "no".

Every rule of the catalog is checked here, before anything is paid for. Each problem is one
sentence that names the option as the member sees it and the rule it breaks.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from bot.catalog import MB, Bound, FieldSpec, ImageRules, ModelSpec, ratio, with_defaults
from bot.errors import UserError
from bot.i18n import N_, _, in_source, ngettext, number, units
from bot.images import ImageFacts

_TRUE = {"true", "yes", "on", "1", "y"}
_FALSE = {"false", "no", "off", "0", "n"}
_SEGMENT = re.compile(r"^\s*(\d+)\s*s?\s*[:=]\s*(.*?)\s*$", re.DOTALL)
MAX_DIGITS = 15  # a whole number longer than this is no option value (and overflows a float)
_FORMAT_NAMES = {"jpeg": "JPEG", "png": "PNG", "webp": "WebP", "bmp": "BMP", "gif": "GIF"}
PX = N_("{amount} px")  # the units of the image rules: an image's sides
MEGABYTES = N_("{amount} MB")  # and a file's size


class InvalidOptions(UserError):
    """The inputs break the model's rules; ``problems`` are sentences for the member."""

    def __init__(self, problems: list[str]) -> None:
        lines = problems[0] if len(problems) == 1 else "\n".join(f"- {p}" for p in problems)
        super().__init__(_("The video was not started:\n{problems}", problems=lines))
        self.problems = problems


def build_request(
    model: ModelSpec,
    options: Mapping[str, object],
    images: Mapping[str, ImageFacts] | None = None,
    *,
    headers_pending: bool = False,
) -> dict[str, Any]:
    """The body to submit for ``model``, with defaults applied and every rule checked.

    ``options`` are keyed by option name (what Discord or a ``--flag`` gives, typed or as
    text); ``images`` by the option name of the image field. Raises ``InvalidOptions``.
    With ``headers_pending``, image checks that need the image's own bytes are left for a
    second call once they are read (so that errors can be shown before downloading).
    """
    images = images or {}
    problems: list[str] = []
    body: dict[str, Any] = {}
    known = {f.option_name for f in model.fields}
    for name in sorted(set(options) | set(images)):
        if name not in known:
            problems.append(_(
                "`{option}` is not an option of `{command}`; it takes {options}.",
                option=name, command=model.command,
                options=", ".join(f"`{o}`" for o in sorted(known))))
    for field in model.fields:
        label = field.option_name
        if field.type == "image" and label in images:
            facts = images[label]
            problems.extend(check_image(label, facts, field.image or ImageRules(),
                                        headers_pending=headers_pending))
            body[field.name] = facts.url
            continue
        raw = options.get(label)
        if field.type == "image" and raw is not None:
            problems.append(_("`{option}` must be an attached image, not text.",
                              option=label))
            continue
        if raw is None or (isinstance(raw, str) and not raw.strip() and field.type != "string"):
            if field.required:
                problems.append(_("`{option}` is required: attach an image.", option=label)
                                if field.type == "image"
                                else _("`{option}` is required.", option=label))
            elif field.default is not None:
                body[field.name] = field.default
            continue
        try:
            value = coerce(field, raw, label)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        found = check_value(field, value, label)
        if field.required and isinstance(value, str) and not value.strip():
            found.append(_("`{option}` is required and cannot be empty.", option=label))
        problems.extend(found)
        body[field.name] = value
    if not problems:
        body = with_defaults(model, body)
        problems.extend(check_rules(model, body))
    if problems:
        raise InvalidOptions(problems)
    return body


def check_body(model: ModelSpec, body: Mapping[str, Any]) -> list[str]:
    """Problems with a body as RunComfy receives it (keys are field names, images are URLs).

    The schema's defaults are applied first, as RunComfy does: what is left out is not wrong.
    """
    problems = [f"`{key}` is not an input of this model." for key in body
                if key not in {f.name for f in model.fields}]
    body = with_defaults(model, body)
    for field in model.fields:
        if field.name in body:
            problems.extend(check_value(field, body[field.name], field.name))
        elif field.required:
            problems.append(f"`{field.name}` is required.")
    return problems or check_rules(model, body)


def check_rules(model: ModelSpec, body: Mapping[str, Any]) -> list[str]:
    """The rules that tie several inputs together."""
    problems = []
    for rule in model.rules:
        segments = body.get(rule.segments)
        if not segments:
            continue
        total = body.get(rule.total)
        added = sum(int(s.get(rule.segment_field, 0)) for s in segments)
        seg, tot = model.field(rule.segments), model.field(rule.total)
        if total is None:
            problems.append(_("`{segments}` needs `{total}`: its segment durations add up "
                              "to it.", segments=seg.option_name, total=tot.option_name))
        elif added != total:
            problems.append(_(
                "`{segments}` segment durations must add up to `{total}` ({seconds}); yours "
                "add up to {added}.", segments=seg.option_name, total=tot.option_name,
                seconds=units((total, "second")), added=units((added, "second"))))
    return problems


def coerce(field: FieldSpec, raw: object, label: str) -> object:
    """A typed value from what Discord gives, or from text typed after a ``--flag``."""
    if not isinstance(raw, str) or field.type == "string":
        return _match_enum(field, raw)
    text = raw.strip()
    if field.type == "integer":
        if not re.fullmatch(r"[+-]?\d+", text):
            raise ValueError(_("`{option}` must be a whole number; yours is {value}.",
                               option=label, value=_quote(text)))
        digits = len(text.lstrip("+-"))
        if digits > MAX_DIGITS:
            raise ValueError(ngettext(
                "`{option}` must be a whole number of at most {n} digit; yours has {digits}.",
                "`{option}` must be a whole number of at most {n} digits; yours has {digits}.",
                MAX_DIGITS, option=label, digits=number(digits)))
        return int(text)
    if field.type == "number":
        try:
            parsed = float(text)
        except ValueError:
            raise ValueError(_("`{option}` must be a number; yours is {value}.",
                               option=label, value=_quote(text))) from None
        if not math.isfinite(parsed):
            raise ValueError(_("`{option}` must be a finite number; yours is {value}.",
                               option=label, value=_quote(text)))
        return parsed
    if field.type == "boolean":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(_("`{option}` must be true or false; yours is {value}.",
                           option=label, value=_quote(text)))
    if field.type == "array":
        return _parse_array(field, text, label)
    return text


def check_value(field: FieldSpec, value: object, label: str) -> list[str]:
    """Problems with one typed value (the value is never changed)."""
    kind = field.type
    if kind == "string" or kind in ("image", "video"):
        if not isinstance(value, str):
            return [_("`{option}` must be text.", option=label)]
        if kind in ("image", "video") and not re.match(r"^https?://\S+$", value):
            return [_("`{option}` must be a public http(s) URL of the image.", option=label)
                    if kind == "image" else
                    _("`{option}` must be a public http(s) URL of the video.", option=label)]
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return [_("`{option}` must be a whole number; yours is {value}.",
                      option=label, value=_quote(value))]
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return [_("`{option}` must be a number; yours is {value}.",
                      option=label, value=_quote(value))]
    elif kind == "boolean":
        if not isinstance(value, bool):
            return [_("`{option}` must be true or false; yours is {value}.",
                      option=label, value=_quote(value))]
    elif kind == "array":
        return _check_array(field, value, label)
    elif kind == "object":
        return _check_object(field, value, label)
    return _check_bounds(field, value, label)


def check_image(label: str, facts: ImageFacts, rules: ImageRules, *,
                headers_pending: bool = False) -> list[str]:
    """Problems with an attached image, from its metadata and, where read, its header."""
    accepted = _join_or([_FORMAT_NAMES[f] for f in rules.formats])
    name = f"`{facts.filename}`" if facts.filename else _("yours")
    if not facts.looks_like_image:
        return [_("`{option}` must be a {formats} image; {file} is {kind}.", option=label,
                  formats=accepted, file=name, kind=facts.content_type)]
    if facts.unreadable:
        return [_("`{option}` could not be read as an image; {file} seems damaged or is not "
                  "an image. Send a {formats} file.", option=label, file=name,
                  formats=accepted)]
    if not rules.size_allowed(facts.size_bytes):
        return [_size_problem(label, name, facts.size_bytes, rules.file_size_mb)]
    if facts.format is not None and facts.format not in rules.formats:
        return [_("`{option}` must be a {formats} image; {file} is {kind}.", option=label,
                  formats=accepted, file=name,
                  kind=_FORMAT_NAMES.get(facts.format, facts.format.upper()))]
    if headers_pending and facts.needs_header(rules):
        return []
    if facts.width is None or facts.height is None or facts.needs_header(rules):
        return [_("`{option}`: I could not read the image's size; send a {formats} file.",
                  option=label, formats=accepted)]
    problems = _check_pixels(label, facts.width, facts.height, rules)
    if not rules.allow_alpha and facts.has_alpha:
        problems.append(_("`{option}` must not have transparency (an alpha channel); "
                          "flatten it or send a JPEG.", option=label))
    return problems


def _check_pixels(label: str, width: int, height: int, rules: ImageRules) -> list[str]:
    size = f"{width}x{height}"
    problems = []
    for refused, side in ((Bound.too_low, _lower), (Bound.too_high, _upper)):
        if refused(rules.width, width) or refused(rules.height, height):
            rule = _per_side(side(rules.width, PX), side(rules.height, PX))
            problems.append(_("`{option}` must be {rule}; yours is {size}.", option=label,
                              rule=rule, size=size))
    shape = width / height
    low = ratio(rules.min_aspect) if rules.min_aspect else 0.0
    high = ratio(rules.max_aspect) if rules.max_aspect else math.inf
    if not low <= shape <= high:
        problems.append(_(
            "`{option}` must have an aspect ratio between {low} and {high} (width:height); "
            "yours is {size}.", option=label, low=rules.min_aspect or "0:1",
            high=rules.max_aspect or "1:0", size=size))
    return problems


def _lower(bound: Bound, unit: str) -> str | None:
    """The low end of ``bound`` as the page states it: ``>`` is "more than", ``>=`` "at least";
    ``unit`` is ``PX`` or ``MEGABYTES``."""
    if bound.gt is not None:
        return _("more than {amount}", amount=_(unit, amount=_amount(bound.gt)))
    return None if bound.ge is None else _("at least {amount}",
                                           amount=_(unit, amount=_amount(bound.ge)))


def _upper(bound: Bound, unit: str) -> str | None:
    """The high end: ``<`` is "less than", ``<=`` "at most"."""
    if bound.lt is not None:
        return _("less than {amount}", amount=_(unit, amount=_amount(bound.lt)))
    return None if bound.le is None else _("at most {amount}",
                                           amount=_(unit, amount=_amount(bound.le)))


def _per_side(width: str | None, height: str | None) -> str:
    if width == height:
        return _("{rule} on each side", rule=width)
    sides = ([_("{rule} wide", rule=width)] if width is not None else []) + (
        [_("{rule} high", rule=height)] if height is not None else [])
    return _("{width} and {height}", width=sides[0], height=sides[1]) if len(sides) == 2 \
        else "".join(sides)


def _size_problem(label: str, name: str, size_bytes: int, bound: Bound) -> str:
    rule = (_upper(bound, MEGABYTES) if bound.too_high(size_bytes / MB)
            else _lower(bound, MEGABYTES))
    shown = round(size_bytes / MB, 1)
    # Rounding must not hide why: 50 MB and 1 byte is over "at most 50 MB", not "50.0 MB".
    if bound.allows(shown):
        grouped = f"{size_bytes:,}" if in_source() else number(size_bytes)
        size = ngettext("{bytes} byte", "{bytes} bytes", size_bytes, bytes=grouped)
    else:
        megabytes = f"{shown:.1f}" if in_source() else number(shown)
        size = _(MEGABYTES, amount=megabytes)
    return _("`{option}` must be {rule}; {file} is {size}.", option=label, rule=rule,
             file=name, size=size)


def _check_bounds(field: FieldSpec, value: object, label: str) -> list[str]:
    if field.enum is not None and value not in field.enum:
        choices = [_show(v) for v in field.enum]
        if len(choices) == 1:
            return [_("`{option}` must be {choice}; yours is {value}.", option=label,
                      choice=choices[0], value=_quote(value))]
        return [_("`{option}` must be one of {choices}; yours is {value}.", option=label,
                  choices=_join_or(choices), value=_quote(value))]
    if isinstance(value, str) and field.max_length is not None and len(value) > field.max_length:
        return [ngettext("`{option}` must be at most {n} character; yours has {length}.",
                         "`{option}` must be at most {n} characters; yours has {length}.",
                         field.max_length, option=label, length=number(len(value)))]
    if isinstance(value, int | float) and not isinstance(value, bool):
        # Bounds and values stay as the member types them (``0.5``, never ``0,5``).
        low, high = field.minimum, field.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            if low is not None and high is not None:
                return [_("`{option}` must be between {low} and {high}; yours is {value}.",
                          option=label, low=_g(low), high=_g(high), value=_g(value))]
            if low is not None:
                return [_("`{option}` must be at least {low}; yours is {value}.",
                          option=label, low=_g(low), value=_g(value))]
            assert high is not None  # it is the bound the value is over
            return [_("`{option}` must be at most {high}; yours is {value}.",
                      option=label, high=_g(high), value=_g(value))]
    return []


def _check_array(field: FieldSpec, value: object, label: str) -> list[str]:
    if not isinstance(value, list):
        return [_("`{option}` must be a list.", option=label)]
    count = len(value)
    if field.max_items is not None and count > field.max_items:
        return [ngettext("`{option}` can have at most {n} item; yours has {count}.",
                         "`{option}` can have at most {n} items; yours has {count}.",
                         field.max_items, option=label, count=number(count))]
    if field.min_items is not None and count < field.min_items:
        return [ngettext("`{option}` needs at least {n} item; yours has {count}.",
                         "`{option}` needs at least {n} items; yours has {count}.",
                         field.min_items, option=label, count=number(count))]
    assert field.items is not None  # the catalog's validator guarantees it
    problems = []
    for index, item in enumerate(value, start=1):
        problems.extend(check_value(field.items, item, f"{label}[{index}]"))
    return problems


def _check_object(field: FieldSpec, value: object, label: str) -> list[str]:
    if not isinstance(value, dict):
        return [_("`{option}` must be an object with {keys}.", option=label,
                  keys=_keys(field))]
    props = {p.name: p for p in field.properties or ()}
    problems = [_("`{option}` has an unknown key `{key}`; it takes {keys}.", option=label,
                  key=key, keys=_keys(field))
                for key in value if key not in props]
    for name, prop in props.items():
        if name in value:
            problems.extend(check_value(prop, value[name], f"{label}.{name}"))
        elif prop.required:
            problems.append(_("`{option}` needs `{key}`.", option=label, key=name))
    return problems


def _parse_array(field: FieldSpec, text: str, label: str) -> object:
    """JSON for any array; ``5: a cat walks | 5: it sits`` for prompt segments."""
    if text.startswith("["):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            # exc.msg is Python's own words (English): what the parser says, as it says it
            raise ValueError(_("`{option}` is not valid JSON: {error} at character {place}.",
                               option=label, error=exc.msg, place=number(exc.pos + 1))
                             ) from None
        except RecursionError:
            raise ValueError(_("`{option}` is not valid JSON here: it is nested too deeply.",
                               option=label)) from None
        except ValueError:  # a number too long for Python
            raise ValueError(_("`{option}` is not valid JSON here: a number in it is too "
                               "long.", option=label)) from None
    if not field.is_segments:
        raise ValueError(_("`{option}` must be a JSON list, e.g. [{{...}}].", option=label))
    segments = []
    for index, part in enumerate(re.split(r"\||\n", text), start=1):
        match = _SEGMENT.match(part)
        if not match or not match.group(2):
            raise ValueError(_(
                "`{option}` segment {segment} must look like `5: what happens`; yours is "
                "{value}. Separate segments with `|`.", option=label, segment=number(index),
                value=_quote(part.strip())))
        segments.append({"prompt": match.group(2), "duration": int(match.group(1))})
    return segments


def _match_enum(field: FieldSpec, raw: object) -> object:
    """``480p`` for ``480P``: text choices match regardless of case."""
    if isinstance(raw, str) and field.enum is not None:
        for choice in field.enum:
            if isinstance(choice, str) and choice.lower() == raw.strip().lower():
                return choice
    return raw


def _keys(field: FieldSpec) -> str:
    return ", ".join(f"`{p.name}`" for p in field.properties or ())


def _show(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _quote(value: object) -> str:
    if not isinstance(value, str):
        return _show(value) if isinstance(value, int | float) else json.dumps(value)[:40]
    return f'"{value[:40]}…"' if len(value) > 40 else f'"{value}"'


def _join_or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else _("{choices} or {last}",
                                              choices=", ".join(items[:-1]), last=items[-1])


def _g(value: float) -> str:
    """A bound or value of a number option as the member types it (``0.5``, never ``0,5``)."""
    return f"{value:g}"


def _amount(value: float) -> str:
    """A size in an image rule: ``1.5`` (as the page has it) in English, ``1,5`` in German."""
    return f"{value:g}" if in_source() else number(value)
