"""Every text a model reads as a prompt, so that moderation sees each of them: the prompt, the
negative prompt, and each shot of a multi-shot prompt."""

from __future__ import annotations

from typing import Any

from bot.catalog import Catalog
from bot.prompts import prompt_texts
from bot.validation import build_request


def test_a_multi_shot_body_as_validation_builds_it(catalog: Catalog) -> None:
    body = build_request(catalog.by_command("kling-3-0-4k"), {
        "prompt": "A coffee shop", "negative_prompt": "blurry", "duration": 8,
        "multi_prompt": "5: a wide shot | 3: a macro of the cup"})
    assert prompt_texts(body) == ["A coffee shop", "blurry", "a wide shot", "a macro of the cup"]


def test_texts_come_in_the_order_of_the_body() -> None:
    body = {"negative_prompt": "dark", "multi_prompt": [{"duration": 5, "prompt": "one"}],
            "prompt": "main"}
    assert prompt_texts(body) == ["dark", "one", "main"]


def test_only_prompt_keys_count() -> None:
    """``prompt_extend`` is a yes/no option and ``template`` a style name: neither is read as
    text by the model; a key must be ``prompt`` or end in ``_prompt``."""
    body: dict[str, Any] = {"prompt": "a street", "prompt_extend": True, "template": "flying",
                            "reprompt": "not one", "shot_type": "customize", "seed": 7,
                            "img_url": "https://cdn.example/a.png", "style_prompt": "noir"}
    assert prompt_texts(body) == ["a street", "noir"]


def test_a_list_of_prompts_gives_each_of_its_strings() -> None:
    body = {"negative_prompt": ["blurry", 3, None, "dark"], "prompt": None}
    assert prompt_texts(body) == ["blurry", "dark"]


def test_shots_are_read_in_any_list_and_at_any_depth_of_lists() -> None:
    body: dict[str, Any] = {
        "elements": [{"frontal_image_url": "https://cdn.example/face.png",
                      "reference_image_urls": ["https://cdn.example/r.png"]}],
        "scenes": [{"shots": [{"prompt": "deep"}, "not a shot"], "prompt": "scene"}],
        "multi_prompt": [{"prompt": "first", "duration": 2}, {"duration": 3},
                         {"prompt": "", "duration": 1}],
    }
    assert prompt_texts(body) == ["deep", "scene", "first", ""]


def test_a_body_without_prompts_has_none() -> None:
    assert prompt_texts({}) == []
    assert prompt_texts({"duration": 5, "multi_prompt": []}) == []
