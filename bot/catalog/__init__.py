"""The model catalog: which RunComfy models the bot offers and what their inputs are."""

from bot.catalog.defaults import with_defaults
from bot.catalog.loader import BUILTIN_DIR, Catalog, CatalogError, load_catalog, load_model_file
from bot.catalog.spec import (
    DEFAULT_OUTPUT_KEY,
    MB,
    Bound,
    FieldSpec,
    ImageRules,
    ModelSpec,
    PriceSpec,
    ratio,
)

__all__ = [
    "BUILTIN_DIR",
    "DEFAULT_OUTPUT_KEY",
    "MB",
    "Bound",
    "Catalog",
    "CatalogError",
    "FieldSpec",
    "ImageRules",
    "ModelSpec",
    "PriceSpec",
    "load_catalog",
    "load_model_file",
    "ratio",
    "with_defaults",
]
