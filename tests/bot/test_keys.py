"""Servers' RunComfy keys sealed with BOT_SECRET_KEY: round trip, rotation, wrong and malformed
keys (whose messages never hold a key), and what of a key may be shown."""

from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet

from bot.keys import KeyBox, KeyBoxError, key_ending, new_secret_key

RUNCOMFY_KEY = "rc-live-8d1f0a77c2b94e5f9a3e6b1d2c4f7a90"


def box(value: str) -> KeyBox:
    made = KeyBox.from_env(value)
    assert made is not None
    return made


def test_a_new_secret_key_is_32_random_bytes_in_url_safe_base64() -> None:
    key = new_secret_key()
    assert len(base64.urlsafe_b64decode(key)) == 32
    assert key != new_secret_key()
    Fernet(key)  # accepted as it is


def test_round_trip() -> None:
    keys = box(new_secret_key())
    sealed = keys.seal(RUNCOMFY_KEY)
    assert keys.open(sealed) == RUNCOMFY_KEY
    assert keys.open(f" {sealed}\n") == RUNCOMFY_KEY  # as pasted or read back with a newline
    assert keys.seal(RUNCOMFY_KEY) != sealed  # a fresh IV each time


def test_the_sealed_text_does_not_hold_the_key() -> None:
    sealed = box(new_secret_key()).seal(RUNCOMFY_KEY)
    assert RUNCOMFY_KEY not in sealed
    assert RUNCOMFY_KEY[-8:] not in sealed
    assert RUNCOMFY_KEY.encode() not in base64.urlsafe_b64decode(sealed)
    assert sealed.isascii()


def test_rotation_the_old_key_still_opens_and_rotate_moves_to_the_new() -> None:
    old, new = new_secret_key(), new_secret_key()
    sealed_with_old = box(old).seal(RUNCOMFY_KEY)
    rotating = box(f"{new}, {old}")
    assert rotating.key_count == 2
    assert rotating.open(sealed_with_old) == RUNCOMFY_KEY
    rotated = rotating.rotate(sealed_with_old)
    assert box(new).open(rotated) == RUNCOMFY_KEY  # the new key alone opens it
    with pytest.raises(KeyBoxError):
        box(old).open(rotated)
    assert box(old).open(sealed_with_old) == RUNCOMFY_KEY  # the stored text is left alone
    # The first key seals.
    assert box(new).open(rotating.seal(RUNCOMFY_KEY)) == RUNCOMFY_KEY


@pytest.mark.parametrize("use", ["open", "rotate"])
def test_a_wrong_key_does_not_open_and_says_so_without_any_key(use: str) -> None:
    right, wrong = new_secret_key(), new_secret_key()
    sealed = box(right).seal(RUNCOMFY_KEY)
    wrong_box = box(wrong)
    attempt = wrong_box.open if use == "open" else wrong_box.rotate
    with pytest.raises(KeyBoxError) as refused:
        attempt(sealed)
    message = str(refused.value)
    assert "BOT_SECRET_KEY does not open the stored RunComfy keys" in message
    for secret in (right, wrong, RUNCOMFY_KEY):
        assert secret not in message
    assert "\n" not in message
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


@pytest.mark.parametrize("sealed", ["", "not a token", "gAAAAA" + "A" * 80, "ünïcode"])
def test_text_that_is_no_token_does_not_open(sealed: str) -> None:
    with pytest.raises(KeyBoxError, match="does not open the stored RunComfy keys"):
        box(new_secret_key()).open(sealed)


@pytest.mark.parametrize("value", [None, "", "   ", "\n"])
def test_unset_or_blank_means_no_box(value: str | None) -> None:
    assert KeyBox.from_env(value) is None


@pytest.mark.parametrize(("value", "where"), [
    ("hunter2-not-a-fernet-key", "its key is not a Fernet key"),
    (base64.urlsafe_b64encode(b"k" * 16).decode(), "its key is not a Fernet key"),  # 16 bytes
    ("{good},hunter2-not-a-fernet-key", "key 2 of 2 is not a Fernet key"),
    ("hunter2-not-a-fernet-key,{good}", "key 1 of 2 is not a Fernet key"),
    ("{good},,{good}", "key 2 of 3 is empty"),
    ("{good},", "key 2 of 2 is empty"),
])
def test_a_malformed_secret_is_refused_in_one_line_that_does_not_quote_it(
    value: str, where: str,
) -> None:
    good = new_secret_key()
    value = value.format(good=good)
    with pytest.raises(KeyBoxError) as refused:
        KeyBox.from_env(value)
    message = str(refused.value)
    assert message.startswith("BOT_SECRET_KEY: ")
    assert where in message
    assert "\n" not in message
    for part in [*value.split(","), good]:
        if part.strip():
            assert part.strip() not in message
    assert refused.value.__cause__ is None
    assert refused.value.__context__ is None or refused.value.__suppress_context__


def test_the_box_does_not_show_its_keys() -> None:
    key = new_secret_key()
    assert key not in repr(box(key))
    assert repr(box(f"{key},{new_secret_key()}")) == "KeyBox(2 keys)"


def test_key_ending_shows_the_last_four_characters_and_no_more() -> None:
    assert key_ending(RUNCOMFY_KEY) == "\N{HORIZONTAL ELLIPSIS}7a90"
    assert key_ending(f"  {RUNCOMFY_KEY}\n") == "\N{HORIZONTAL ELLIPSIS}7a90"
    assert key_ending("abcdefghijklmnop") == "\N{HORIZONTAL ELLIPSIS}mnop"


@pytest.mark.parametrize("short", ["", "abcd", "abcdefgh", "abcdefghijklmno"])
def test_a_short_key_shows_nothing_of_itself(short: str) -> None:
    assert key_ending(short) == "\N{HORIZONTAL ELLIPSIS}"
