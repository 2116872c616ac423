"""Forty-odd bad inputs through Discord: each refused with a clear reason, ephemerally (or as a
reply to a mention), with no call to RunComfy and nothing written to the ledger."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.discord_world import World
from tests.images import image_bytes

PNG = image_bytes("png", 800, 600)
JPEG = image_bytes("jpeg", 1024, 768)
ACCEPTED = "JPEG, PNG, WebP or BMP"
HUGE_PNG = PNG + bytes(11 * 1024 * 1024)  # a real header, and 11 MB


@dataclass(frozen=True)
class Bad:
    via: str  # slash, mention, menu, upload, cancel
    target: str  # the command, or the mention's text
    expected: str
    options: dict[str, Any] = field(default_factory=dict)
    image: tuple[str, bytes] | None = ("photo.png", PNG)


def refused(text: str) -> str:
    return f"The video was not started:\n{text}"


CASES: list[Bad] = [
    # Slash commands: what Discord lets through but the model refuses.
    Bad("slash", "kling-2-1", refused(f"`image` must be a {ACCEPTED} image; `anim.gif` is GIF."),
        {"prompt": "x"}, ("anim.gif", image_bytes("gif", 400, 400))),
    Bad("slash", "kling-2-1", refused(f"`image` must be a {ACCEPTED} image; `notes.txt` is "
                                      "text/plain."), {"prompt": "x"}, ("notes.txt", b"hi")),
    Bad("slash", "kling-2-1", refused(f"`image` must be a {ACCEPTED} image; `doc.pdf` is "
                                      "application/pdf."), {"prompt": "x"}, ("doc.pdf", b"%PDF")),
    Bad("slash", "kling-2-1", refused(f"`end_image` must be a {ACCEPTED} image; `scan.tiff` is "
                                      "TIFF."),
        {"prompt": "x", "end_image": ("scan.tiff", image_bytes("tiff", 400, 400))}),
    Bad("slash", "kling-2-1", refused("`image` could not be read as an image; `broken.png` "
                                      f"seems damaged or is not an image. Send a {ACCEPTED} "
                                      "file."), {"prompt": "x"}, ("broken.png", b"\x89PNG..")),
    Bad("slash", "kling-2-1", refused("`prompt` is required and cannot be empty."),
        {"prompt": "   "}),
    Bad("slash", "kling-2-1", refused("`image` must be at most 50 MB; `huge.png` is 51.0 MB."),
        {"prompt": "x"}, ("huge.png", PNG + bytes(51 * 1024 * 1024))),
    Bad("slash", "kling-1-6", refused("`image` must be more than 300 px on each side; yours is "
                                      "300x600."), {}, ("s.png", image_bytes("png", 300, 600))),
    Bad("slash", "kling-1-6", refused("`image` must have an aspect ratio between 2:5 and 5:2 "
                                      "(width:height); yours is 400x1200."), {},
        ("tall.png", image_bytes("png", 400, 1200))),
    Bad("slash", "kling-1-6", refused("`image` must have an aspect ratio between 2:5 and 5:2 "
                                      "(width:height); yours is 1300x400."), {},
        ("wide.jpg", image_bytes("jpeg", 1300, 400))),
    Bad("slash", "kling-1-6", refused("`end_image` must be more than 300 px on each side; yours "
                                      "is 200x200."),
        {"end_image": ("end.png", image_bytes("png", 200, 200))}),
    Bad("slash", "kling-1-6", refused("`image` must be less than 10 MB; `big.png` is 11.0 MB."), {},
        ("big.png", HUGE_PNG)),
    Bad("slash", "kling-3-0", refused("`multi_prompt` segment durations must add up to "
                                      "`duration` (10 s); yours add up to 9 s."),
        {"prompt": "x", "duration": 10, "multi_prompt": "5: a | 4: b"}),
    Bad("slash", "kling-3-0", refused('`multi_prompt` segment 1 must look like `5: what '
                                      'happens`; yours is "a cat walks". Separate segments '
                                      "with `|`."), {"prompt": "x", "multi_prompt": "a cat walks"}),
    Bad("slash", "kling-3-0", refused("`multi_prompt[1].duration` must be between 3 and 15; "
                                      "yours is 2."),
        {"prompt": "x", "multi_prompt": "2: a | 8: b"}),
    Bad("slash", "kling-3-0", refused("`multi_prompt` is not valid JSON: Expecting value at "
                                      "character 2."), {"prompt": "x", "multi_prompt": "[,"}),
    Bad("slash", "kling-3-0", refused("`multi_prompt` can have at most 20 items; yours has 21."),
        {"prompt": "x", "multi_prompt": " | ".join(["3: x"] * 21)}),
    Bad("slash", "kling-3-0", refused("`elements` can have at most 3 items; yours has 4."),
        {"prompt": "x", "elements": json.dumps([{}] * 4)}),
    Bad("slash", "kling-3-0", refused("`elements[1].frontal_image_url` must be a public http(s) "
                                      "URL of the image."),
        {"prompt": "x", "elements": '[{"frontal_image_url": "face.png"}]'}),
    Bad("slash", "kling-3-0", refused("`elements` must be a JSON list, e.g. [{...}]."),
        {"prompt": "x", "elements": "my face"}),
    Bad("slash", "kling-3-0", refused("`multi_prompt[1]` has an unknown key `camera`; it takes "
                                      "`prompt`, `duration`."),
        {"prompt": "x", "duration": 5,
         "multi_prompt": '[{"prompt": "a", "duration": 5, "camera": "pan"}]'}),
    Bad("slash", "kling-3-0-4k", refused("`multi_prompt` segment durations must add up to "
                                         "`duration` (5 s); yours add up to 12 s."),
        {"prompt": "x", "multi_prompt": "6: dawn | 6: dusk"}, None),
    Bad("slash", "wan-2-2", refused("`image` must not have transparency (an alpha channel); "
                                    "flatten it or send a JPEG."),
        {"prompt": "x"}, ("alpha.png", image_bytes("png", 800, 600, alpha=True))),
    Bad("slash", "wan-2-2", refused("`image` must not have transparency (an alpha channel); "
                                    "flatten it or send a JPEG."),
        {"prompt": "x"}, ("p.png", image_bytes("png", 800, 600, transparent_index=True))),
    Bad("slash", "wan-2-2", refused("`image` must be more than 360 px on each side; yours is "
                                    "300x900."), {"prompt": "x"},
        ("small.png", image_bytes("png", 300, 900))),
    Bad("slash", "wan-2-2", refused("`image` must be less than 2000 px on each side; yours is "
                                    "2400x1000."), {"prompt": "x"},
        ("big.jpg", image_bytes("jpeg", 2400, 1000))),
    Bad("slash", "wan-2-2", refused("`image` must be a JPEG, PNG, BMP or WebP image; `a.gif` "
                                    "is GIF."), {"prompt": "x"},
        ("a.gif", image_bytes("gif", 500, 500))),
    # Mentions (with the image attached): flags are free text, so anything can come.
    Bad("mention", "a zebra --duration 7", refused("`duration` must be one of 5 or 10; yours "
                                                   "is 7.")),
    Bad("mention", "a zebra --cfg_scale 1.5", refused("`cfg_scale` must be between 0 and 1; "
                                                      "yours is 1.5.")),
    Bad("mention", "a zebra --aspect_ratio 4:3", refused('`aspect_ratio` must be one of 16:9, '
                                                         '1:1 or 9:16; yours is "4:3".')),
    Bad("mention", "a zebra --duration ten", refused('`duration` must be a whole number; yours '
                                                     'is "ten".')),
    Bad("mention", "a zebra --model nope", "There is no model `nope`; pick one of `kling-1-6`, "
        "`kling-2-1`, `kling-3-0`, `kling-3-0-4k`, `wan-2-2`."),
    Bad("mention", "a zebra --sped 2", "`kling-2-1` has no option `--sped`. It takes `--model`, "
        "`--duration`, `--aspect_ratio`, `--negative_prompt`, `--cfg_scale`; the rest of the "
        "message is the prompt."),
    Bad("mention", 'a "zebra', "I could not read that: a quote is not closed."),
    Bad("mention", "a cliff --model kling-3-0 --generate_audio maybe",
        refused('`generate_audio` must be true or false; yours is "maybe".')),
    Bad("mention", "a cliff --model kling-3-0 --duration 20",
        refused("`duration` must be between 3 and 15; yours is 20.")),
    Bad("mention", "a street --model wan-2-2 --resolution 720P",
        refused('`resolution` must be one of 480P or 1080P; yours is "720P".')),
    Bad("mention", "a street --model wan-2-2 --seed abc",
        refused('`seed` must be a whole number; yours is "abc".')),
    Bad("mention", "a street --model wan-2-2 --negative_prompt " + "n" * 501,
        refused("`negative_prompt` must be at most 500 characters; yours has 501.")),
    Bad("mention", "a street --model wan-2-2 " + "w" * 800,
        refused("`prompt` must be at most 799 characters; yours has 809.")),
    Bad("mention", "a zebra", "Reply to a message with an image (or attach one) when you "
        "mention me, e.g. `@me a zebra turns its head --model kling-2-1`.", image=None),
    Bad("mention", "a zebra", "Reply to a message with an image (or attach one) when you "
        "mention me, e.g. `@me a zebra turns its head --model kling-2-1`.",
        image=("notes.txt", b"not an image")),
    # Apps > Animate image, and the /animate form.
    Bad("menu", "", refused('`duration` must be a whole number; yours is "abc".'),
        {"prompt": "x", "model": ["kling-2-1"], "duration": "abc"}),
    Bad("menu", "", refused("`duration` must be 5; yours is 10."),
        {"prompt": "x", "model": ["wan-2-2"], "duration": "10"}),
    Bad("menu", "", "That message has no image to animate. Use Apps > Animate image on a "
        "message with an image, or `/animate` to upload one.", image=None),
    Bad("menu", "", "That message has no image to animate (`a.pdf` is not an image). Use Apps "
        "> Animate image on a message with an image, or `/animate` to upload one.",
        image=("a.pdf", b"%PDF")),
    Bad("upload", "", refused(f"`image` must be a {ACCEPTED} image; `n.txt` is text/plain."),
        {"prompt": "x", "model": ["kling-2-1"], "image": ("n.txt", b"hello")}),
    # Someone else's job, or none.
    Bad("cancel", "bob", "Only the member who asked for job #1 or a moderator (Manage "
        "Messages) can cancel it."),
    Bad("cancel", "none", "There is no job #7 in this server."),
]


async def what_alice_sees(world: World, case: Bad) -> str:
    bot_id = world.bot.user.id if world.bot.user else 0
    if case.via == "slash":
        options = dict(case.options)
        if case.image is not None:
            options.setdefault("image", case.image)
        result = await world.alice.slash(world.channel, case.target, **options)
        assert result.ephemeral
        return str(result.response.content)
    if case.via == "mention":
        ask = await world.alice.send(world.channel, f"<@{bot_id}> {case.target}",
                                     attachments=[case.image] if case.image else [])
        reply = world.bot_messages()[-1]
        assert reply.reference is not None
        assert reply.reference.message_id == ask.id
        assert reply.mentions == []
        return reply.content
    if case.via in ("menu", "upload"):
        if case.via == "menu":
            post = await world.bob.send(world.channel, "look",
                                        attachments=[case.image] if case.image else [])
            shown = await world.alice.context_menu(world.channel, "Animate image", post)
        else:
            shown = await world.alice.slash(world.channel, "animate")
        if shown.modal is None:
            assert shown.ephemeral
            return str(shown.response.content)
        result = await world.alice.submit_modal(shown, case.options)
        assert result.ephemeral
        world.env.errors  # noqa: B018 - the form's refusal is expected: acknowledge it
        return str(result.response.content)
    if case.target == "bob":
        await world.bob.slash(world.channel, "kling-2-1", prompt="bob's", image=("b.png", PNG))
        result = await world.alice.slash(world.channel, "cancel", job=1)
    else:
        result = await world.alice.slash(world.channel, "cancel", job=7)
    assert result.ephemeral
    return str(result.response.content)


def test_there_are_at_least_forty() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[f"{c.via}-{i}" for i, c in enumerate(CASES)])
async def test_bad_input_is_refused_clearly_and_costs_nothing(world: World, case: Bad) -> None:
    assert await what_alice_sees(world, case) == case.expected
    submits = world.sim.calls_to("/v1/models/", "POST")
    mine = await world.bot.parts.store.for_user(world.guild.id, world.alice.id)
    assert mine == []  # no job, so no usage row
    if case.via == "cancel" and case.target == "bob":
        assert len(submits) == 1  # Bob's own job, untouched
        assert world.sim.calls_to("/cancel") == []
    else:
        assert submits == []
    rows = await world.bot.parts.db.fetch("SELECT * FROM usage_daily WHERE user_id = ?",
                                          world.alice.id)
    assert rows == []
