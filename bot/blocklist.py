"""Moderators' prompt blocklists, matched so that no server's rules can stall the others and no
spelling trick slips past them.

Bounded: at most ``MAX_RULES`` rules of ``PATTERN_MAX`` characters, and one time budget for a
whole request (every rule against every prompt text, ``CHECK_SECONDS``), spent in a worker
thread with the regex engine releasing the GIL, so the event loop never waits on it. A request
that cannot be checked in time is refused (as matching the rule being checked), never let
through.

Normalised: each text is matched as written and as normalised (NFKC, so full-width letters are
plain ones; format characters such as zero-width spaces and soft hyphens dropped; case folded;
and, in a word that mixes Latin letters with look-alikes from other scripts, the look-alikes
read as the Latin letters they imitate, from Unicode's confusables table). Words written wholly
in another script are left as they are: a Russian word that happens to look Latin is Russian.
"""

from __future__ import annotations

import functools
import time
import unicodedata
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol

from bot.errors import UserError
from bot.i18n import _

if TYPE_CHECKING:
    import regex
    from regex._main import Pattern

MAX_RULES = 50
PATTERN_MAX = 200
CHECK_SECONDS = 0.05  # for all of one request's prompt texts against all of a server's rules


class Rule(Protocol):
    @property
    def pattern(self) -> str: ...
    @property
    def regex(self) -> bool: ...
    @property
    def label(self) -> str: ...


@functools.lru_cache(maxsize=4096)
def compiled(pattern: str, is_regex: bool) -> Pattern[str]:
    """A rule's pattern compiled (a word matches as a whole word, in any case); a
    ``UserError`` naming it when it is not a valid regular expression."""
    import regex  # here and in ``normalise``: a server without rules never loads it

    source = pattern if is_regex else rf"(?<!\w){regex.escape(normalise(pattern))}(?!\w)"
    try:
        return regex.compile(source, regex.IGNORECASE | regex.V1)
    except regex.error as exc:
        # The regex engine's own words for what is wrong stay as it says them.
        raise UserError(_("`{pattern}` is not a valid regular expression: {error}.",
                          pattern=pattern, error=exc)) from None


def first_blocked(rules: Sequence[Rule], texts: Iterable[str],
                  seconds: float = CHECK_SECONDS) -> str | None:
    """What the first rule to match found in ``texts`` (as written, then normalised), or the
    label of the rule that was being checked when ``seconds`` ran out."""
    deadline = time.monotonic() + seconds
    variants = dict.fromkeys(v for text in texts for v in (text, normalise(text)))
    for text in variants:
        for rule in rules:
            left = deadline - time.monotonic()
            if left <= 0:
                return rule.label
            try:
                found = compiled(rule.pattern, rule.regex).search(text, timeout=left,
                                                                    concurrent=True)
            except TimeoutError:
                return rule.label
            if found:
                return str(found.group(0)) or rule.label
    return None


def normalise(text: str) -> str:
    """``text`` as it reads: see the module's docstring."""
    import regex

    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf").casefold()
    return regex.sub(r"\w+", _unmix, text)


def _unmix(word: regex.Match[str]) -> str:
    text = word.group(0)
    if text.isascii() or not any(c.isascii() and c.isalpha() for c in text):
        return text
    return text.translate(_look_alikes())


@functools.cache
def _look_alikes() -> dict[int, str]:
    """Each character that Unicode's confusables table says looks like a Latin letter, and
    that letter (lower case)."""
    from confusable_homoglyphs.confusables import confusables_data  # read when first needed

    table: dict[int, str] = {}
    for char, glyphs in confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue
        latin = [g["c"] for g in glyphs if len(g["c"]) == 1 and g["c"].isascii()
                 and g["c"].isalpha()]
        if latin:
            table[ord(char)] = latin[0].lower()
    return table
