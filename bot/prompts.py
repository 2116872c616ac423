"""Every text of a request that the model reads as a prompt: the prompt, the negative prompt,
each shot of a multi-shot prompt. Moderation checks all of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def prompt_texts(body: Mapping[str, Any]) -> list[str]:
    """The prompt texts of a request body, in the order the body has them: every string
    whose key is ``prompt`` or ends in ``_prompt``, at the top level or inside the items of a
    list (multi-shot prompts)."""
    texts: list[str] = []
    for key, value in body.items():
        if _is_prompt(key):
            texts.extend(_strings(value))
        if isinstance(value, list):
            for item in value:
                if isinstance(item, Mapping):
                    texts.extend(prompt_texts(item))
    return texts


def _is_prompt(key: str) -> bool:
    return key == "prompt" or key.endswith("_prompt")


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []
