"""Where a job came from, as its card and ``/jobs`` say it."""

from __future__ import annotations

import pytest

from bot.lineage import Lineage, Origin, lineage_text


def test_each_origin_is_stored_by_a_plain_word() -> None:
    """The store keeps the origin as text: each is read back to the same origin."""
    assert [origin.value for origin in Origin] == ["again", "vary", "extend"]
    assert all(Origin(origin.value) is origin for origin in Origin)
    assert f"{Origin.EXTEND}" == "extend"  # as it is written into a card


@pytest.mark.parametrize(("origin", "shown"), [
    (Origin.AGAIN, "again of #4087"), (Origin.VARY, "varies #4087"),
    (Origin.EXTEND, "extends #4087"),
])
def test_a_child_names_its_parent_by_number(origin: Origin, shown: str) -> None:
    assert origin.describe(4087) == shown
    assert lineage_text(4087, origin.value) == shown
    assert lineage_text(4087, origin) == shown


@pytest.mark.parametrize(("parent_id", "origin"), [
    (None, None),  # a job of its own
    (None, "vary"),  # an origin without a parent says nothing
    (12, None),  # nor a parent without an origin
    (12, "remix"),  # an origin this version does not know (a newer one wrote it)
    (12, ""),
    (12, "Again"),  # the stored words are lower case
])
def test_nothing_is_said_unless_both_parent_and_origin_are_known(
        parent_id: int | None, origin: str | None) -> None:
    assert lineage_text(parent_id, origin) == ""


def test_a_lineage_is_a_value() -> None:
    assert Lineage(12, Origin.VARY) == Lineage(12, Origin("vary"))
    assert len({Lineage(12, Origin.VARY), Lineage(12, Origin.VARY),
                Lineage(12, Origin.AGAIN)}) == 2
