"""``@Bot a zebra turns its head --model kling-2-1 --duration 10``: what a mention asks for,
and what a member reads when it cannot be understood."""

from __future__ import annotations

import pytest

from bot.catalog import Catalog
from bot.errors import UserError
from bot.mentions import MentionRequest, parse_mention

DEFAULT = "kling-2-1"


def parse(catalog: Catalog, text: str, default: str = DEFAULT) -> MentionRequest:
    return parse_mention(text, catalog, default)


def refusal(catalog: Catalog, text: str) -> str:
    with pytest.raises(UserError) as refused:
        parse(catalog, text)
    return str(refused.value)


def test_words_are_the_prompt_and_flags_the_options(catalog: Catalog) -> None:
    asked = parse(catalog, "<@1234> a zebra turns its head --model wan-2-2 --resolution 1080P"
                           " --seed 7")
    assert asked.model.command == "wan-2-2"
    assert asked.options == {"resolution": "1080P", "seed": "7",
                             "prompt": "a zebra turns its head"}


def test_the_server_default_model_when_none_is_named(catalog: Catalog) -> None:
    assert parse(catalog, "<@1234> a zebra").model.command == DEFAULT
    assert parse(catalog, "a coffee shop", default="kling-3-0-4k").model.command == \
        "kling-3-0-4k"


def test_mentions_of_the_bot_are_not_part_of_the_prompt(catalog: Catalog) -> None:
    """Both forms Discord writes (``<@id>``, and ``<@!id>`` for a nickname), anywhere."""
    asked = parse(catalog, "<@!1234> a zebra<@1234>turns")
    assert asked.options == {"prompt": "a zebra turns"}


def test_flags_are_read_the_ways_members_write_them(catalog: Catalog) -> None:
    asked = parse(catalog, '--MODEL=Kling-3-0 --Negative-Prompt "blurry, dark" '
                           "--duration=8 a woman on a cliff --generate-audio")
    assert asked.model.command == "kling-3-0"
    assert asked.options == {"negative_prompt": "blurry, dark", "duration": "8",
                             "generate_audio": "true", "prompt": "a woman on a cliff"}


def test_a_bare_flag_switches_an_option_on(catalog: Catalog) -> None:
    """Followed by another flag or by nothing; the value is checked later as any other."""
    asked = parse(catalog, "a street --model wan-2-2 --prompt_extend --seed 7 --template")
    assert asked.options == {"prompt_extend": "true", "seed": "7", "template": "true",
                             "prompt": "a street"}


def test_quotes_keep_words_together_and_are_not_part_of_the_prompt(catalog: Catalog) -> None:
    asked = parse(catalog, "a 'red fox' jumps \"over the\" fence --aspect_ratio 9:16")
    assert asked.options == {"aspect_ratio": "9:16", "prompt": "a red fox jumps over the fence"}


def test_a_double_dash_alone_is_a_word(catalog: Catalog) -> None:
    assert parse(catalog, "wait -- then jump --").options == {"prompt": "wait -- then jump --"}


def test_the_last_of_a_repeated_flag_counts(catalog: Catalog) -> None:
    assert parse(catalog, "a --duration 5 --duration 10").options == {
        "duration": "10", "prompt": "a"}


def test_a_mention_with_no_words_has_no_prompt(catalog: Catalog) -> None:
    assert parse(catalog, "<@1234>").options == {}
    assert parse(catalog, "<@1234> --duration 10").options == {"duration": "10"}


def test_an_explicit_prompt_flag_is_taken(catalog: Catalog) -> None:
    assert parse(catalog, "--prompt 'a fox in the snow' --duration 10").options == {
        "prompt": "a fox in the snow", "duration": "10"}


def test_an_unknown_model_lists_the_models(catalog: Catalog) -> None:
    assert refusal(catalog, "<@1234> a zebra --model Kling-9") == (
        "There is no model `Kling-9`; pick one of `kling-1-6`, `kling-2-1`, `kling-3-0`, "
        "`kling-3-0-4k`, `wan-2-2`.")


def test_unknown_flags_are_named_with_what_the_model_takes(catalog: Catalog) -> None:
    """Every unknown flag, in order; images come as attachments, never as flags."""
    assert refusal(catalog, "a cliff --model kling-3-0 --zoom 2 --image x.png --sped 1") == (
        "`kling-3-0` has no option `--image`, `--sped`, `--zoom`. It takes `--model`, "
        "`--multi_prompt`, `--duration`, `--generate_audio`, `--elements`, `--shot_type`, "
        "`--negative_prompt`, `--cfg_scale`; the rest of the message is the prompt.")


def test_a_flag_of_another_model_is_unknown_to_this_one(catalog: Catalog) -> None:
    assert refusal(catalog, "a street --resolution 1080P") == (
        "`kling-2-1` has no option `--resolution`. It takes `--model`, `--duration`, "
        "`--aspect_ratio`, `--negative_prompt`, `--cfg_scale`; the rest of the message is the "
        "prompt.")
    assert refusal(catalog, "a coffee shop --model kling-3-0-4k --end-image") == (
        "`kling-3-0-4k` has no option `--end_image`. It takes `--model`, `--negative_prompt`, "
        "`--duration`, `--aspect_ratio`, `--cfg_scale`, `--sound`, `--multi_prompt`, "
        "`--shot_type`; the rest of the message is the prompt.")


def test_an_unclosed_quote(catalog: Catalog) -> None:
    assert refusal(catalog, "<@1234> a \"zebra --model wan-2-2") == (
        "I could not read that: a quote is not closed.")


def test_an_unquoted_prompt_flag_keeps_every_word(catalog: Catalog) -> None:
    request = parse_mention("<@1> --prompt a cat walks on the beach --duration 10", catalog,
                            "kling-2-1")
    assert request.options == {"prompt": "a cat walks on the beach", "duration": "10"}
