"""The schema's defaults, filled in as RunComfy does: top-level inputs and the keys of each
object in an array (a ``multi_prompt`` segment without ``duration`` lasts its default 5 s)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bot.catalog.spec import FieldSpec, ModelSpec


def with_defaults(model: ModelSpec, body: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``body`` (keyed by field name) where every missing input with a default has it.

    Values of the wrong type are left as they are, for the checks to name.
    """
    return _fill(model.fields, body)


def _fill(fields: Iterable[FieldSpec], given: Mapping[str, Any]) -> dict[str, Any]:
    filled = dict(given)
    for field in fields:
        if field.name in filled:
            filled[field.name] = _fill_value(field, filled[field.name])
        elif field.default is not None:
            filled[field.name] = field.default
    return filled


def _fill_value(field: FieldSpec, value: object) -> object:
    if field.items is not None and isinstance(value, list):
        return [_fill_value(field.items, item) for item in value]
    if field.properties is not None and isinstance(value, dict):
        return _fill(field.properties, value)
    return value
