"""Usage reports for moderators (and a member's own): from the daily rollup the database keeps,
so a report reads a few rows however many jobs there were."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from babel.dates import format_skeleton

from bot.errors import UserError
from bot.i18n import _, babel_locale, in_source, ngettext
from bot.store.database import Database
from bot.store.usage import GroupBy as GroupBy
from bot.store.usage import Line as Line
from bot.store.usage import usage_rows

PeriodName = Literal["today", "7 days", "30 days", "this month", "custom"]
MAX_CUSTOM_DAYS = 366


@dataclass(frozen=True)
class Period:
    first: date
    last: date  # inclusive
    label: str  # as a member reads it, in the language in use when the period was made


@dataclass(frozen=True)
class Report:
    period: Period
    group_by: GroupBy
    lines: list[Line]
    total: Line
    cost_by_day: dict[str, dict[str, float]]  # day -> model -> USD


def period(name: PeriodName, now: float, start: str | None = None,
           end: str | None = None) -> Period:
    today = datetime.fromtimestamp(now, UTC).date()
    if name == "today":
        return Period(today, today, _("today"))
    if name in ("7 days", "30 days"):
        days = int(name.split()[0])
        return Period(today - timedelta(days=days - 1), today,
                      ngettext("the last {n} day", "the last {n} days", days))
    if name == "this month":
        return Period(today.replace(day=1), today, month_and_year(today))
    if not start or not end:
        raise UserError(_("A custom period needs `start` and `end` dates, like 2026-11-01."))
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise UserError(_("Dates are written YYYY-MM-DD, like 2026-11-01.")) from None
    if first > last:
        raise UserError(_("`start` is after `end`."))
    if (last - first).days >= MAX_CUSTOM_DAYS:
        raise UserError(ngettext("A report covers at most {n} day.",
                                 "A report covers at most {n} days.", MAX_CUSTOM_DAYS))
    return Period(first, last, _("{first} to {last}", first=first.isoformat(),
                                 last=last.isoformat()))


def month_and_year(day: date) -> str:
    """``January 2026``; ``2026年1月`` in Japanese."""
    return f"{day:%B %Y}" if in_source() else str(format_skeleton("yMMMM", day,
                                                                   locale=babel_locale()))


class UsageReports:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def report(self, guild_id: int, span: Period, group_by: GroupBy,
                     user_id: int | None = None) -> Report:
        """The guild's usage in ``span`` (only ``user_id``'s when given), grouped."""
        rows = await usage_rows(self.db, guild_id, span.first, span.last, group_by, user_id)
        total = Line("total", *(sum(getattr(line, f) for line in rows.lines) for f in
                                ("jobs", "seconds", "cost_usd", "failures", "cancellations",
                                 "unpriced", "simulated")))
        return Report(span, group_by, rows.lines, total, rows.cost_by_day)


def to_csv(report: Report, name: Callable[[str], str]) -> bytes:
    """The report's lines (and a total) as CSV; ``name`` turns a user id into a name."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([report.group_by, "jobs", "seconds", "cost_usd", "failures",
                     "cancellations", "unpriced_jobs", "simulated_jobs"])
    for line in [*report.lines, report.total]:
        key = name(line.key) if report.group_by == "user" and line is not report.total \
            else line.key
        writer.writerow([inert(key), line.jobs, f"{line.seconds:g}", f"{line.cost_usd:.4f}",
                         line.failures, line.cancellations, line.unpriced, line.simulated])
    return out.getvalue().encode()


def inert(cell: str) -> str:
    """A member's name as text a spreadsheet will not run: ``=``, ``+``, ``-``, ``@``, a tab
    or a carriage return first would make it a formula (OWASP's CSV injection advice)."""
    return f"'{cell}" if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def chart_png(report: Report) -> bytes:
    """Cost per day, stacked by model, as a PNG. matplotlib's ``Figure`` API (not pyplot,
    which keeps global state) is safe to use from the worker threads reports run in."""
    from matplotlib.figure import Figure  # imported here: only reports need it, and it is slow

    days = []
    current = report.period.first
    while current <= report.period.last:
        days.append(current.isoformat())
        current += timedelta(days=1)
    models = sorted({m for per_day in report.cost_by_day.values() for m in per_day})
    figure = Figure(figsize=(8, 3.5), dpi=100)
    axes = figure.subplots()
    bottom = [0.0] * len(days)
    for model in models:
        values = [report.cost_by_day.get(day, {}).get(model, 0.0) for day in days]
        axes.bar(days, values, bottom=bottom, label=model)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axes.set_ylabel("USD")
    # In no language's words: the fonts matplotlib has may lack the script (CJK would show as
    # boxes); the message around the chart says what it is.
    axes.set_title(f"{report.period.first.isoformat()} → {report.period.last.isoformat()}")
    if models:
        axes.legend(fontsize="small")
    step = max(len(days) // 10, 1)
    axes.set_xticks(range(0, len(days), step), [d[5:] for d in days[::step]])
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
