"""Loading the model catalog: one JSON file per model, from the package and the operator."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path

from pydantic import ValidationError

from bot.catalog.spec import ModelSpec, PriceSpec

BUILTIN_DIR = Path(str(resources.files("bot.catalog") / "models"))


class CatalogError(Exception):
    """A catalog file that cannot be used; the message names the file and the field."""


class Catalog:
    """The models the bot offers, looked up by slash-command name or RunComfy id."""

    def __init__(self, models: Iterable[ModelSpec]) -> None:
        self._by_command: dict[str, ModelSpec] = {}
        self._by_id: dict[str, ModelSpec] = {}
        for model in models:
            for index, key in ((self._by_command, model.command), (self._by_id, model.id)):
                if key in index:
                    raise CatalogError(f"two catalog files define {key!r}")
                index[key] = model

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(sorted(self._by_command.values(), key=lambda m: m.command))

    def __len__(self) -> int:
        return len(self._by_command)

    def by_command(self, command: str) -> ModelSpec:
        return self._by_command[command]

    def by_id(self, model_id: str) -> ModelSpec | None:
        """``None`` for a model the catalog no longer has (jobs outlive catalog files)."""
        return self._by_id.get(model_id)

    def with_prices(self, overrides: Mapping[str, PriceSpec]) -> Catalog:
        """A copy where the operator's prices (keyed by command or model id) replace ours."""
        unknown = sorted(k for k in overrides if k not in self._by_command and k not in self._by_id)
        if unknown:
            raise CatalogError(f"price override for unknown model: {', '.join(unknown)}")
        models = []
        for model in self:
            price = overrides.get(model.command) or overrides.get(model.id)
            models.append(model.model_copy(update={"price": price}) if price else model)
        return Catalog(models)


def load_model_file(path: Path) -> ModelSpec:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path}: cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{path}: not valid JSON: {exc}") from None
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _describe_location(data, first["loc"])
        raise CatalogError(f"{path}: {where}: {first['msg']}") from None


def load_catalog(*extra_dirs: Path) -> Catalog:
    """The built-in models plus every ``*.json`` in ``extra_dirs`` (the operator's models)."""
    files: list[Path] = []
    for directory in (BUILTIN_DIR, *extra_dirs):
        if not directory.is_dir():
            raise CatalogError(f"{directory}: catalog directory does not exist")
        files.extend(sorted(directory.glob("*.json")))
    return Catalog(load_model_file(path) for path in files)


def _describe_location(data: object, loc: tuple[int | str, ...]) -> str:
    """``fields[3] (duration).enum`` rather than pydantic's ``fields.3.enum``."""
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int):
            parts.append(f"[{key}]")
            node = node[key] if isinstance(node, list) and key < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                parts.append(f" ({node['name']})")
        else:
            parts.append(f".{key}" if parts else key)
            node = node.get(key) if isinstance(node, dict) else None
    return "".join(parts) or "(top level)"
